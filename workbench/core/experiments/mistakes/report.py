"""Tables for ``workbench analyse`` on mistake-finding and backtracking runs.

Rates come from the metrics layer; the backtracking table adds the paired test: each
continuation against its own trace's original verdict (exact McNemar on the discordant
pairs), per arm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from workbench.core.analysis import queries
from workbench.core.analysis.metrics import SampleKind, f1_scores, sample_kind
from workbench.core.analysis.stats import Rate, mcnemar_exact, wilson
from workbench.core.store import Store


@dataclass(frozen=True)
class MistakeFindingRow:
    task: str  # "all" for every task together
    mistake_found: Rate
    no_mistake: Rate
    f1: float | None


@dataclass(frozen=True)
class BacktrackPairRow:
    arm: str
    pairs: int  # continuations, each paired with its trace's own verdict
    right_before: Rate
    right_after: Rate
    fixed: int  # wrong trace, right continuation
    broken: int  # right trace, wrong continuation
    p_value: float  # exact McNemar on fixed vs broken


def mistake_tables(store: Store, run_id: int) -> dict[str, list[Any]]:
    metrics = queries.run_metrics(store, run_id)
    f1 = f1_scores(metrics)
    rows = []
    for found in metrics.of("mistake_location"):
        clean = metrics.get("no_mistake_accuracy", found.key)
        rows.append(
            MistakeFindingRow(
                found.key or "all",
                found.rate,
                clean.rate if clean is not None else wilson(0, 0),
                f1.get(found.key),
            )
        )
    return {"first mistake, by task": rows}


def backtrack_tables(store: Store, run_id: int) -> dict[str, list[Any]]:
    pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for o in queries.load_outcomes(store, run_id, stage="backtrack"):
        if sample_kind(o.stage, o.payload) is not SampleKind.BACKTRACK or o.correct is None:
            continue
        before = o.payload.get("original_correct")
        if isinstance(before, bool):
            pairs[str(o.payload.get("arm") or "-")].append((before, bool(o.correct)))
    rows = []
    for arm, pp in sorted(pairs.items()):
        fixed = sum(1 for b, a in pp if not b and a)
        broken = sum(1 for b, a in pp if b and not a)
        rows.append(
            BacktrackPairRow(
                arm,
                len(pp),
                wilson(sum(b for b, _ in pp), len(pp)),
                wilson(sum(a for _, a in pp), len(pp)),
                fixed,
                broken,
                mcnemar_exact(broken, fixed),
            )
        )
    return {"backtracking, paired with each original trace": rows}
