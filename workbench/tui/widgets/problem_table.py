"""A DataTable of problem rows that asks for the next page near its end.

The table holds only the pages loaded so far; the screen answers ``NeedMore``
by querying the next page in a worker, so 100,000 problems never sit in memory
or in the widget at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from workbench.core.analysis.stats import format_bound

#: ask for more when the cursor or the viewport is this many rows from the end
LOOKAHEAD_ROWS = 60

COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("mark", " ", 1),
    ("dataset", "dataset", 16),
    ("id", "id", 24),
    ("level", "level / subject", 22),
    ("steps", "steps", 5),
    ("solve", "solve", 6),
    ("bin", "bin", 6),
    ("question", "question", 90),  # last: the one column that may run off the right edge
)
SELECTED_MARK = "●"
ID_WIDTH = 24
#: below this many columns the id and level columns narrow so the question keeps ~40
NARROW_BELOW = 130
#: column -> width when narrow (level / subject is on the filter row and in the details)
NARROW_WIDTHS = {"dataset": 12, "id": 14, "level": 0}


DATASET_WIDTH = 16


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _get(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def short_id(problem_id: str, dataset_id: str | None) -> str:
    """The id without its dataset prefix, keeping the informative tail when too long."""
    short = problem_id.removeprefix(f"{dataset_id}/") if dataset_id else problem_id
    return short if len(short) <= ID_WIDTH else "…" + short[-(ID_WIDTH - 1) :]


def row_cells(row: Any, selected: bool, preview: str = "") -> list[Text]:
    """The cells for one light problem row (a mapping or an object with the fields)."""
    level, subject = _get(row, "level"), _get(row, "subject")
    where = " ".join(p for p in (f"L{level}" if level is not None else "", subject or "") if p)
    rate = _get(row, "solve_rate")
    n_steps = _get(row, "n_steps")
    # Text, never markup: ids, sources and subjects come from the user's files
    return [
        Text(SELECTED_MARK if selected else " ", style="bold"),
        Text(_fit(str(_get(row, "dataset_id") or ""), DATASET_WIDTH)),
        Text(short_id(str(_get(row, "id")), _get(row, "dataset_id"))),
        Text(where or "—"),
        Text(str(n_steps if n_steps is not None else ""), justify="right"),
        # the one rounding rule (half up, one decimal for a handful of samples): 37.5% stays
        # 37.5%, never "38%"
        Text("—" if rate is None else format_bound(rate, 1), justify="right"),
        Text(str(_get(row, "bin") or "—")),
        Text(preview, style="dim", no_wrap=True, overflow="ellipsis"),
    ]


class ProblemTable(DataTable[Any]):
    """Row cursor, zebra stripes, and a ``NeedMore`` message near the end."""

    # a list of rows scrolls vertically: home / end go to the first / last loaded row
    BINDINGS = [
        Binding("enter", "select_cursor", "Open", id="problems.details_key"),
        Binding("home", "scroll_top", "First", show=False, id="problems.first"),
        Binding("end", "scroll_bottom", "Last", show=False, id="problems.last"),
    ]

    class NeedMore(Message):
        """The user is close to the last loaded row."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.exhausted = False  # set by the screen when the last page arrived
        self._asked_at = -1  # row count when NeedMore was last posted (ask once per page)
        self._appending = False

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        self.fit_question_column()

    def fit_question_column(self) -> None:
        """Give the question preview whatever width the other columns leave; on a narrow
        terminal the id and level columns give up room first (the question is what a row
        is read by)."""
        if "question" not in self.columns:
            return
        narrow = self.scrollable_content_region.width < NARROW_BELOW
        for key, label, wide_width in COLUMNS:
            width = NARROW_WIDTHS.get(key, wide_width) if narrow else wide_width
            column = self.columns.get(ColumnKey(key))
            if column is not None and width is not None and column.width != width:
                column.width = width
                column.label = Text("" if width == 0 else label)
        question = self.columns[ColumnKey("question")]
        others = sum(c.get_render_width(self) for k, c in self.columns.items() if k != "question")
        width = max(0, self.scrollable_content_region.width - others - 2 * self.cell_padding)
        if width != question.width:
            question.width = width
            # DataTable has no public "column resized" hook; these are what add_column sets
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()

    def reset(self) -> None:
        self.clear()
        self.exhausted = False
        self._asked_at = -1

    def append_rows(
        self,
        rows: Iterable[Any],
        selected: set[str] | dict[str, None],
        previews: Mapping[str, str] | None = None,
    ) -> int:
        added = 0
        self._appending = True  # add_row moves the cursor; that is not the user asking
        try:
            for row in rows:
                pid = str(_get(row, "id"))
                if pid in self.rows:
                    continue  # a page boundary shifted under concurrent inserts
                preview = (previews or {}).get(pid, "")
                self.add_row(*row_cells(row, pid in selected, preview), key=pid)
                added += 1
        finally:
            self._appending = False
        return added

    def set_mark(self, problem_id: str, selected: bool) -> None:
        if problem_id in self.rows:
            mark = Text(SELECTED_MARK if selected else " ", style="bold")
            self.update_cell(problem_id, "mark", mark)

    def _maybe_need_more(self, row: float) -> None:
        if self._appending or self.exhausted or self.row_count == 0:
            return
        if self._asked_at == self.row_count:
            return
        if row >= self.row_count - LOOKAHEAD_ROWS:
            self._asked_at = self.row_count
            self.post_message(self.NeedMore())

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        self._maybe_need_more(new.row)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._maybe_need_more(new_value + self.scrollable_content_region.height)
