"""Comparisons over graded outcomes: two models or two prompt versions, and cost.

``paired_comparison`` pairs A and B on (problem, sample index) and reports the
2x2 counts, an exact McNemar p-value and the accuracy difference with a
bootstrap interval that resamples problems.  ``cost_per_correct`` divides each
model's spend (``analysis.queries.load_call_costs``) by its correct answers, keeping
unknown prices unknown.

Rows (frozen dataclasses, flatten with ``analysis.as_row``):

- ``PairedComparison``: A vs B on the same (problem, sample) pairs: the 2x2 counts,
  exact McNemar p-value, the accuracy difference with a problem-level bootstrap CI.
- ``CostRow``: one model (and ``all``): dollars spent, unpriced calls, correct
  answers, cost per correct.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from workbench.core.analysis.metrics import RunMetrics
from workbench.core.analysis.rates import GradedSample, graded
from workbench.core.analysis.stats import Rate, bootstrap_diff, mcnemar_exact, wilson

# -- paired comparisons ----------------------------------------------------


@dataclass(frozen=True)
class PairedComparison:
    """A vs B on the same (problem, sample index) pairs."""

    label_a: str
    label_b: str
    n_pairs: int
    n_problems: int
    both: int
    a_only: int  # A right, B wrong
    b_only: int
    neither: int
    accuracy_a: Rate
    accuracy_b: Rate
    difference: float  # accuracy A - accuracy B over the pairs
    diff_low: float  # bootstrap CI over problems
    diff_high: float
    p_value: float  # exact McNemar
    confidence: float = 0.95


def paired_comparison(
    a: Iterable[GradedSample],
    b: Iterable[GradedSample],
    *,
    label_a: str = "A",
    label_b: str = "B",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Compare two models or two prompt versions on the same problems.

    Pairs are matched on (problem id, sample index); unmatched samples are
    ignored.  McNemar uses the discordant pairs; the bootstrap resamples
    problems so that samples of one problem stay together.
    """
    index_a = {(o.problem_id, o.sample_index): bool(o.correct) for o in graded(a)}
    index_b = {(o.problem_id, o.sample_index): bool(o.correct) for o in graded(b)}
    keys = sorted(set(index_a) & set(index_b), key=lambda k: (str(k[0]), k[1]))
    both = sum(index_a[k] and index_b[k] for k in keys)
    a_only = sum(index_a[k] and not index_b[k] for k in keys)
    b_only = sum(index_b[k] and not index_a[k] for k in keys)
    clusters: dict[str | None, tuple[list[bool], list[bool]]] = defaultdict(lambda: ([], []))
    for k in keys:
        clusters[k[0]][0].append(index_a[k])
        clusters[k[0]][1].append(index_b[k])
    diff, lo, hi = bootstrap_diff(
        list(clusters.values()), n_boot=n_boot, confidence=confidence, seed=seed
    )
    n = len(keys)
    return PairedComparison(
        label_a=label_a,
        label_b=label_b,
        n_pairs=n,
        n_problems=len(clusters),
        both=both,
        a_only=a_only,
        b_only=b_only,
        neither=n - both - a_only - b_only,
        accuracy_a=wilson(both + a_only, n, confidence=confidence),
        accuracy_b=wilson(both + b_only, n, confidence=confidence),
        difference=diff,
        diff_low=lo,
        diff_high=hi,
        p_value=mcnemar_exact(a_only, b_only),
        confidence=confidence,
    )


# -- cost ------------------------------------------------------------------


@dataclass(frozen=True)
class CostRow:
    model: str
    cost_usd: float | None  # None when no call of this model had a known price
    n_unpriced: int  # calls whose price is unknown (their cost is not in cost_usd)
    n_correct: int
    cost_per_correct: float | None  # None when nothing was correct or nothing priced


def cost_per_correct(
    costs: Mapping[str, tuple[float, int, int]], outcomes: Iterable[GradedSample]
) -> list[CostRow]:
    """Dollars per correct answer, per model and in total (``load_call_costs`` gives ``costs``).

    The total row divides every model's spend (perturbers and judges
    included) by the correct answers of the run: the price of a result.
    """
    correct: dict[str, int] = defaultdict(int)
    for o in graded(outcomes):
        correct[o.model or "-"] += int(bool(o.correct))
    rows = []
    for model in sorted(set(costs) | set(correct)):
        cost, priced, unpriced = costs.get(model, (0.0, 0, 0))
        rows.append(_cost_row(model, cost if priced else None, unpriced, correct.get(model, 0)))
    any_priced = any(p for _, p, _ in costs.values())
    total = sum(c for c, _, _ in costs.values()) if any_priced else None
    rows.append(
        _cost_row("all", total, sum(u for _, _, u in costs.values()), sum(correct.values()))
    )
    return rows


def _cost_row(model: str, cost: float | None, unpriced: int, n_correct: int) -> CostRow:
    per = cost / n_correct if cost is not None and n_correct else None
    return CostRow(model, cost, unpriced, n_correct, per)


# -- two runs side by side -----------------------------------------------------


@dataclass(frozen=True)
class MetricDifference:
    """One metric (name, key) of two runs: each side's value and A - B when both have data."""

    name: str
    key: str
    label: str
    a: Rate | None
    b: Rate | None
    difference: float | None  # rate A - rate B; None when either side has nothing graded


def metric_differences(a: RunMetrics, b: RunMetrics) -> list[MetricDifference]:
    """Every metric either run has, in ``METRICS`` order (A's first, then B's extra ones)."""
    index_a = {(v.name, v.key): v for v in a.values}
    index_b = {(v.name, v.key): v for v in b.values}
    rows = []
    for key in dict.fromkeys([*index_a, *index_b]):
        va, vb = index_a.get(key), index_b.get(key)
        ra, rb = (va.rate if va else None), (vb.rate if vb else None)
        diff = (
            ra.rate - rb.rate
            if ra is not None and rb is not None and ra.rate is not None and rb.rate is not None
            else None
        )
        label = (va or vb).label  # type: ignore[union-attr]
        rows.append(MetricDifference(key[0], key[1], label, ra, rb, diff))
    return rows


@dataclass(frozen=True)
class Disagreement:
    """A (problem, sample index) pair that one side got right and the other wrong."""

    problem_id: str | None
    sample_index: int
    a_correct: bool
    b_correct: bool
    a_sample_id: int
    b_sample_id: int


def disagreements(a: Iterable[GradedSample], b: Iterable[GradedSample]) -> list[Disagreement]:
    """The discordant pairs ``paired_comparison`` counts, by problem then sample index."""
    index_b = {(o.problem_id, o.sample_index): o for o in graded(b)}
    found = []
    for o in graded(a):
        other = index_b.get((o.problem_id, o.sample_index))
        if other is not None and bool(o.correct) != bool(other.correct):
            found.append(
                Disagreement(
                    o.problem_id,
                    o.sample_index,
                    bool(o.correct),
                    bool(other.correct),
                    o.sample_id,
                    other.sample_id,
                )
            )
    return sorted(found, key=lambda d: (str(d.problem_id), d.sample_index))
