"""Compare two runs side by side: metrics with intervals, the difference, the paired test,
and the problems the runs disagree on (enter / ``a`` opens run A's trace, ``b`` run B's).

Every number comes from ``core.views.compare`` (the metrics layer and
``analysis.comparisons``); this screen only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core.analysis import Rate, format_rate
from workbench.core.analysis.metrics import format_interval
from workbench.core.views.compare import RunComparison, compare_runs
from workbench.tui.messages import OpenRun
from workbench.tui.workspace import workspace_of


@dataclass
class ComparisonLoaded(Message):
    comparison: RunComparison | None
    error: str | None


def _side(rate: Rate | None) -> str:
    """``32.0% (23/72) [25.1%, 39.8%]``: the rate with its interval."""
    if rate is None or not rate.n:
        return "–"
    return f"{format_rate(rate)} {format_interval(rate)}"


def _verdict(correct: bool) -> Text:
    return Text("right", style="green") if correct else Text("wrong", style="red")


def paired_line(c: RunComparison) -> str:
    """The CLI's ``compare`` lines, for the paired test."""
    r = c.paired
    if r is None:
        return "paired test: no (problem, sample) pairs in common"
    return (
        f"pairs {r.n_pairs:,} on {r.n_problems:,} problems: both right {r.both:,}, "
        f"A only {r.a_only:,}, B only {r.b_only:,}, neither {r.neither:,}\n"
        f"A - B = {r.difference:+.1%} [{r.diff_low:+.1%}, {r.diff_high:+.1%}] "
        f"(bootstrap over problems, {r.confidence:.0%}); McNemar exact p = {r.p_value:.3g}"
    )


class CompareScreen(Screen[None]):
    """Run A against run B; escape goes back."""

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="compare.back"),
        Binding("A", "open_trace('a')", "Trace A", id="compare.trace_a"),
        Binding("B", "open_trace('b')", "Trace B", id="compare.trace_b"),
        Binding("S", "swap", "Swap A/B", id="compare.swap"),
    ]

    def __init__(self, run_a: int, run_b: int) -> None:
        super().__init__()
        self.run_a, self.run_b = run_a, run_b
        self.comparison: RunComparison | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="compare-title")
        with Vertical(id="compare-body"):
            metrics: DataTable[str | Text] = DataTable(id="compare-metrics", cursor_type="row")
            yield metrics
            yield Static("", id="compare-paired", markup=False)
            yield Static("", id="compare-dis-title", classes="compare-section")
            table: DataTable[str | Text] = DataTable(
                id="compare-disagreements", cursor_type="row", zebra_stripes=True
            )
            yield table
        yield Footer()

    def on_mount(self) -> None:
        metrics = self.query_one("#compare-metrics", DataTable)
        for col in ("metric", "A", "B", "A - B"):
            metrics.add_column(col, key=col)
        table = self.query_one("#compare-disagreements", DataTable)
        for col in ("problem", "sample", "A", "B"):
            table.add_column(col, key=col)
        self._load()

    def _load(self) -> None:
        self.query_one("#compare-title", Static).update(
            f"comparing run {self.run_a} (A) with run {self.run_b} (B)…"
        )
        self._compare(self.run_a, self.run_b)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _compare(self, run_a: int, run_b: int) -> None:
        try:
            with workspace_of(self).thread_store() as store:
                comparison = compare_runs(store, run_a, run_b)
        except Exception as exc:  # one line; the screen stays
            self.post_message(ComparisonLoaded(None, str(exc)))
            return
        self.post_message(ComparisonLoaded(comparison, None))

    @on(ComparisonLoaded)
    def _loaded(self, message: ComparisonLoaded) -> None:
        title = self.query_one("#compare-title", Static)
        c = message.comparison
        if c is None:
            title.update(Text(f"cannot compare: {message.error}", style="bold red"))
            return
        if (c.a.id, c.b.id) != (self.run_a, self.run_b):
            return  # swapped meanwhile
        self.comparison = c
        title.update(Text(f"A = {c.a.title()}\nB = {c.b.title()}"))
        metrics = self.query_one("#compare-metrics", DataTable)
        metrics.clear()
        for m in c.metrics:
            diff = "–" if m.difference is None else f"{m.difference:+.1%}"
            metrics.add_row(m.label, _side(m.a), _side(m.b), diff)
        self.query_one("#compare-paired", Static).update(paired_line(c))
        table = self.query_one("#compare-disagreements", DataTable)
        table.clear()
        for i, d in enumerate(c.disagreements):
            table.add_row(
                str(d.problem_id or "–"),
                str(d.sample_index),
                _verdict(d.a_correct),
                _verdict(d.b_correct),
                key=str(i),
            )
        n = len(c.disagreements)
        self.query_one("#compare-dis-title", Static).update(
            f"{n:,} disagreements · enter/a open A's trace · b open B's trace"
            if n
            else "the runs agree on every paired sample"
        )
        if n:
            table.focus()

    # -- actions --------------------------------------------------------------

    def action_open_trace(self, side: str) -> None:
        c = self.comparison
        table = self.query_one("#compare-disagreements", DataTable)
        if c is None or not c.disagreements or not table.row_count:
            return
        d = c.disagreements[min(table.cursor_row, len(c.disagreements) - 1)]
        if side == "a":
            self.post_message(OpenRun(c.a.id, "traces", sample_id=d.a_sample_id))
        else:
            self.post_message(OpenRun(c.b.id, "traces", sample_id=d.b_sample_id))

    @on(DataTable.RowSelected, "#compare-disagreements")
    def _row_chosen(self) -> None:
        self.action_open_trace("a")

    def action_swap(self) -> None:
        self.run_a, self.run_b = self.run_b, self.run_a
        self.comparison = None
        self._load()

    def action_back(self) -> None:
        self.dismiss()
