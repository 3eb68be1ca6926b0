"""Two runs side by side: each metric with its interval, the difference, the paired test,
and the (problem, sample) pairs the runs disagree on.

The numbers come from the metrics layer (``run_metrics``) and ``analysis.comparisons``;
the paired test pairs the samples each run's headline metric counts, as ``workbench
compare`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.analysis import load_outcomes, paired_comparison, run_metrics
from workbench.core.analysis.comparisons import (
    Disagreement,
    MetricDifference,
    PairedComparison,
    disagreements,
    metric_differences,
)
from workbench.core.analysis.metrics import headline_counts
from workbench.core.analysis.rates import GradedSample
from workbench.core.store import Store, shown_run_status


@dataclass(frozen=True)
class RunBrief:
    id: int
    name: str
    kind: str
    status: str

    def title(self) -> str:
        return f"#{self.id} {self.name} ({self.kind}, {self.status})"


@dataclass(frozen=True)
class RunComparison:
    a: RunBrief
    b: RunBrief
    metrics: tuple[MetricDifference, ...]
    paired: PairedComparison | None  # None: no (problem, sample) pair in common
    disagreements: tuple[Disagreement, ...]


def _brief(store: Store, run_id: int) -> RunBrief:
    run = store.get_run(run_id)
    return RunBrief(run_id, str(run["name"] or ""), str(run["kind"]), str(shown_run_status(run)))


def _headline_outcomes(store: Store, run_id: int, kind: str) -> list[GradedSample]:
    """The samples the run's headline metric counts (recovery: perturbed continuations)."""
    return [o for o in load_outcomes(store, run_id) if headline_counts(kind, o)]


def compare_runs(store: Store, run_a: int, run_b: int) -> RunComparison:
    a, b = _brief(store, run_a), _brief(store, run_b)
    side_a = _headline_outcomes(store, run_a, a.kind)
    side_b = _headline_outcomes(store, run_b, b.kind)
    paired = paired_comparison(side_a, side_b, label_a=f"run {run_a}", label_b=f"run {run_b}")
    return RunComparison(
        a,
        b,
        tuple(metric_differences(run_metrics(store, run_a), run_metrics(store, run_b))),
        paired if paired.n_pairs else None,
        tuple(disagreements(side_a, side_b)),
    )
