"""Analysis: rates with Wilson intervals, bins, recovery tables, paired tests, exports."""

from workbench.core.analysis.comparisons import cost_per_correct, paired_comparison
from workbench.core.analysis.export import iter_sample_rows
from workbench.core.analysis.stats import Rate, wilson

__all__ = ["Rate", "cost_per_correct", "iter_sample_rows", "paired_comparison", "wilson"]
