"""The Problems filter bar: incremental search plus source / level / subject / bin / model /
grades / scope (``model`` chooses whose solve rate and bin the table shows and filters on;
``scope`` narrows to one dataset or one problem set).

It owns the debounce and turns widget events into one ``Changed`` message
carrying the view-state fields that changed, so the screen only reacts to
"the filters are now X".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Select

#: wait this long after a keystroke before searching (enter searches at once)
SEARCH_DEBOUNCE_S = 0.04  # a search answers in milliseconds through the trigram index
FACETS = ("source", "level", "subject", "bin", "model")  # model: whose solve rate / bin
#: scope values: "dataset:NAME" or "set:NAME" (one Select for both keeps the row short)
SCOPE_KINDS = ("dataset", "set")


def scope_value(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def scope_changes(value: str | None) -> dict[str, str | None]:
    """The view-state fields a scope choice sets (``None``: no scope)."""
    kind, _, name = (value or "").partition(":")
    return {
        "dataset": name if kind == "dataset" else None,
        "problem_set": name if kind == "set" else None,
    }


class ProblemFilterBar(Horizontal):
    class Changed(Message):
        """``changes`` maps ViewState field names to their new values."""

        def __init__(self, changes: dict[str, Any], *, submitted: bool = False) -> None:
            super().__init__()
            self.changes = changes
            self.submitted = submitted  # enter in the search box: hand focus back

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ search question or id", id="problems-search")
        for name in FACETS:
            yield Select[str]([], prompt=name, id=f"filter-{name}")
        yield Select[str](
            [("graded", "yes"), ("ungraded", "no")], prompt="grades", id="filter-graded"
        )
        yield Select[str]([], prompt="scope", id="filter-scope")

    @property
    def search(self) -> Input:
        return self.query_one("#problems-search", Input)

    def set_facets(self, facets: Mapping[str, Sequence[str]]) -> None:
        """Offer the values found in the library; keep a choice that is still there."""
        for name, values in facets.items():
            select = self.query_one(f"#filter-{name}", Select)
            current = select.value
            with self.prevent(Select.Changed):  # offering choices changes no filter
                select.set_options([(self._label(name, v), v) for v in values])
                if current in values:
                    select.value = current

    @staticmethod
    def _label(name: str, value: str) -> str:
        if name == "level":
            return f"L{value}"
        if name == "scope":
            kind, _, rest = value.partition(":")
            return f"{kind} {rest}"
        return value

    def set_scope(self, value: str | None) -> None:
        """Show ``value`` ("set:NAME", ...) as the scope without posting a change."""
        select = self.query_one("#filter-scope", Select)
        with self.prevent(Select.Changed):
            if value is None:
                select.clear()
            else:
                select.value = value

    def clear(self) -> None:
        """Blank every control without posting a change per control."""
        self._stop_timer()
        with self.prevent(Select.Changed, Input.Changed):
            for select in self.query(Select):
                select.clear()
            self.search.value = ""

    def clear_search(self) -> None:
        self._stop_timer()
        with self.prevent(Input.Changed):
            self.search.value = ""
        self.post_message(self.Changed({"search": ""}))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @on(Input.Changed, "#problems-search")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self._stop_timer()
        value = event.value.strip()
        self._timer = self.set_timer(
            SEARCH_DEBOUNCE_S, lambda: self.post_message(self.Changed({"search": value}))
        )

    @on(Input.Submitted, "#problems-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._stop_timer()
        self.post_message(self.Changed({"search": event.value.strip()}, submitted=True))

    @on(Select.Changed)
    def _chosen(self, event: Select.Changed) -> None:
        event.stop()
        name = (event.select.id or "").removeprefix("filter-")
        value = None if event.value is Select.NULL else str(event.value)
        if name == "graded":
            self.post_message(
                self.Changed({"has_grade": None if value is None else value == "yes"})
            )
        elif name == "scope":
            self.post_message(self.Changed(dict(scope_changes(value))))
        elif name in FACETS:
            self.post_message(self.Changed({name: value}))
