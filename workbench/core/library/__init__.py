"""The problem library: import datasets, stepify solutions, select and page problems, name sets."""

from workbench.core.library.datasets import (
    FILE_FORMATS,
    ImportReport,
    describe_import,
    import_dataset,
    import_path,
    import_samples,
    report_lines,
)
from workbench.core.library.problems import (
    Problem,
    ProblemFilter,
    ProblemSelection,
    count_problems,
    get_problem,
    select_problems,
)
from workbench.core.library.steps import join_steps, stepify

__all__ = [
    "FILE_FORMATS",
    "ImportReport",
    "Problem",
    "ProblemFilter",
    "ProblemSelection",
    "count_problems",
    "describe_import",
    "get_problem",
    "import_dataset",
    "import_path",
    "import_samples",
    "join_steps",
    "report_lines",
    "select_problems",
    "stepify",
]
