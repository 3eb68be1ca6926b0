"""Analysis over stored, graded samples: rates, bins, recovery tables, paired tests, cost.

Pure functions over plain ``GradedSample`` rows; ``queries.py`` (``load_*`` /
``write_*``) is the only analysis code that touches the store, so screens, plots,
exports and tests all compute the same numbers from the same rows.  Every result is a small frozen dataclass (or a list
of them) that a table or a plot can render directly; ``as_row`` flattens one
into a dict for CSV / JSONL.

Rows returned (all frozen dataclasses):

- ``ProblemRate``: one (problem, model): ``rate`` (a ``Rate``: k, n, rate, low, high).
- ``ModelAccuracy``: one model: pooled ``accuracy`` over samples, mean per-problem
  solve rate, problems, ungraded samples.
- ``DifficultyRow``: one (problem, model): n, n_correct, solve_rate, bin.
- ``GroupRate``: one group of a recovery table (``by`` = problem / bin / error_type /
  step / position): ``rate`` with its interval and the number of problems in it.
- ``BesideRow``: one group: recovery ``Rate`` beside the completer's straight-shot
  ``Rate`` on the same problems, and their difference.
- ``HistogramBin`` (from ``stats``): low, high, count.

Paired comparisons (McNemar, bootstrap) and cost per correct answer are in
``comparisons.py``; the statistics themselves in ``stats.py``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.core.analysis.stats import HistogramBin, Rate, histogram, wilson
from workbench.core.payloads import TracePayload
from workbench.core.settings import BinSettings

__all__ = [
    "BesideRow",
    "DifficultyRow",
    "GradedSample",
    "GroupRate",
    "HistogramBin",
    "ModelAccuracy",
    "ProblemRate",
    "Rate",
    "as_row",
    "bin_for",
    "difficulty_rows",
    "graded",
    "model_accuracy",
    "recovery_beside_straight_shot",
    "recovery_table",
    "solve_rate_histogram",
    "solve_rates",
    "wilson",
]

SOLVER_ROLE = "solver"  # the role of straight-shot (calibration) samples
UNBINNED = "unbinned"
DEFAULT_BINS = BinSettings()
RecoveryGroup = Literal["problem", "bin", "error_type", "step", "position", "model"]


@dataclass(frozen=True)
class GradedSample:
    """One finished sample with its verdict.

    ``correct`` is True/False when graded (a response with no extractable
    answer counts as wrong), None when grading timed out, failed, or has not
    run: such samples are left out of rates and counted as ungraded.
    """

    sample_id: int
    run_id: int
    stage: str
    problem_id: str | None
    model: str | None
    sample_index: int
    correct: bool | None
    grade_status: str | None = None
    payload: TracePayload = field(default_factory=lambda: TracePayload())


# -- calibration -----------------------------------------------------------


@dataclass(frozen=True)
class ProblemRate:
    problem_id: str
    model: str
    rate: Rate
    n_ungraded: int = 0

    @property
    def solve_rate(self) -> float | None:
        return self.rate.rate


def graded(outcomes: Iterable[GradedSample]) -> list[GradedSample]:
    """Outcomes with a verdict and a problem (the ones rates are computed over)."""
    return [o for o in outcomes if o.correct is not None and o.problem_id is not None]


def solve_rates(outcomes: Iterable[GradedSample], *, confidence: float = 0.95) -> list[ProblemRate]:
    """Per (problem, model) solve rate with a Wilson interval, sorted by model then problem."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for o in outcomes:
        if o.problem_id is None:
            continue
        c = counts[(o.problem_id, o.model or "")]
        if o.correct is None:
            c[2] += 1
        else:
            c[0] += int(o.correct)
            c[1] += 1
    return [
        ProblemRate(pid, model, wilson(k, n, confidence=confidence), ungraded)
        for (pid, model), (k, n, ungraded) in sorted(counts.items(), key=lambda kv: kv[0][::-1])
    ]


@dataclass(frozen=True)
class ModelAccuracy:
    model: str
    accuracy: Rate  # pooled over every graded sample
    mean_solve_rate: float | None  # mean of per-problem rates (each problem weighs the same)
    n_problems: int
    n_ungraded: int


def model_accuracy(
    outcomes: Iterable[GradedSample], *, confidence: float = 0.95
) -> list[ModelAccuracy]:
    """Per model: accuracy over samples, and the mean of its per-problem solve rates."""
    per_problem = solve_rates(outcomes, confidence=confidence)
    by_model: dict[str, list[ProblemRate]] = defaultdict(list)
    for pr in per_problem:
        by_model[pr.model].append(pr)
    result = []
    for model, prs in sorted(by_model.items()):
        k = sum(p.rate.k for p in prs)
        n = sum(p.rate.n for p in prs)
        rates = [p.rate.rate for p in prs if p.rate.rate is not None]
        result.append(
            ModelAccuracy(
                model=model,
                accuracy=wilson(k, n, confidence=confidence),
                mean_solve_rate=sum(rates) / len(rates) if rates else None,
                n_problems=len(rates),
                n_ungraded=sum(p.n_ungraded for p in prs),
            )
        )
    return result


def solve_rate_histogram(rates: Iterable[ProblemRate], *, n_bins: int = 10) -> list[HistogramBin]:
    """Distribution of per-problem solve rates (problems with no graded sample left out)."""
    return histogram([r.rate.rate for r in rates if r.rate.rate is not None], n_bins=n_bins)


def bin_for(rate: float, bins: BinSettings = DEFAULT_BINS) -> str:
    """hard below edges[0], easy at or above edges[1], medium between."""
    low, high = bins.edges
    if rate < low:
        return bins.names[0]
    return bins.names[2] if rate >= high else bins.names[1]


@dataclass(frozen=True)
class DifficultyRow:
    problem_id: str
    model: str
    n: int
    n_correct: int
    solve_rate: float
    bin: str


def difficulty_rows(
    rates: Iterable[ProblemRate], bins: BinSettings = DEFAULT_BINS, *, min_samples: int = 1
) -> list[DifficultyRow]:
    """A difficulty bin for each (problem, model) with at least ``min_samples`` graded samples."""
    return [
        DifficultyRow(
            r.problem_id,
            r.model,
            r.rate.n,
            r.rate.k,
            r.rate.k / r.rate.n,
            bin_for(r.rate.k / r.rate.n, bins),
        )
        for r in rates
        if r.rate.n >= max(min_samples, 1)
    ]


# -- recovery --------------------------------------------------------------


@dataclass(frozen=True)
class GroupRate:
    group: str  # what the table is grouped by
    key: str
    rate: Rate
    n_problems: int


def step_position(step_index: int, n_steps: int) -> str:
    """early / middle / late: where in the solution the perturbed step sits (thirds)."""
    if n_steps <= 1:
        return "early"
    frac = step_index / (n_steps - 1)
    return "early" if frac < 1 / 3 else "late" if frac > 2 / 3 else "middle"


def _key_fn(by: RecoveryGroup, bins: Mapping[str, str] | None) -> Callable[[GradedSample], str]:
    def key(o: GradedSample) -> str:
        p = o.payload
        if by == "problem":
            return o.problem_id or "-"
        if by == "model":
            return o.model or "-"
        if by == "bin":
            return (bins or {}).get(o.problem_id or "", UNBINNED)
        if by == "error_type":
            return str(p.get("error_type") or "-")
        step = p.get("step_index")
        if not isinstance(step, int):
            return "-"
        if by == "step":
            return str(step + 1)  # 1-based, as a reader counts steps
        return step_position(step, int(p.get("n_steps") or step + 1))

    return key


def group_sample_ids(
    outcomes: Iterable[GradedSample],
    by: RecoveryGroup,
    *,
    bins: Mapping[str, str] | None = None,
) -> dict[str, tuple[int, ...]]:
    """The sample ids behind each row of ``recovery_table`` (same keys, the same graded
    samples, so a bar's n is its number of traces)."""
    key = _key_fn(by, bins)
    groups: dict[str, list[int]] = defaultdict(list)
    for o in graded(outcomes):
        groups[key(o)].append(o.sample_id)
    return {k: tuple(v) for k, v in groups.items()}


def recovery_table(
    outcomes: Iterable[GradedSample],
    by: RecoveryGroup,
    *,
    bins: Mapping[str, str] | None = None,
    confidence: float = 0.95,
) -> list[GroupRate]:
    """Recovery rate (final answer correct after a bad prefix) per group, with intervals.

    ``bins`` maps problem id -> difficulty bin (``load_bins`` for the completer).
    Steps sort numerically; bins keep the hard / medium / easy order given by ``bins``.
    """
    key = _key_fn(by, bins)
    groups: dict[str, list[GradedSample]] = defaultdict(list)
    for o in graded(outcomes):
        groups[key(o)].append(o)
    rows = [
        GroupRate(
            by,
            k,
            wilson(sum(bool(o.correct) for o in g), len(g), confidence=confidence),
            len({o.problem_id for o in g}),
        )
        for k, g in groups.items()
    ]
    order = list(dict.fromkeys((bins or {}).values())) if by == "bin" else []
    return sorted(rows, key=lambda r: _sort_key(r.key, order))


def _sort_key(key: str, order: list[str]) -> tuple[int, float, str]:
    if key in order:
        return (0, order.index(key), key)
    try:
        return (1, float(key), key)
    except ValueError:
        return (2, 0.0, key)


@dataclass(frozen=True)
class BesideRow:
    group: str
    key: str
    recovery: Rate
    straight_shot: Rate  # the completer's own straight-shot rate on the same problems
    n_problems: int

    @property
    def difference(self) -> float | None:
        r, s = self.recovery.rate, self.straight_shot.rate
        return None if r is None or s is None else r - s


def recovery_beside_straight_shot(
    recovery: Iterable[GradedSample],
    straight_shot: Iterable[GradedSample],
    *,
    by: Literal["problem", "bin", "all"] = "bin",
    bins: Mapping[str, str] | None = None,
    confidence: float = 0.95,
) -> list[BesideRow]:
    """Recovery beside straight-shot accuracy, restricted to the problems both have.

    ``straight_shot`` should be the completer's own calibration samples.
    """
    rec = graded(recovery)
    shot = graded(straight_shot)
    common = {o.problem_id for o in rec} & {o.problem_id for o in shot}

    def key(o: GradedSample) -> str:
        if by == "problem":
            return o.problem_id or "-"
        if by == "bin":
            return (bins or {}).get(o.problem_id or "", UNBINNED)
        return "all"

    rec_groups: dict[str, list[GradedSample]] = defaultdict(list)
    shot_groups: dict[str, list[GradedSample]] = defaultdict(list)
    for o in rec:
        if o.problem_id in common:
            rec_groups[key(o)].append(o)
    for o in shot:
        if o.problem_id in common:
            shot_groups[key(o)].append(o)
    order = list(dict.fromkeys((bins or {}).values())) if by == "bin" else []
    rows = []
    for k in sorted(rec_groups, key=lambda k: _sort_key(k, order)):
        r, s = rec_groups[k], shot_groups.get(k, [])
        rows.append(
            BesideRow(
                by,
                k,
                wilson(sum(bool(o.correct) for o in r), len(r), confidence=confidence),
                wilson(sum(bool(o.correct) for o in s), len(s), confidence=confidence),
                len({o.problem_id for o in r}),
            )
        )
    return rows


# -- flattening ------------------------------------------------------------


def as_row(obj: Any) -> dict[str, Any]:
    """Flatten an analysis dataclass into a dict (``Rate`` fields become ``name_k`` ...)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Rate):
            out[f"{f.name}_k"] = value.k
            out[f"{f.name}_n"] = value.n
            out[f"{f.name}_rate"] = value.rate
            out[f"{f.name}_low"] = value.low
            out[f"{f.name}_high"] = value.high
        elif isinstance(value, Mapping):
            out[f.name] = dict(value)
        else:
            out[f.name] = value
    return out
