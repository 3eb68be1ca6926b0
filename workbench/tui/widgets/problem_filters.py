"""The Problems filter bar: incremental search plus source / level / subject / bin / model /
grades (``model`` chooses whose solve rate and bin the table shows and filters on).

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

    @property
    def search(self) -> Input:
        return self.query_one("#problems-search", Input)

    def set_facets(self, facets: Mapping[str, Sequence[str]]) -> None:
        """Offer the values found in the library; keep a choice that is still there."""
        for name, values in facets.items():
            select = self.query_one(f"#filter-{name}", Select)
            current = select.value
            select.set_options([(f"L{v}" if name == "level" else v, v) for v in values])
            if current in values:
                select.value = current

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
        elif name in FACETS:
            self.post_message(self.Changed({name: value}))
