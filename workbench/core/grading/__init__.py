"""Answer extraction, equivalence (fast path + math-verify in timed worker processes), grades,
and recovery detection."""

from workbench.core.grading.answers import find_answer, parse_number
from workbench.core.grading.detection import Detection, detect_recovery
from workbench.core.grading.grader import GRADER_NAME, Grade, grade_answer, grade_many, store_grades

__all__ = [
    "GRADER_NAME",
    "Detection",
    "Grade",
    "detect_recovery",
    "find_answer",
    "grade_answer",
    "grade_many",
    "parse_number",
    "store_grades",
]
