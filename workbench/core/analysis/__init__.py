"""Analysis: the one place numbers are defined.

``metrics`` defines every number a user reads (name, what it counts, interval) and
computes them; ``queries`` is the only analysis code that touches the store; ``rates`` (solve
rates, bins, recovery tables), ``stats`` (Wilson, McNemar, bootstrap) and
``comparisons`` (paired tests, cost per correct) are pure functions over the rows
it loads; ``export`` writes runs as JSONL / CSV / datasets.
"""

from workbench.core.analysis.archive import ArchiveReport, archive_run
from workbench.core.analysis.comparisons import cost_per_correct, paired_comparison
from workbench.core.analysis.export import iter_sample_rows
from workbench.core.analysis.metrics import (
    METRICS,
    MetricDefinition,
    MetricValue,
    OutcomeLabel,
    RunMetrics,
    SampleKind,
    format_percent,
    format_rate,
    outcome_label,
    sample_kind,
)
from workbench.core.analysis.queries import (
    load_bins,
    load_outcomes,
    load_straight_shot,
    run_metrics,
)
from workbench.core.analysis.rates import GradedSample, ProblemRate, recovery_table, solve_rates
from workbench.core.analysis.stats import Rate, wilson

__all__ = [
    "METRICS",
    "ArchiveReport",
    "GradedSample",
    "MetricDefinition",
    "MetricValue",
    "OutcomeLabel",
    "ProblemRate",
    "Rate",
    "RunMetrics",
    "SampleKind",
    "archive_run",
    "cost_per_correct",
    "format_percent",
    "format_rate",
    "iter_sample_rows",
    "load_bins",
    "load_outcomes",
    "load_straight_shot",
    "outcome_label",
    "paired_comparison",
    "recovery_table",
    "run_metrics",
    "sample_kind",
    "solve_rates",
    "wilson",
]
