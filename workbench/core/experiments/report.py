"""Headline tables for one run, chosen by the run's kind (used by ``workbench analyse``,
analysis exports and screens).

``run_report`` returns an ordered ``{title: rows}`` dict; every row is an
analysis dataclass (flatten with ``analysis.as_row``).  Calibration runs get
accuracy, a solve-rate histogram and bin counts per model; recovery runs
(perturb-and-recover, weak prefix, on-policy) get recovery by bin / error
type / step position, recovery beside the completer's straight-shot rate,
detection kinds and the problems set aside with their reasons.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from workbench.core.analysis import SampleKind, cost_per_correct, queries, sample_kind
from workbench.core.analysis import rates as an
from workbench.core.analysis.stats import format_bound, format_percent
from workbench.core.grading.detection import summarise_kinds
from workbench.core.settings import BinSettings
from workbench.core.store import Store

CALIBRATION_KINDS = ("calibration",)
RECOVERY_KINDS = ("recovery", "weak-prefix", "on-policy")
SOLVER_ROLE = an.SOLVER_ROLE
COMPLETER_ROLE = "completer"


@dataclass(frozen=True)
class CountRow:
    """A labelled count and its share of the table's total."""

    model: str
    key: str
    count: int
    share: float


def _counts(model: str, counter: Counter[str] | dict[str, int]) -> list[CountRow]:
    total = sum(counter.values()) or 1
    return [CountRow(model, k, n, n / total) for k, n in counter.items()]


def load_straight_shot(
    store: Store, model: str, problem_ids: set[str] | None = None
) -> list[an.GradedSample]:
    """The model's own straight-shot samples from every calibration run, on ``problem_ids``."""
    outs = queries.load_straight_shot(store, model)
    if problem_ids is not None:
        outs = [o for o in outs if o.problem_id in problem_ids]
    return outs


def run_report(
    store: Store, run_id: int, *, bins: BinSettings = an.DEFAULT_BINS
) -> dict[str, list[Any]]:
    """The headline tables for ``run_id``."""
    run = store.get_run(run_id)
    tables: dict[str, list[Any]] = {}
    if run["kind"] in RECOVERY_KINDS:
        tables.update(recovery_report(store, run_id))
    elif run["kind"] == "mistake-finding":
        from workbench.core.experiments.mistakes.report import mistake_tables

        tables.update(mistake_tables(store, run_id))
    elif run["kind"] == "backtrack":
        from workbench.core.experiments.mistakes.report import backtrack_tables

        tables.update(backtrack_tables(store, run_id))
    elif run["kind"] == "methods":  # per-method / vote / disagreement table (helper S)
        from workbench.core.experiments.methods.report import methods_tables

        tables.update(methods_tables(store, run_id))
    else:
        tables.update(calibration_report(store, run_id, bins=bins))
    outcomes = queries.load_outcomes(store, run_id)
    tables["cost per correct answer"] = cost_per_correct(
        queries.load_call_costs(store, run_id), [o for o in outcomes if _is_answer(o)]
    )
    return tables


def _is_answer(o: an.GradedSample) -> bool:
    return o.stage not in ("perturb", "judge", "check") and not o.stage.startswith("perturb-")


def calibration_report(
    store: Store, run_id: int, *, bins: BinSettings = an.DEFAULT_BINS
) -> dict[str, list[Any]]:
    outs = queries.load_outcomes(store, run_id, role=SOLVER_ROLE) or queries.load_outcomes(
        store, run_id
    )
    rates = an.solve_rates(outs)
    tables: dict[str, list[Any]] = {"accuracy by model": an.model_accuracy(outs)}
    for model in sorted({r.model for r in rates}):
        mine = [r for r in rates if r.model == model]
        tables[f"solve-rate histogram {model}"] = an.solve_rate_histogram(mine)
        per_bin = Counter(r.bin for r in an.difficulty_rows(mine, bins))
        tables[f"difficulty bins {model}"] = _counts(
            model, {name: per_bin.get(name, 0) for name in bins.names}
        )
    return tables


def recovery_report(store: Store, run_id: int) -> dict[str, list[Any]]:
    # what the ``recovery`` metric counts: perturbed continuations, never controls
    outs = [
        o
        for o in queries.load_outcomes(store, run_id, stage="continue")
        if sample_kind(o.stage, o.payload) is SampleKind.PERTURBED_CONTINUATION
    ]
    tables: dict[str, list[Any]] = {}
    for model in sorted({o.model or "-" for o in outs}):
        mine = [o for o in outs if (o.model or "-") == model]
        bins = queries.load_bins(store, model)
        tag = f" ({model})"
        tables["recovery" + tag] = an.recovery_table(mine, "model")
        tables["recovery by bin" + tag] = an.recovery_table(mine, "bin", bins=bins)
        tables["recovery by error type" + tag] = an.recovery_table(mine, "error_type")
        tables["recovery by step position" + tag] = an.recovery_table(mine, "position")
        tables["recovery by step" + tag] = an.recovery_table(mine, "step")
        problems = {o.problem_id for o in mine if o.problem_id}
        shot = load_straight_shot(store, model, problems)
        if shot:
            beside = an.recovery_beside_straight_shot(mine, shot, by="bin", bins=bins)
            beside += an.recovery_beside_straight_shot(mine, shot, by="all")
            tables["recovery beside straight-shot" + tag] = beside
        kinds = summarise_kinds(
            str((o.payload.get("detection") or {}).get("kind", "unknown"))
            for o in mine
            if o.correct is not None
        )
        tables["recovery kinds" + tag] = _counts(model, kinds)
    control = queries.load_outcomes(store, run_id, stage="control")
    if control:
        tables["control (unperturbed prefix)"] = an.recovery_table(control, "model")
    aside = Counter(
        str(s["payload"].get("set_aside_kind", s["status"]))
        for s in store.samples(run_id)
        if s["payload"].get("set_aside")
    )
    if aside:
        tables["set aside"] = _counts("-", aside)
    return tables


def format_tables(tables: dict[str, list[Any]]) -> str:
    """Plain-text rendering (for the CLI and logs): one block per table."""
    blocks = []
    for title, rows in tables.items():
        flat = [_display(an.as_row(r)) for r in rows]
        if not flat:
            blocks.append(f"{title}\n  (no rows)")
            continue
        cols = list(flat[0])
        widths = {c: max(len(c), *(len(r[c]) for r in flat)) for c in cols}
        lines = [title, "  " + "  ".join(c.ljust(widths[c]) for c in cols)]
        lines += ["  " + "  ".join(r[c].ljust(widths[c]) for c in cols) for r in flat]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _display(row: dict[str, Any]) -> dict[str, str]:
    """Collapse ``x_k/x_n/x_rate/x_low/x_high`` into one ``x`` cell: ``k/n rate [low, high]``."""
    out: dict[str, str] = {}
    for key, value in row.items():
        base = key.rsplit("_", 1)[0]
        if key.endswith("_k") and f"{base}_high" in row:
            k, n = row[f"{base}_k"], row[f"{base}_n"]
            low, high = row[f"{base}_low"], row[f"{base}_high"]
            out[base] = (
                f"{k}/{n} {format_percent(k, n)} [{format_bound(low, n)}, {format_bound(high, n)}]"
                if n
                else "-"
            )
        elif any(key == f"{base}_{s}" and f"{base}_k" in row for s in ("n", "rate", "low", "high")):
            continue
        elif isinstance(value, float):
            out[key] = f"{value:.4g}"
        else:
            out[key] = "-" if value is None else str(value)
    return out
