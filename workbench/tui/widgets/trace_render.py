"""Render a ``TraceView`` as styled Content blocks (theme variables in styles)."""

from __future__ import annotations

from textual.content import Content

from workbench.core.analysis import SampleKind
from workbench.core.grading import Detection, detect_recovery
from workbench.core.perturb import type_mismatch
from workbench.core.text import word_diff
from workbench.core.views.methods import MethodsRow, method_title
from workbench.core.views.traces import TraceView

#: badge style per outcome tone (``OutcomeLabel.tone``)
TONE_STYLE = {
    "good": "bold $success",
    "bad": "bold $error",
    "warning": "bold $warning",
    "neutral": "bold $text-muted",
}
SPAN_STYLE = {
    "marker": "bold $warning reverse",
    "recompute": "bold $success underline",
    "carried": "$error underline",
}


def diff_content(old: str, new: str) -> Content:
    """The new text with deletions struck through and insertions highlighted."""
    parts: list[str | tuple[str, str]] = []
    for op, text in word_diff(old, new):
        if op == "equal":
            parts.append(text)
        elif op == "delete":
            parts.append((text, "$error strike"))
        else:
            parts.append((text, "bold $success on $success-muted"))
    return Content.assemble(*parts)


def badge(view: TraceView) -> str:
    """The header's outcome badge text: what happened, and how, and the judge's verdict."""
    label = view.label
    text = label.text.upper() + (f" · {label.how}" if label.how else "")
    verdict = view.judge_verdict
    if verdict is not None:
        text += " · judge: " + ("noticed" if verdict else "not noticed")
    return text


def header(view: TraceView, position: int, total: int) -> Content:
    labels = ", ".join(lb.label for lb in view.labels)
    return Content.assemble(
        (f" {badge(view)} ", TONE_STYLE.get(view.label.tone, "bold") + " reverse"),
        f"  sample {view.sample_id} ({position + 1:,}/{total:,})",
        f"  ·  {view.problem_id or '-'} #{view.sample_index}",
        f"  ·  {view.stage} · {view.role or '-'} · {view.model or '-'}",
        (f"  ·  method: {method_title(str(method))}" if (method := view.method) else "", "bold"),
        (f"  ·  labels: {labels}" if labels else "", "$accent"),
        (f"  ·  flags: {', '.join(view.flags)}" if view.flags else "", "$warning"),
    )


def _verdict(correct: bool | None) -> tuple[str, str]:
    if correct is None:
        return "?", "$text-muted"
    return ("✓", "bold $success") if correct else ("✗", "bold $error")


def methods(row: MethodsRow | None, shown: str | None) -> Content:
    """CoT | PAL | plan-then-code | the vote, for the trace's problem; ``shown``: the method
    of the sample on show (its cell is underlined)."""
    if row is None:
        return Content.styled("no vote row yet (post-processing writes it)", "$text-muted")
    cells: list[Content] = []
    for m in row.methods:
        mark, style = _verdict(m.correct)
        errors = f" ({', '.join(m.errors)})" if m.errors else ""
        cells.append(
            Content.assemble(
                (m.label, "bold underline" if m.method == shown else "bold"),
                f" {m.answer if m.answer is not None else '–'} ",
                (mark, style),
                (f" {m.count}/{m.total}{errors}", "$text-muted"),
            )
        )
    mark, style = _verdict(row.vote_correct)
    cells.append(
        Content.assemble(
            ("vote", "bold underline" if shown is None else "bold"),
            f" {row.vote_answer if row.vote_answer is not None else '–'} ",
            (mark, style),
            (f" {row.vote_status} · {row.how}", "$text-muted"),
        )
    )
    return Content("  │  ").join(cells)


def steps(view: TraceView) -> Content:
    """Original steps numbered; the perturbed one as a word diff; the truncation point marked."""
    lines: list[Content] = []
    for i, step in enumerate(view.original_steps):
        if i == view.perturbed_index and view.shows_perturbation:
            assert view.perturbed_step is not None
            lines.append(Content.assemble((f"{i + 1:>3}. ", "bold $warning"), step))
            lines.append(
                Content.assemble(
                    (f"  ↳ {view.error_type or 'perturbed'}: ", "bold $warning"),
                    diff_content(view.original_step or step, view.perturbed_step),
                )
            )
            why = type_mismatch(view.error_type, view.original_step or step, view.perturbed_step)
            if why is not None:
                lines.append(Content.styled(f"    type mismatch: {why}", "$warning italic"))
        else:
            lines.append(Content.assemble((f"{i + 1:>3}. ", "$text-muted"), step))
        lines += _step_marks(view, i)
        if view.truncate_at is not None and i + 1 == view.truncate_at:
            lines.append(
                Content.styled(
                    f"     ── prefix ends here ({view.truncate_at} steps); continuation below ──",
                    "$accent",
                )
            )
    if not lines:
        return Content.styled("(no reference steps)", "$text-muted")
    return Content("\n").join(lines)


def _step_marks(view: TraceView, i: int) -> list[Content]:
    """Under step ``i`` of a labelled trace: its label, the critic's pick, the redrawn step."""
    p = view.payload
    marks: list[Content] = []
    if "mistake_index" in p and p.get("mistake_index") == i:
        marks.append(Content.styled("       ✗ labelled first mistake", "bold $error"))
    if p.get("predicted_index") == i and "mistake_index" in p:
        agree = p.get("mistake_index") == i
        marks.append(
            Content.styled(
                f"       ◆ critic's pick{' (agrees with the label)' if agree else ''}",
                "bold $success" if agree else "bold $warning",
            )
        )
    if p.get("cut") == i and "arm" in p:
        new = p.get("new_step")
        marks.append(
            Content.assemble(
                (f"       ↺ redrawn ({p.get('arm')} arm): ", "bold $accent"),
                str(new) if new else "(no new step)",
            )
        )
    return marks


def detection_for(view: TraceView) -> Detection:
    stored = view.payload.get("detection")
    if isinstance(stored, dict) and stored.get("spans") is not None:
        return Detection.from_payload(stored)
    correct = view.grade.correct if view.grade else None
    return detect_recovery(
        view.continuation,
        correct=correct,
        original_step=view.original_step,
        perturbed_step=view.perturbed_step,
        context=view.question,
    )


def continuation(view: TraceView) -> Content:
    if not view.continuation:
        err = view.call.error if view.call and view.call.error else "no output"
        return Content.styled(f"({err})", "$text-muted")
    text = Content(view.continuation)
    detection = detection_for(view)
    for span in detection.spans:
        if 0 <= span.start < span.end <= len(view.continuation):
            text = text.stylize(SPAN_STYLE.get(span.kind, "bold"), span.start, span.end)
    if view.kind is not SampleKind.PERTURBED_CONTINUATION:
        return text  # a straight shot, a control or a check: nothing to recover from
    label = view.label
    line = f"outcome: {label.text}" + (f" ({label.how})" if label.how else "")
    if label.text == "not recovered" and detection.explicit:
        line += " · the text flags an error, but the final answer is wrong"
    return text + Content.styled(f"\n\n{line}", "$text-muted italic")


def grade(view: TraceView) -> Content:
    g = view.grade
    if g is None:
        return Content.assemble(("ungraded", "$text-muted"), f"  ·  gold {view.gold!r}")
    verdict = "correct" if g.correct else "wrong" if g.correct is False else g.status
    style = "$success" if g.correct else "$error" if g.correct is False else "$text-muted"
    return Content.assemble(
        ("extracted ", "$text-muted"),
        (repr(g.extracted), "bold"),
        ("  vs gold ", "$text-muted"),
        (repr(g.gold if g.gold is not None else view.gold), "bold"),
        "  →  ",
        (verdict, f"bold {style}"),
        (f"  ({g.method or '-'}: {g.reason or g.status})", "$text-muted"),
    )


def _money(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:.5f}"


def metadata(view: TraceView) -> Content:
    c = view.call
    chain = " → ".join(f"{link.stage}#{link.sample_id}" for link in view.chain)
    if c is None:
        return Content.styled(f"no call recorded  ·  chain: {chain}", "$text-muted")
    return Content.styled(
        f"{c.provider}:{c.model}  ·  tokens {c.input_tokens or 0:,} in / "
        f"{c.output_tokens or 0:,} out  ·  {_money(c.cost_usd)}  ·  "
        f"{(c.latency_ms or 0) / 1000:.2f} s  ·  attempts {c.attempts}  ·  "
        f"continuation {c.continuation or '-'}  ·  finish {c.finish_reason or '-'}"
        f"{'  ·  cache hit' if c.cache_hit else ''}\nchain: {chain}",
        "$text-muted",
    )
