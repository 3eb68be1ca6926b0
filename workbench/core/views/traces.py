"""Fast trace queries for the stepper: filter a run's samples to ids, load one sample in full.

Opening a run reads only ids (one indexed query, ordered by problem then sample
id); moving to a sample loads that one sample, its grade, call, parent chain and
labels with a handful of primary-key lookups, so a 100,000-sample run opens in
well under a second and each move costs a few milliseconds.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from workbench.core.analysis import OutcomeLabel, SampleKind, outcome_label, sample_kind
from workbench.core.errors import StoreError
from workbench.core.grading.grader import verdict
from workbench.core.library.problems import find_problem
from workbench.core.payloads import TracePayload
from workbench.core.status import SET_ASIDE_SAMPLE_STATUSES, SampleStatus
from workbench.core.store import Store, like_pattern, loads, now_iso

TraceOutcome = Literal["recovered", "not", "invalid", "ungraded", "error"]
OUTCOMES: tuple[TraceOutcome, ...] = ("recovered", "not", "invalid", "ungraded", "error")

#: presets offered by the label dialog; any other text is allowed too
LABEL_PRESETS = ("material perturbation", "rewrite", "genuine recovery")


@dataclass(frozen=True)
class TraceFilter:
    """What the stepper shows.  Empty fields do not filter."""

    outcome: TraceOutcome | None = None
    error_type: str | None = None
    bin: str | None = None  # difficulty bin of the sample's problem for the sample's model
    model: str | None = None
    stage: str | None = None
    flag: str | None = None  # a validation flag on the sample or its parent
    label: str | None = None
    text: str | None = None  # substring of the output or the question
    # exactly these samples (a drill-down from a plot's bar), named by ``scope`` ("hard bin")
    samples: tuple[int, ...] = ()
    scope: str | None = None
    # the default view: the samples that carry grades (judge verdicts are shown on the
    # continuation they judged); in a run with no grade yet, the leaf samples
    graded_only: bool = True

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("outcome", self.outcome),
                ("error", self.error_type),
                ("bin", self.bin),
                ("model", self.model),
                ("stage", self.stage),
                ("flag", self.flag),
                ("label", self.label),
                ("search", self.text),
            )
            if value
        ]
        if self.samples:
            parts.insert(0, f"{self.scope or 'chosen'} ({len(self.samples):,} samples)")
        return ", ".join(parts) or "all"


@dataclass(frozen=True)
class TraceIndex:
    """Sample ids in display order and where each problem's run of samples starts."""

    ids: array[int]
    problem_starts: array[int]  # positions in ``ids`` where a new problem begins

    def __len__(self) -> int:
        return len(self.ids)

    def next_problem(self, pos: int) -> int:
        """Position of the first sample of the next problem (or ``pos`` at the end)."""
        from bisect import bisect_right

        i = bisect_right(self.problem_starts, pos)
        return self.problem_starts[i] if i < len(self.problem_starts) else pos

    def previous_problem(self, pos: int) -> int:
        """Start of the current problem, or of the previous one when already at a start."""
        from bisect import bisect_right

        i = bisect_right(self.problem_starts, pos) - 1
        if i < 0:
            return pos
        start = self.problem_starts[i]
        if start < pos:
            return start
        return self.problem_starts[i - 1] if i > 0 else pos


@dataclass(frozen=True)
class CallMeta:
    call_id: int
    provider: str
    model: str
    continuation: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_ms: float | None
    attempts: int
    finish_reason: str | None
    cache_hit: bool
    status: str
    error: str | None


@dataclass(frozen=True)
class GradeView:
    grader: str
    gold: str | None
    extracted: str | None
    normalised: str | None
    correct: bool | None
    status: str
    method: str | None
    reason: str | None


@dataclass(frozen=True)
class Label:
    id: int
    sample_id: int
    label: str
    note: str
    created_at: str


@dataclass(frozen=True)
class ChainLink:
    sample_id: int
    stage: str
    role: str | None
    model: str | None
    status: str


@dataclass(frozen=True)
class TraceView:
    """Everything the stepper shows for one sample."""

    sample_id: int
    run_id: int
    stage: str
    status: str
    problem_id: str | None
    sample_index: int
    role: str | None
    model: str | None
    question: str
    gold: str
    original_steps: tuple[str, ...]
    perturbed_index: int | None  # 0-based index of the perturbed step
    original_step: str | None
    perturbed_step: str | None
    error_type: str | None
    truncate_at: int | None  # number of steps kept in the prefix
    prefix: str | None
    continuation: str
    flags: tuple[str, ...]
    grade: GradeView | None
    call: CallMeta | None
    chain: tuple[ChainLink, ...]  # root first, this sample last
    labels: tuple[Label, ...]
    payload: Mapping[str, Any] = field(default_factory=dict)  # ancestors' payloads merged

    @property
    def outcome(self) -> TraceOutcome:
        if self.status == SampleStatus.ERROR:
            return "error"
        # the sample or the prefix it continues (its parent) was set aside; an earlier,
        # retried attempt further up the chain does not taint a valid retry's continuations
        # (the same rule as the ``invalid`` filter)
        parent = self.chain[-2] if len(self.chain) > 1 else None
        if self.status in SET_ASIDE_SAMPLE_STATUSES or (
            parent is not None and parent.status in SET_ASIDE_SAMPLE_STATUSES
        ):
            return "invalid"
        if self.grade is None or self.grade.correct is None:
            return "ungraded"
        return "recovered" if self.grade.correct else "not"

    @property
    def kind(self) -> SampleKind:
        """What the sample is (perturbed continuation, control, straight shot, ...)."""
        return sample_kind(self.stage, dict(self.payload))

    @property
    def label(self) -> OutcomeLabel:
        """What happened, in the metrics layer's words (``analysis.outcome_label``)."""
        if self.status == SampleStatus.ERROR:
            return OutcomeLabel("error", "bad")
        if self.outcome == "invalid":
            return OutcomeLabel("set aside", "warning")
        if self.kind is SampleKind.JUDGE_VERDICT:
            noticed = self.payload.get("noticed")
            said = "?" if not isinstance(noticed, bool) else "noticed" if noticed else "not noticed"
            return OutcomeLabel(f"judge: {said}", "neutral")
        # the verdict the metrics count: a response with no answer is wrong, not ungraded
        correct = verdict(self.grade.correct, self.grade.status) if self.grade else None
        return outcome_label(self.kind, correct, self._recovery_kind(), dict(self.payload))

    def _recovery_kind(self) -> str | None:
        detection = self.payload.get("detection")
        if isinstance(detection, Mapping) and detection.get("kind"):
            return str(detection["kind"])
        kind = self.payload.get("recovery_kind")
        return str(kind) if kind else None

    @property
    def method(self) -> str | None:
        """The reasoning method of a methods-run sample (cot / pal / plan), else None (the
        vote and the resolution also carry a "method": the one they chose, or their mode)."""
        value = self.payload.get("method")
        return str(value) if value and self.stage in ("solve", "plan") else None

    @property
    def judge_verdict(self) -> bool | None:
        """The judge's verdict on this continuation, when a judge read it."""
        value = self.payload.get("judge_noticed")
        return value if isinstance(value, bool) else None

    @property
    def shows_perturbation(self) -> bool:
        """Whether the prefix holds a perturbed step (a control's prefix does not)."""
        return self.perturbed_step is not None and self.kind is not SampleKind.CONTROL_CONTINUATION

    def as_text(self) -> str:
        """A plain-text rendering for the clipboard."""
        lines = [f"sample {self.sample_id} · run {self.run_id} · {self.stage} · {self.model}"]
        lines += ["", "Question:", self.question, "", "Original steps:"]
        lines += [f"{i + 1}. {s}" for i, s in enumerate(self.original_steps)]
        if self.shows_perturbation:
            lines += ["", f"Perturbed step {(self.perturbed_index or 0) + 1} ({self.error_type}):"]
            lines.append(self.perturbed_step or "")
        lines += ["", "Continuation:", self.continuation, ""]
        if self.grade:
            lines.append(
                f"Extracted {self.grade.extracted!r} vs gold {self.grade.gold!r}: "
                f"{self.label.text} ({self.grade.reason or self.grade.status})"
            )
        return "\n".join(lines)


# -- filtering --------------------------------------------------------------

_LATEST_CORRECT = (
    "(SELECT g.correct FROM grades g WHERE g.sample_id=s.id ORDER BY g.id DESC LIMIT 1)"
)
_LATEST_GRADE_STATUS = (
    "(SELECT g.status FROM grades g WHERE g.sample_id=s.id ORDER BY g.id DESC LIMIT 1)"
)
_INVALID = "(s.status IN ('invalid','skipped') OR p.status IN ('invalid','skipped'))"


def _payload_value(key: str) -> str:
    """SQL for a payload key on the sample, falling back to its parent."""
    return f"COALESCE(json_extract(s.payload,'$.{key}'), json_extract(p.payload,'$.{key}'))"


_GRADED = "EXISTS (SELECT 1 FROM grades g WHERE g.sample_id=s.id)"
_LEAF = "NOT EXISTS (SELECT 1 FROM samples c WHERE c.parent_id=s.id)"


def _where(
    run_id: int, flt: TraceFilter, *, run_graded: bool = True
) -> tuple[str, list[Any], bool]:
    """WHERE clause, parameters, and whether the parent join is needed."""
    conds = ["s.run_id=?"]
    params: list[Any] = [run_id]
    needs_parent = False
    if flt.samples:  # one JSON parameter, however many ids
        conds.append("s.id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(flt.samples)))
    elif flt.graded_only and flt.stage is None:
        if run_graded:  # graded samples (never the judge's), and failed calls
            conds.append(f"(({_GRADED} AND s.stage!='judge') OR s.status='error')")
        else:
            conds.append(_LEAF)
    if flt.stage:
        conds.append("s.stage=?")
        params.append(flt.stage)
    if flt.model:
        conds.append("s.model=?")
        params.append(flt.model)
    if flt.outcome:
        needs_parent = True
        if flt.outcome == "error":
            conds.append("s.status='error'")
        elif flt.outcome == "invalid":
            conds.append(_INVALID)
        else:
            conds.append(f"s.status!='error' AND NOT {_INVALID}")
            if flt.outcome == "recovered":
                conds.append(f"{_LATEST_CORRECT}=1")
            elif flt.outcome == "not":
                conds.append(f"{_LATEST_CORRECT}=0")
            else:
                conds.append(f"({_LATEST_CORRECT} IS NULL OR {_LATEST_GRADE_STATUS} IS NULL)")
    if flt.error_type:
        needs_parent = True
        conds.append(f"{_payload_value('error_type')}=?")
        params.append(flt.error_type)
    if flt.flag:
        needs_parent = True
        conds.append(
            # flags are a list of names, or a mapping name -> bool
            "(EXISTS (SELECT 1 FROM json_each(s.payload,'$.flags') WHERE value=? OR key=?)"
            " OR EXISTS (SELECT 1 FROM json_each(p.payload,'$.flags') WHERE value=? OR key=?))"
        )
        params += [flt.flag] * 4
    if flt.bin:
        conds.append(
            "EXISTS (SELECT 1 FROM difficulty d WHERE d.problem_id=s.problem_id"
            " AND d.model=s.model AND d.bin=?)"
        )
        params.append(flt.bin)
    if flt.label:
        conds.append("EXISTS (SELECT 1 FROM labels l WHERE l.sample_id=s.id AND l.label=?)")
        params.append(flt.label)
    if flt.text:
        like = like_pattern(flt.text)
        conds.append(
            "(s.output LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM problems q"
            " WHERE q.id=s.problem_id AND q.question LIKE ? ESCAPE '\\'))"
        )
        params += [like, like]
    return " AND ".join(conds), params, needs_parent


def _run_graded(store: Store, run_id: int) -> bool:
    return (
        store.scalar(
            "SELECT 1 FROM samples s WHERE s.run_id=? AND EXISTS"
            " (SELECT 1 FROM grades g WHERE g.sample_id=s.id) LIMIT 1",
            (run_id,),
        )
        is not None
    )


def _select(
    run_id: int, flt: TraceFilter, columns: str, *, run_graded: bool = True
) -> tuple[str, list[Any]]:
    where, params, needs_parent = _where(run_id, flt, run_graded=run_graded)
    join = " LEFT JOIN samples p ON p.id=s.parent_id" if needs_parent else ""
    # idx_samples_run_problem_index (+ the implicit rowid) gives this order without a sort
    sql = (
        f"SELECT {columns} FROM samples s{join} WHERE {where}"
        " ORDER BY s.problem_id, s.sample_index, s.id"
    )
    return sql, params


def trace_ids(store: Store, run_id: int, flt: TraceFilter = TraceFilter()) -> array[int]:
    """Ids of the run's samples that pass the filter, in display order."""
    sql, params = _select(run_id, flt, "s.id", run_graded=_run_graded(store, run_id))
    return array("q", (row[0] for row in store.conn.execute(sql, params)))


def first_trace_id(store: Store, run_id: int, flt: TraceFilter = TraceFilter()) -> int | None:
    """The first sample the stepper shows: one step down the index, whatever the run's
    size, so the first trace is on screen before the whole index has been listed."""
    sql, params = _select(run_id, flt, "s.id", run_graded=_run_graded(store, run_id))
    row = store.conn.execute(sql + " LIMIT 1", params).fetchone()
    return int(row[0]) if row else None


def trace_index(store: Store, run_id: int, flt: TraceFilter = TraceFilter()) -> TraceIndex:
    """Like ``trace_ids`` plus the positions where each problem starts (for n / p)."""
    sql, params = _select(run_id, flt, "s.id, s.problem_id", run_graded=_run_graded(store, run_id))
    ids: array[int] = array("q")
    starts: array[int] = array("q")
    last: object = object()
    for pos, (sid, pid) in enumerate(store.conn.execute(sql, params)):
        ids.append(sid)
        if pid != last:
            starts.append(pos)
            last = pid
    return TraceIndex(ids, starts)


# -- one sample ---------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _chain(store: Store, sample_id: int) -> list[dict[str, Any]]:
    rows = store.query(
        """
        WITH RECURSIVE up(id, depth) AS (
            SELECT ?, 0
            UNION ALL
            SELECT s.parent_id, up.depth + 1 FROM samples s JOIN up ON s.id = up.id
            WHERE s.parent_id IS NOT NULL AND up.depth < 32
        )
        SELECT s.*, up.depth FROM up JOIN samples s ON s.id = up.id ORDER BY up.depth DESC
        """,
        (sample_id,),
    )
    if not rows:
        raise StoreError(f"no sample with id {sample_id}")
    return rows


def _grade(store: Store, sample_id: int) -> GradeView | None:
    row = store.query_one(
        "SELECT * FROM grades WHERE sample_id=? ORDER BY id DESC LIMIT 1", (sample_id,)
    )
    if row is None:
        return None
    correct = row["correct"]
    return GradeView(
        grader=row["grader"],
        gold=row["gold"],
        extracted=row["extracted"],
        normalised=row["normalised"],
        correct=None if correct is None else bool(correct),
        status=row["status"],
        method=row["method"],
        reason=row["reason"],
    )


def _call(store: Store, call_id: int | None) -> CallMeta | None:
    if call_id is None:
        return None
    row = store.query_one(
        "SELECT id, provider, model, continuation, input_tokens, output_tokens, cost_usd,"
        " latency_ms, attempts, finish_reason, cache_hit, status, error FROM calls WHERE id=?",
        (call_id,),
    )
    if row is None:
        return None
    return CallMeta(
        call_id=row["id"],
        provider=row["provider"],
        model=row["model"],
        continuation=row["continuation"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=row["cost_usd"],
        latency_ms=row["latency_ms"],
        attempts=row["attempts"],
        finish_reason=row["finish_reason"],
        cache_hit=bool(row["cache_hit"]),
        status=row["status"],
        error=row["error"],
    )


def load_trace(store: Store, sample_id: int) -> TraceView:
    """One sample with its problem, grade, call, ancestors and labels."""
    chain_rows = _chain(store, sample_id)
    me = chain_rows[-1]
    merged: dict[str, Any] = {}
    for row in chain_rows:  # root first, so the sample's own keys win
        merged.update(loads(row["payload"], {}) or {})
    payload = cast(TracePayload, merged)
    problem = find_problem(store, me["problem_id"]) if me["problem_id"] is not None else None
    steps = tuple(str(s) for s in (problem.steps if problem else ()))
    index = _as_int(payload.get("step_index"))
    original = payload.get("original_step")
    if original is None and index is not None and 0 <= index < len(steps):
        original = steps[index]
    flags: Any = payload.get("flags") or ()
    if isinstance(flags, Mapping):
        flags = [k for k, v in flags.items() if v]
    return TraceView(
        sample_id=me["id"],
        run_id=me["run_id"],
        stage=me["stage"],
        status=me["status"],
        problem_id=me["problem_id"],
        sample_index=me["sample_index"],
        role=me["role"],
        model=me["model"],
        question=problem.question if problem else "",
        gold=problem.answer if problem else str(payload.get("gold", "")),
        original_steps=steps,
        perturbed_index=index,
        original_step=original,
        perturbed_step=payload.get("perturbed_step"),
        error_type=payload.get("error_type"),
        truncate_at=_as_int(payload.get("truncate_at")),
        prefix=payload.get("prefix"),
        continuation=me["output"] or "",
        flags=tuple(str(f) for f in flags),
        grade=_grade(store, sample_id),
        call=_call(store, me["call_id"]),
        chain=tuple(
            ChainLink(r["id"], r["stage"], r["role"], r["model"], r["status"]) for r in chain_rows
        ),
        labels=tuple(labels_for(store, sample_id)),
        payload=merged,
    )


# -- labels -------------------------------------------------------------------


def add_label(store: Store, sample_id: int, label: str, note: str = "") -> int:
    """Attach a label (and an optional note) to a sample."""
    label = label.strip()
    if not label:
        raise StoreError("a label needs a name")
    with store.transaction():
        if store.scalar("SELECT 1 FROM samples WHERE id=?", (sample_id,)) is None:
            raise StoreError(f"no sample with id {sample_id}")
        return store.insert(
            "labels",
            {"sample_id": sample_id, "label": label, "note": note, "created_at": now_iso()},
        )


def remove_label(store: Store, label_id: int) -> None:
    with store.transaction():
        store.conn.execute("DELETE FROM labels WHERE id=?", (label_id,))


def labels_for(store: Store, sample_id: int) -> list[Label]:
    return [
        Label(r["id"], r["sample_id"], r["label"], r["note"], r["created_at"])
        for r in store.query(
            "SELECT id, sample_id, label, note, created_at FROM labels"
            " WHERE sample_id=? ORDER BY id",
            (sample_id,),
        )
    ]


# -- choices for the filter dialog ---------------------------------------------


@dataclass(frozen=True)
class FilterChoices:
    models: tuple[str, ...]
    stages: tuple[str, ...]
    error_types: tuple[str, ...]
    bins: tuple[str, ...]
    flags: tuple[str, ...]
    labels: tuple[str, ...]


def filter_choices(store: Store, run_id: int) -> FilterChoices:
    """Distinct values present in a run, for the filter dialog's lists."""

    def column(sql: str) -> tuple[str, ...]:
        return tuple(str(r[0]) for r in store.conn.execute(sql, (run_id,)) if r[0] is not None)

    return FilterChoices(
        models=column("SELECT DISTINCT model FROM samples WHERE run_id=? ORDER BY 1"),
        stages=column("SELECT DISTINCT stage FROM samples WHERE run_id=? ORDER BY 1"),
        error_types=column(
            "SELECT DISTINCT json_extract(payload,'$.error_type') FROM samples"
            " WHERE run_id=? ORDER BY 1"
        ),
        bins=column(
            "SELECT DISTINCT d.bin FROM difficulty d JOIN samples s"
            " ON s.problem_id=d.problem_id AND s.model=d.model WHERE s.run_id=? ORDER BY 1"
        ),
        flags=column(
            "SELECT DISTINCT CASE WHEN typeof(j.key)='text' THEN j.key ELSE j.value END"
            " FROM samples s, json_each(s.payload,'$.flags') j WHERE s.run_id=? ORDER BY 1"
        ),
        labels=column(
            "SELECT DISTINCT l.label FROM labels l JOIN samples s ON s.id=l.sample_id"
            " WHERE s.run_id=? ORDER BY 1"
        ),
    )
