"""A step shown before and after perturbation, as a word diff in theme colours."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from workbench.core.text import Segment, word_diff

_DELETED = "[$text-error on $error-muted strike]$t[/]"
_INSERTED = "[$text-success on $success-muted bold]$t[/]"
_LABEL = "[$text-muted]$t[/]"


def diff_content(segments: Sequence[Segment], *, side: str) -> Content:
    """One side of a diff: ``"old"`` shows deletions, ``"new"`` insertions, ``"both"`` all."""
    parts: list[Content] = []
    for op, text in segments:
        if op == "equal":
            parts.append(Content(text))
        elif op == "delete" and side in ("old", "both"):
            parts.append(Content.from_markup(_DELETED, t=text))
        elif op == "insert" and side in ("new", "both"):
            parts.append(Content.from_markup(_INSERTED, t=text))
    return Content.assemble(*parts)


def step_diff_content(original: str, perturbed: str | None, *, note: str = "") -> Content:
    """The original step over the perturbed step, changes highlighted."""
    if perturbed is None:
        return Content.assemble(
            Content.from_markup(_LABEL, t="original   "),
            Content(original),
            "\n",
            Content.from_markup(_LABEL, t="perturbed  "),
            Content.from_markup("[$text-warning]$t[/]", t="(no parsable step)"),
            *(("\n", Content.from_markup(_LABEL, t=note)) if note else ()),
        )
    segments = word_diff(original, perturbed)
    return Content.assemble(
        Content.from_markup(_LABEL, t="original   "),
        diff_content(segments, side="old"),
        "\n",
        Content.from_markup(_LABEL, t="perturbed  "),
        diff_content(segments, side="new"),
        *(("\n", Content.from_markup(_LABEL, t=note)) if note else ()),
    )


class StepDiff(Static):
    """Shows one original/perturbed pair; ``show`` replaces it."""

    DEFAULT_CSS = """
    StepDiff {
        height: auto;
        padding: 0 1;
        border: round $primary-muted;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.original: str | None = None
        self.perturbed: str | None = None

    def show(self, original: str, perturbed: str | None, *, note: str = "") -> None:
        self.original, self.perturbed = original, perturbed
        self.update(step_diff_content(original, perturbed, note=note))

    def clear(self, message: str = "") -> None:
        self.original = self.perturbed = None
        self.update(Content.from_markup(_LABEL, t=message))
