"""The methods experiment's report: one table of per-method, vote and disagreement accuracy.

Reads the ``vote`` rows and grades written by ``methods.post``; pure reads.
``table`` maps a row name (each method, ``vote``, ``oracle`` = any method
right) to its accuracy over all problems and over the disagreement rows, and
for methods the accuracy of single samples (before self-consistency).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.analysis import run_metrics
from workbench.core.experiments.methods.post import SOLVE, VOTE, PostOptions
from workbench.core.status import SampleStatus
from workbench.core.store import Store


def summarise_run(store: Store, run_id: int, opts: PostOptions) -> dict[str, Any]:
    """Per-method accuracy, vote accuracy, and accuracy on the disagreement rows, in one table."""
    votes = [v["payload"] for v in store.samples(run_id, VOTE)]
    disagree = [v for v in votes if v.get("status") == "disagree"]
    table: dict[str, dict[str, Any]] = {}
    metrics = run_metrics(store, run_id)  # per-sample accuracy as every surface counts it
    for method in opts.methods:
        sample = metrics.get("sample_accuracy", method)
        table[method] = _row(
            [v["methods"].get(method) or {"correct": False} for v in votes],
            [v["methods"].get(method) or {"correct": False} for v in disagree],
            sample.rate.rate if sample is not None else None,
        )
    table["vote"] = _row(votes, disagree, None)
    oracle = [{"correct": any(m.get("correct") for m in v["methods"].values())} for v in votes]
    table["oracle"] = _row(
        oracle,
        [o for o, v in zip(oracle, votes, strict=True) if v.get("status") == "disagree"],
        None,
    )
    statuses = Counter(str(v.get("status")) for v in votes)
    resolutions = Counter(str(v.get("resolution", {}).get("how")) for v in votes)
    return {
        "problems": len(votes),
        "agree": statuses["unanimous"] + statuses["majority"],
        "disagree": statuses["disagree"],
        "statuses": dict(statuses),
        "resolutions": dict(resolutions),
        "sc_ties": sum(1 for v in votes for m in v["methods"].values() if m.get("tie")),
        "errors_by_kind": _errors_by_kind(store, run_id),
        "table": table,
    }


def _rate(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, float | None]:
    n = len(rows)
    k = sum(1 for r in rows if r.get("correct"))
    return n, k, (k / n if n else None)


def _row(
    rows: Sequence[Mapping[str, Any]],
    disagree: Sequence[Mapping[str, Any]],
    sample_accuracy: float | None,
) -> dict[str, Any]:
    n, k, acc = _rate(rows)
    dn, dk, dacc = _rate(disagree)
    return {
        "n": n,
        "correct": k,
        "accuracy": acc,
        "disagree_n": dn,
        "disagree_correct": dk,
        "disagree_accuracy": dacc,
        "sample_accuracy": sample_accuracy,
    }


def _errors_by_kind(store: Store, run_id: int) -> dict[str, int]:
    """Failed calls by their error kind, and failed programs / parses by theirs."""
    counts: Counter[str] = Counter()
    for row in store.query(
        """
        SELECT c.error_kind FROM samples s LEFT JOIN calls c ON c.id = s.call_id
        WHERE s.run_id = ? AND s.status = 'error'
        """,
        (run_id,),
    ):
        counts[f"call:{row['error_kind'] or 'unknown'}"] += 1
    for row in store.samples(run_id, SOLVE, status=SampleStatus.DONE):
        kind = row["payload"].get("answer_error_kind")
        if kind:
            counts[str(kind)] += 1
    return dict(counts)


def format_table(summary: Mapping[str, Any]) -> str:
    """The summary table as aligned text (for the CLI and logs)."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:5.1f}%"

    lines = [f"{'method':<22} {'acc':>7} {'n':>5} {'disagree acc':>13} {'n':>5} {'per-sample':>11}"]
    for name, r in summary.get("table", {}).items():
        overall = f"{pct(r['accuracy']):>7} {r['n']:>5}"
        disagree = f"{pct(r['disagree_accuracy']):>13} {r['disagree_n']:>5}"
        lines.append(f"{name:<22} {overall} {disagree} {pct(r['sample_accuracy']):>11}")
    return "\n".join(lines)


@dataclass(frozen=True)
class MethodRow:
    """One row of the methods table, for ``workbench analyse`` and exports."""

    row: str  # a method, "vote", or "oracle"
    n: int
    correct: int
    accuracy: float | None
    disagree_n: int
    disagree_correct: int
    disagree_accuracy: float | None
    sample_accuracy: float | None


def methods_tables(store: Store, run_id: int) -> dict[str, list[MethodRow]]:
    """The run's table as analysis rows (``core.report`` shows it for methods runs)."""
    config = store.get_run(run_id)["config"]
    opts = PostOptions(methods=tuple(config.get("methods") or ("cot", "pal", "plan")))
    summary = summarise_run(store, run_id, opts)
    rows = [MethodRow(row=name, **values) for name, values in summary["table"].items()]
    return {"methods: accuracy overall and on disagreement rows": rows}
