"""Text for the terminal: readable LaTeX and word diffs."""

from workbench.core.text.diff import Segment, changed_fraction, word_diff
from workbench.core.text.latex import latex_to_text

__all__ = ["Segment", "changed_fraction", "latex_to_text", "word_diff"]
