"""Trace stepper: keyboard-first reading of a run's samples.

Opening a run loads only the ids that pass the filter (a thread worker, one
indexed query); each move loads one sample by primary key on the UI thread
(well under a millisecond), so stepping never waits on the run's size.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, replace

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from workbench.core.errors import StoreError
from workbench.core.views.methods import methods_row
from workbench.core.views.requests import load_request
from workbench.core.views.traces import (
    FilterChoices,
    TraceFilter,
    TraceIndex,
    TraceView,
    add_label,
    filter_choices,
    first_trace_id,
    load_trace,
    trace_index,
)
from workbench.core.views.workspace import latest_run_id
from workbench.tui.commands import PaletteCommand
from workbench.tui.dialogs import choose_run
from workbench.tui.export_dialog import open_export
from workbench.tui.screens.trace_dialogs import LabelDialog, RequestDialog, TraceFilterDialog
from workbench.tui.widgets import trace_render
from workbench.tui.workspace import Workspace, workspace_of

_EMPTY_CHOICES = FilterChoices((), (), (), (), (), ())


@dataclass
class TraceIndexLoaded(Message):
    """The worker finished listing a run's traces under a filter."""

    run_id: int
    flt: TraceFilter
    index: TraceIndex
    choices: FilterChoices | None
    keep_sample: int | None


@dataclass
class FirstTraceLoaded(Message):
    """The first sample under a filter, found before the whole index is listed."""

    run_id: int
    flt: TraceFilter
    sample_id: int


@dataclass
class FilterChoicesLoaded(Message):
    run_id: int
    choices: FilterChoices


@dataclass
class TraceIndexFailed(Message):
    run_id: int
    error: str


class TracesScreen(Screen[None]):
    """j/k samples, J/K problems, f filter, / search, l label, y copy, d request sent."""

    PALETTE = (
        PaletteCommand("traces: open latest", "Step through the latest run", "open_latest"),
        PaletteCommand("traces: export", "Export the run on show (samples or tables)", "export"),
    )
    CSS_PATH = "traces.tcss"
    BINDINGS = [
        Binding("j,down", "step(1)", "Next", id="traces.next"),
        Binding("k,up", "step(-1)", "Prev", id="traces.previous"),
        Binding("J", "problem(1)", "Next problem", id="traces.next_problem"),
        Binding("K", "problem(-1)", "Prev problem", id="traces.previous_problem"),
        Binding("f", "filter", "Filter", id="traces.filter"),
        Binding("slash", "search", "Search", id="traces.search"),
        Binding("l", "label", "Label", id="traces.label"),
        Binding("y", "copy", "Copy", id="traces.copy"),
        Binding("d", "request", "Request sent", id="traces.request"),
        Binding("R", "choose_run", "Pick run", id="traces.run"),
        Binding("x", "export", "Export", id="traces.export"),
        Binding("c", "clear_filter", "Clear filters", id="traces.clear", show=False),
        Binding("home,g", "jump(0)", "First", id="traces.first", show=False),
        Binding("end,G", "jump(-1)", "Last", id="traces.last", show=False),
    ]

    #: the sample on show, as an index into ``self.index``; every assignment redraws it
    position: var[int] = var(0, init=False, always_update=True)

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.flt = TraceFilter()
        self.index = TraceIndex(array("q"), array("q"))
        self.choices = _EMPTY_CHOICES
        self.choices_run: int | None = None  # the run ``choices`` were read for
        self.filter_wanted = False  # open the filter dialog once the choices are read
        self.view: TraceView | None = None
        self.loading = False

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="trace-bar"):
            yield Static("", id="trace-status")
        with VerticalScroll(id="trace-body"):
            yield Static("", id="trace-head")
            yield Static("Question", classes="trace-title")
            yield Static("", id="trace-question", classes="trace-block")
            yield Static("Reference steps", classes="trace-title")
            yield Static("", id="trace-steps", classes="trace-block")
            yield Static("Continuation", id="trace-continuation-title", classes="trace-title")
            yield Static("", id="trace-continuation", classes="trace-block")
            yield Static("Grade", classes="trace-title")
            yield Static("", id="trace-grade", classes="trace-block")
            yield Static("Methods", id="trace-methods-title", classes="trace-title")
            yield Static("", id="trace-methods", classes="trace-block")
            yield Static("Call", classes="trace-title")
            yield Static("", id="trace-meta", classes="trace-block")
        yield Static("", id="trace-empty", classes="empty-state")
        yield Footer()

    def on_mount(self) -> None:
        if self.run_id is None:
            self.action_open_latest()

    def on_screen_resume(self) -> None:
        if self.run_id is None and not self.loading:
            self.action_open_latest()

    # -- opening -------------------------------------------------------------

    def open_run(self, run_id: int, flt: TraceFilter | None = None) -> None:
        """Show ``run_id`` (from the start) under ``flt`` (default: everything)."""
        self.run_id = run_id
        self.flt = flt or TraceFilter()
        self.choices, self.choices_run = _EMPTY_CHOICES, None
        self._load(run_id, self.flt, keep_sample=None)

    def open_filtered(self, run_id: int, flt: TraceFilter) -> None:
        """Show ``run_id``'s samples under ``flt`` (a drill-down from a plot's bar)."""
        self.open_run(run_id, flt)

    def open_sample(self, run_id: int, sample_id: int) -> None:
        """Show ``run_id`` at ``sample_id`` (unfiltered, so the sample is in the index)."""
        self.run_id = run_id
        self.flt = TraceFilter(graded_only=False)
        self.choices, self.choices_run = _EMPTY_CHOICES, None
        self._load(run_id, self.flt, keep_sample=sample_id)

    def action_open_latest(self) -> None:
        latest = latest_run_id(self.workspace.store)
        if latest is None:
            self._show_empty("No runs yet.  Start one from Runs (3), then come back here.")
            return
        self.open_run(latest)

    def _load(self, run_id: int, flt: TraceFilter, *, keep_sample: int | None) -> None:
        self.loading = True
        self.query_one("#trace-status", Static).update(f"run {run_id}: loading traces…")
        self._list_traces(run_id, flt, keep_sample)

    @work(thread=True, exclusive=True, exit_on_error=False, group="traces-index")
    def _list_traces(self, run_id: int, flt: TraceFilter, keep_sample: int | None) -> None:
        try:
            store = self.workspace.store.reopen()
            try:
                # the first trace at once (one index step), then the whole list: at a
                # million samples listing takes most of a second
                first = first_trace_id(store, run_id, flt) if keep_sample is None else None
                if first is not None:
                    self.post_message(FirstTraceLoaded(run_id, flt, first))
                index = trace_index(store, run_id, flt)
                self.post_message(TraceIndexLoaded(run_id, flt, index, None, keep_sample))
            finally:
                store.close()
        except Exception as exc:  # shown as one line; the screen stays usable
            self.post_message(TraceIndexFailed(run_id, str(exc)))

    @on(FirstTraceLoaded)
    def _first_loaded(self, message: FirstTraceLoaded) -> None:
        if message.run_id != self.run_id or message.flt != self.flt or not self.loading:
            return
        self.index = TraceIndex(array("q", [message.sample_id]), array("q", [0]))
        self._show(0)

    @on(TraceIndexLoaded)
    def _index_loaded(self, message: TraceIndexLoaded) -> None:
        if message.run_id != self.run_id or message.flt != self.flt:
            return  # a newer request superseded this one
        self.loading = False
        self.index = message.index
        if message.choices is not None:
            self.choices = message.choices
        position = 0
        if message.keep_sample is not None and message.keep_sample in message.index.ids:
            position = message.index.ids.index(message.keep_sample)
        self._show(position)

    @work(thread=True, exclusive=True, exit_on_error=False, group="traces-choices")
    def _load_choices(self, run_id: int) -> None:
        """The filter dialog's lists: five scans of the run, so read when first asked for."""
        store = self.workspace.store.reopen()
        try:
            self.post_message(FilterChoicesLoaded(run_id, filter_choices(store, run_id)))
        finally:
            store.close()

    @on(FilterChoicesLoaded)
    def _choices_loaded(self, message: FilterChoicesLoaded) -> None:
        if message.run_id == self.run_id:
            self.choices = message.choices
            self.choices_run = message.run_id
            if self.filter_wanted:
                self.filter_wanted = False
                self.action_filter()

    @on(TraceIndexFailed)
    def _index_failed(self, message: TraceIndexFailed) -> None:
        self.loading = False
        self._show_empty(f"run {message.run_id}: {message.error}")

    # -- showing -------------------------------------------------------------

    def _show_empty(self, text: str) -> None:
        self.view = None
        self.query_one("#trace-body").display = False
        empty = self.query_one("#trace-empty", Static)
        empty.display = True
        empty.update(Content(text))  # may hold a filter's text or an error: never markup
        self._update_status()

    def _update_status(self) -> None:
        total = len(self.index)
        run = f"run {self.run_id}" if self.run_id is not None else "no run"
        where = f"{self.position + 1:,}/{total:,}" if total else "0/0"
        self.query_one("#trace-status", Static).update(
            Content(f"{run}  ·  sample {where}  ·  filter: {self.flt.describe()}")
        )

    def _show(self, position: int) -> None:
        if not len(self.index):
            self.set_reactive(TracesScreen.position, 0)
            note = "" if self.flt == TraceFilter() else "  Press c to clear the filter."
            self._show_empty(f"No samples match ({self.flt.describe()}).{note}")
            return
        self.position = position  # drawn by watch_position, even when it stays the same

    def validate_position(self, position: int) -> int:
        return max(0, min(position, len(self.index) - 1))

    def watch_position(self) -> None:
        if not len(self.index):
            return
        try:
            view = load_trace(self.workspace.store, self.index.ids[self.position])
        except StoreError as exc:
            self._show_empty(str(exc))
            return
        self.view = view
        self.query_one("#trace-empty").display = False
        body = self.query_one("#trace-body", VerticalScroll)
        body.display = True
        self.query_one("#trace-head", Static).update(
            trace_render.header(view, self.position, len(self.index))
        )
        self.query_one("#trace-question", Static).update(
            Content(view.question)
        )  # LaTeX brackets: plain
        self.query_one("#trace-steps", Static).update(trace_render.steps(view))
        perturbed = view.perturbed_step is not None or view.prefix is not None
        self.query_one("#trace-continuation-title", Static).update(
            "Continuation" if perturbed else "Output"
        )
        self.query_one("#trace-continuation", Static).update(trace_render.continuation(view))
        self.query_one("#trace-grade", Static).update(trace_render.grade(view))
        self._show_methods(view)
        self.query_one("#trace-meta", Static).update(trace_render.metadata(view))
        body.scroll_home(animate=False)
        self._update_status()

    def _show_methods(self, view: TraceView) -> None:
        """A methods run's trace: every method's answer for its problem, and the vote."""
        is_methods = view.method is not None or view.stage in ("vote", "resolve")
        for widget in self.query("#trace-methods-title, #trace-methods"):
            widget.display = is_methods
        if is_methods and view.problem_id is not None:
            row = methods_row(self.workspace.store, view.run_id, view.problem_id)
            self.query_one("#trace-methods", Static).update(trace_render.methods(row, view.method))

    # -- actions -------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        if len(self.index):
            self._show(self.position + delta)

    def action_jump(self, position: int) -> None:
        if len(self.index):
            self._show(position if position >= 0 else len(self.index) - 1)

    def action_problem(self, direction: int) -> None:
        if not len(self.index):
            return
        if direction > 0:
            self._show(self.index.next_problem(self.position))
        else:
            self._show(self.index.previous_problem(self.position))

    def _refilter(self, flt: TraceFilter) -> None:
        if self.run_id is None:
            return
        keep = self.view.sample_id if self.view else None
        self.flt = flt
        self._load(self.run_id, flt, keep_sample=keep)

    def action_filter(self) -> None:
        if self.run_id is None:
            return
        if self.choices_run != self.run_id:  # read them first, then open the dialog
            self.filter_wanted = True
            self.query_one("#trace-status", Static).update(
                f"run {self.run_id}: reading the filter choices…"
            )
            self._load_choices(self.run_id)
            return

        def done(result: TraceFilter | None) -> None:
            if result is not None:
                self._refilter(result)

        self.app.push_screen(TraceFilterDialog(self.flt, self.choices), done)

    def action_clear_filter(self) -> None:
        self._refilter(TraceFilter())

    def action_search(self) -> None:
        from workbench.tui.dialogs import TextInputDialog

        if self.run_id is None:
            return

        def done(text: str | None) -> None:
            if text is not None:
                self._refilter(replace(self.flt, text=text or None))

        self.app.push_screen(
            TextInputDialog(
                "Search traces",
                "Text in the continuation or the question (empty clears):",
                value=self.flt.text or "",
            ),
            done,
        )

    def action_label(self) -> None:
        view = self.view
        if view is None:
            return

        def done(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            label, note = result
            add_label(self.workspace.store, view.sample_id, label, note)
            if label not in self.choices.labels:
                self.choices = replace(self.choices, labels=(*self.choices.labels, label))
            self.notify(f"labelled sample {view.sample_id}: {label}", timeout=2)
            self._show(self.position)

        self.app.push_screen(LabelDialog(), done)

    def action_copy(self) -> None:
        if self.view is not None:
            self.app.copy_to_clipboard(self.view.as_text())
            self.notify(f"copied sample {self.view.sample_id}", timeout=2)

    def action_request(self) -> None:
        """The exact request the sample on show sent (from its stored call, redacted)."""
        view = self.view
        if view is None:
            return
        request = load_request(self.workspace.store, view.call.call_id) if view.call else None
        if request is None:
            self.notify(
                f"sample {view.sample_id} made no model call (a {view.stage} row)",
                severity="warning",
                timeout=3,
            )
            return
        self.app.push_screen(RequestDialog(request))

    def action_export(self) -> None:
        if self.run_id is not None:
            open_export(self, self.run_id)

    def action_choose_run(self) -> None:
        choose_run(self, self.workspace.store, "Open run", self.run_id, self.open_run)
