"""Problems: search, filter, sort, sample and select problems into named sets.

Keyboard first (``/`` search, ``space`` select, ``enter`` details, ``s``
sample).  Every query is a paged call into ``workbench.core.library.problems`` run in
a thread worker with its own store connection; workers only post messages,
and handlers change widgets.  A generation number tags each query so pages
from a superseded search are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core.library import problems as core
from workbench.core.store import Store
from workbench.core.views.problems import (
    InterruptibleQuery,
    difficulty_stamp,
    problem_samples,
    problem_set_exists,
)
from workbench.tui.commands import PaletteCommand
from workbench.tui.dialogs import ChoiceDialog, ConfirmDialog, TextInputDialog
from workbench.tui.messages import OpenRun, WorkspaceChanged
from workbench.tui.screens.problems_state import (
    EMPTY_LIBRARY,
    NO_MATCH,
    SORTS,
    Counted,
    DetailLoaded,
    FacetsLoaded,
    PageLoaded,
    ProblemSamplesLoaded,
    ProblemsFailed,
    Sampled,
    SetSaved,
    ViewState,
    fetch_counts,
    fetch_facets,
    fetch_page,
    parse_sample_request,
    status_line,
    validate_set_name,
)
from workbench.tui.widgets.problem_detail import ProblemDetail
from workbench.tui.widgets.problem_filters import ProblemFilterBar
from workbench.tui.widgets.problem_table import ProblemTable
from workbench.tui.workspace import Workspace, workspace_of

PAGE_SIZE = 200


class ProblemsScreen(Screen[None]):
    """The problem library as a paged, filterable table with a detail pane."""

    PALETTE = (
        PaletteCommand("problems: search", "Search problem text and ids", "search"),
        PaletteCommand("problems: sample", "Draw N problems at random with a seed", "sample"),
        PaletteCommand(
            "problems: save selection as set",
            "Name the selected problems as a set for runs",
            "save_set",
        ),
        PaletteCommand("problems: clear filters", "Show every problem again", "clear_filters"),
    )
    CSS_PATH = "problems.tcss"
    #: the -narrow class (under 130 columns) packs the filter row
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]
    AUTO_FOCUS = "ProblemTable"  # letter keys are commands here, not search text
    BINDINGS = [
        Binding("slash", "search", "Search", id="problems.search"),
        Binding("space", "toggle_select", "Select", id="problems.select"),
        Binding("enter", "details", "Open", id="problems.details"),
        Binding("t", "traces", "Traces", id="problems.traces"),
        Binding("s", "sample", "Sample", id="problems.sample"),
        Binding("ctrl+s", "save_set", "Save", id="problems.save_set"),
        Binding("E", "edit_set", "Edit set", show=False, id="problems.edit_set"),
        Binding("a", "only_selected", "Selected only", show=False, id="problems.only_selected"),
        Binding("o", "cycle_sort", "Sort", id="problems.sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False, id="problems.reverse"),
        Binding("f", "filters", "Filter", show=False, id="problems.filters"),
        Binding("X", "clear_selection", "Clear selection", show=False, id="problems.clear_sel"),
        Binding("c", "clear_filters", "Clear filters", show=False, id="problems.clear_filters"),
        Binding("i", "app.import_samples", "Import samples", show=False, id="problems.import"),
        Binding("I", "app.import_file", "Import file", show=False, id="problems.import_file"),
        Binding("r", "refresh", "Refresh", show=False, id="problems.refresh"),
        Binding("escape", "back", "Back", show=False, id="problems.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = ViewState()
        self.selected: dict[str, None] = {}  # ordered set: selection order is set order
        self.editing_set: str | None = None  # the set whose members are the selection
        self.generation = 0
        self.total: core.MatchCount | None = None
        self.library_size: int | None = None
        self._detail_id: str | None = None
        self._view_query = InterruptibleQuery()  # the running view query
        self._stamp: tuple[int, str | None] = (0, None)  # difficulty last read

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    @property
    def table(self) -> ProblemTable:
        return self.query_one(ProblemTable)

    # -- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProblemFilterBar(id="problems-filters")
        with Horizontal(id="problems-body"):
            yield ProblemTable(id="problems-table")
            yield ProblemDetail(id="problems-detail")
        yield Static("", id="problems-empty")
        yield Static("", id="problems-status")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._stamp = difficulty_stamp(self.workspace.store)
        self._load_facets()
        self.reload()

    def on_screen_resume(self) -> None:
        """Back on this screen: re-read when a calibration has written solve rates since."""
        stamp = difficulty_stamp(self.workspace.store)
        if stamp != self._stamp:
            self.action_refresh()

    @on(WorkspaceChanged)
    def action_refresh(self) -> None:
        """Re-read filters and rows (after an import, or a run that set solve rates)."""
        self._stamp = difficulty_stamp(self.workspace.store)
        self._load_facets()
        self.reload()

    # -- querying ----------------------------------------------------------

    def reload(self) -> None:
        """Start a fresh query for the current view; older pages will be dropped."""
        self.generation += 1
        self.table.reset()
        self.total = None
        self._view_query.interrupt()
        self._load_view(self.generation, self.state, tuple(self.selected))
        self._update_status()

    def _set_state(self, **changes: Any) -> None:
        new = replace(self.state, **changes)
        if new != self.state:
            self.state = new
            self.reload()

    def _fetch(self, failure: str, query: Callable[[Store], Message]) -> None:
        """In a worker thread: run ``query`` on a store of its own, post what it returns
        (or a one-line failure).  Widgets change only in the message handlers."""
        try:
            with self.workspace.thread_store() as store:
                message = query(store)
        except Exception as exc:
            message = ProblemsFailed(f"{failure}: {exc}")
        self.post_message(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-page")
    def _load_page(
        self, generation: int, state: ViewState, offset: int, selection: tuple[str, ...]
    ) -> None:
        def query(store: Store) -> Message:
            rows, previews = fetch_page(store, state, selection, offset=offset, limit=PAGE_SIZE)
            return PageLoaded(generation, offset, rows, previews)

        self._fetch("query failed", query)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-view")
    def _load_view(self, generation: int, state: ViewState, selection: tuple[str, ...]) -> None:
        """First page, then the count, on a connection the next query can interrupt
        (so typing in the search box never queues full-table scans behind each other)."""
        try:
            with self.workspace.thread_store() as opened, self._view_query.running(opened) as store:
                rows, previews = fetch_page(store, state, selection, offset=0, limit=PAGE_SIZE)
                self.post_message(PageLoaded(generation, 0, rows, previews))
                counts = fetch_counts(store, state, len(selection))
                self.post_message(Counted(generation, *counts))
        except Exception as exc:
            if generation == self.generation:  # a superseded query was interrupted: not news
                self.post_message(ProblemsFailed(f"query failed: {exc}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-facets")
    def _load_facets(self) -> None:
        self._fetch("filters failed", lambda store: FacetsLoaded(fetch_facets(store)))

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return  # a newer query superseded this one
        table = self.table
        if message.offset != table.row_count:
            return  # a duplicate request for a page already shown
        table.append_rows(message.rows, self.selected, message.previews)
        table.exhausted = len(message.rows) < PAGE_SIZE
        if message.offset == 0 and message.rows and self._detail_open:
            self._show_detail_for_cursor()
        self._update_status()

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.generation != self.generation:
            return
        self.total = message.total
        self.library_size = message.library
        self._update_status()

    @on(FacetsLoaded)
    def _facets_loaded(self, message: FacetsLoaded) -> None:
        self.filters.set_facets(message.facets)
        # solve rate and bin are per model: the latest calibrated one unless one is chosen
        models = message.facets.get("model", [])
        latest = models[0] if models else None
        if latest != self.state.default_model:
            self._set_state(default_model=latest)

    @on(ProblemTable.NeedMore)
    def _need_more(self) -> None:
        self._load_page(self.generation, self.state, self.table.row_count, tuple(self.selected))

    @on(ProblemsFailed)
    def _failed(self, message: ProblemsFailed) -> None:
        self.notify(message.text, severity="error")

    # -- status ------------------------------------------------------------

    def _update_status(self) -> None:
        status = status_line(
            self.state, self.table.row_count, self.total, self.library_size, len(self.selected)
        )
        self.query_one("#problems-status", Static).update(status)
        nothing = self.total is not None and self.total.n == 0
        empty = self.query_one("#problems-empty", Static)
        empty.display, self.table.display = nothing, not nothing
        if nothing:
            empty.update(NO_MATCH if not self.state.is_everything else EMPTY_LIBRARY)

    # -- search and filters ------------------------------------------------

    @property
    def filters(self) -> ProblemFilterBar:
        return self.query_one(ProblemFilterBar)

    def action_search(self) -> None:
        self.filters.search.focus()

    def action_filters(self) -> None:
        self.query_one("#filter-source").focus()

    @on(ProblemFilterBar.Changed)
    def _filters_changed(self, message: ProblemFilterBar.Changed) -> None:
        if message.changes.get("problem_set"):  # the set in view is the one worked on
            self.workspace.focus["problem_set"] = str(message.changes["problem_set"])
        self._set_state(**message.changes)
        if message.submitted:
            self.table.focus()

    def action_clear_filters(self) -> None:
        self.filters.clear()
        self._set_state(**ViewState().filter_fields())

    def action_back(self) -> None:
        """escape: leave the search box, then close details, then clear the search."""
        if not self.table.has_focus:
            self.table.focus()
        elif self._detail_open:
            self.query_one(ProblemDetail).display = False
        elif self.state.search:
            self.filters.clear_search()

    # -- sorting -----------------------------------------------------------

    def action_cycle_sort(self) -> None:
        keys = [key for key, _ in SORTS]
        nxt = keys[(keys.index(self.state.sort) + 1) % len(keys)]
        self._set_state(sort=nxt, descending=nxt == "solve_rate")

    def action_reverse_sort(self) -> None:
        self._set_state(descending=not self.state.descending)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = {"solve": "solve_rate", "steps": "n_steps", "id": "dataset"}.get(
            str(event.column_key.value)
        )
        key = column or str(event.column_key.value)
        if key in dict(SORTS):
            if key == self.state.sort:
                self.action_reverse_sort()
            else:
                self._set_state(sort=key, descending=False)

    # -- selection and sets ------------------------------------------------

    def _cursor_id(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def action_toggle_select(self) -> None:
        pid = self._cursor_id()
        if pid is None:
            return
        if pid in self.selected:
            del self.selected[pid]
        else:
            self.selected[pid] = None
        self.table.set_mark(pid, pid in self.selected)
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)
        self._update_status()

    def action_clear_selection(self) -> None:
        for pid in list(self.selected):
            self.table.set_mark(pid, False)
        self.selected.clear()
        if self.state.only_selected:
            self._set_state(only_selected=False)
        self._update_status()

    def action_only_selected(self) -> None:
        if not self.selected and not self.state.only_selected:
            self.notify("Nothing selected: space selects the problem under the cursor.")
            return
        self._set_state(only_selected=not self.state.only_selected)

    def action_save_set(self) -> None:
        if not self.selected:
            self.notify(
                "No problems selected yet: space selects one, s samples.", severity="warning"
            )
            return
        dialog = TextInputDialog(
            "Save problem set",
            f"Name for a set of {len(self.selected):,} problems (runs refer to it by name):",
            value=self.editing_set or "",
            placeholder="e.g. gsm8k-pilot-50",
            validate=validate_set_name,
        )
        self.app.push_screen(dialog, self._set_named)

    def _set_named(self, name: str | None) -> None:
        if not name:
            return
        ids = list(self.selected)
        if not problem_set_exists(self.workspace.store, name):
            self._save_set(name, ids)
            return
        confirm = ConfirmDialog(
            "Replace problem set?",
            f"A set named '{name}' exists.  Replace it with these {len(ids):,} problems?",
            yes="Replace",
            no="Keep it",
        )
        self.app.push_screen(confirm, lambda yes: self._replace_confirmed(yes, name, ids))

    def _replace_confirmed(self, yes: bool | None, name: str, ids: list[str]) -> None:
        if yes:
            self._save_set(name, ids)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-save-set")
    def _save_set(self, name: str, ids: list[str]) -> None:
        self._fetch(
            f"set '{name}' not saved",
            lambda store: SetSaved(name, core.create_problem_set(store, name, ids), len(ids)),
        )

    @on(SetSaved)
    def _set_saved(self, message: SetSaved) -> None:
        self.notify(f"Saved problem set '{message.name}' ({message.size:,} problems).")
        self.editing_set = message.name
        self.workspace.focus["problem_set"] = message.name  # Prompts' Try starts from it
        self._load_facets()  # the scope filter offers the new set

    # -- sampling ----------------------------------------------------------

    def action_sample(self) -> None:
        scope = "all problems" if self.state.is_everything else "the problems shown"
        dialog = TextInputDialog(
            "Sample problems",
            f"How many to draw at random from {scope}, and a seed (N or N SEED):",
            value=f"50 {self.state.seed}",
            validate=lambda text: parse_sample_request(text)[1],
        )
        self.app.push_screen(dialog, self._sample_requested)

    def _sample_requested(self, text: str | None) -> None:
        if not text:
            return
        request, _ = parse_sample_request(text)
        if request is not None:
            n, seed = request
            self._sample(replace(self.state, only_selected=False), n, seed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-sample")
    def _sample(self, state: ViewState, n: int, seed: int) -> None:
        self._fetch(
            "sampling failed",
            lambda store: Sampled(core.sample_ids(store, state.to_filter(), n, seed=seed), seed),
        )

    @on(Sampled)
    def _sampled(self, message: Sampled) -> None:
        self.selected = dict.fromkeys(message.ids)
        # show the sample (always reload: the same state may now mean other rows)
        self.state = replace(self.state, seed=message.seed, only_selected=True)
        self.reload()
        self.notify(
            f"Sampled {len(message.ids):,} problems (seed {message.seed}); "
            "ctrl+s saves them as a set, a shows all."
        )

    # -- editing an existing set ---------------------------------------------------

    def action_edit_set(self) -> None:
        """Edit a problem set: its members become the selection (space adds or removes,
        ctrl+s saves under its name).  The set in scope, or one chosen from a list."""
        if self.state.problem_set is not None:
            self._load_set_for_edit(self.state.problem_set)
            return
        sets = core.list_problem_sets(self.workspace.store)
        if not sets:
            self.notify("no problem sets yet: select problems, then ctrl+s saves one")
            return
        choices = [(s.name, f"{s.name}  ({s.n_problems:,} problems)") for s in sets]
        self.app.push_screen(
            ChoiceDialog("Edit which problem set?", choices),
            lambda name: self._load_set_for_edit(name) if name else None,
        )

    def _load_set_for_edit(self, name: str) -> None:
        ids = core.problem_set_ids(self.workspace.store, name)
        self.selected = dict.fromkeys(ids)
        self.editing_set = name
        self.filters.set_scope(None)  # the whole library, the set's members marked
        self.state = replace(self.state, problem_set=None, only_selected=False)
        self.reload()
        self.notify(
            f"editing set '{name}' ({len(ids):,} problems, marked): space adds or removes, "
            "a shows only the set, ctrl+s saves it"
        )

    # -- every sample of a problem, across runs ----------------------------------

    def action_traces(self) -> None:
        """Every sample of the problem under the cursor, in every run; enter opens one."""
        pid = self._cursor_id()
        if pid is None:
            return
        self._load_problem_samples(pid)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-samples")
    def _load_problem_samples(self, problem_id: str) -> None:
        self._fetch(
            problem_id,
            lambda store: ProblemSamplesLoaded(problem_id, problem_samples(store, problem_id)),
        )

    @on(ProblemSamplesLoaded)
    def _problem_samples_loaded(self, message: ProblemSamplesLoaded) -> None:
        samples = message.samples
        if not samples:
            self.notify(f"{message.problem_id}: no run has sampled this problem yet", timeout=3)
            return
        choices = [
            (
                f"{s.run_id}:{s.sample_id}",
                f"run {s.run_id} {s.run_name[:24]}  ·  {s.stage} #{s.sample_index}  ·  "
                f"{s.model or '-'}  ·  {s.verdict}",
            )
            for s in samples
        ]
        runs = len({s.run_id for s in samples})

        def chosen(key: str | None) -> None:
            if key is not None:
                run_id, sample_id = (int(part) for part in key.split(":"))
                self.post_message(OpenRun(run_id, "traces", sample_id=sample_id))

        title = f"{message.problem_id}: {len(samples):,} samples in {runs} run(s)"
        self.app.push_screen(ChoiceDialog(title, choices), chosen)

    # -- details -----------------------------------------------------------

    @property
    def _detail_open(self) -> bool:
        return bool(self.query_one(ProblemDetail).display)

    def action_details(self) -> None:
        self.query_one(ProblemDetail).display = True
        self._show_detail_for_cursor()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._detail_open:
            self._show_detail_for_cursor()

    def _show_detail_for_cursor(self) -> None:
        pid = self._cursor_id()
        if pid is not None and pid != self._detail_id:
            self._detail_id = pid
            self._load_detail(pid)

    @work(thread=True, exclusive=True, exit_on_error=False, group="problems-detail")
    def _load_detail(self, problem_id: str) -> None:
        self._fetch(problem_id, lambda store: DetailLoaded(core.get_problem(store, problem_id)))

    @on(DetailLoaded)
    def _detail_loaded(self, message: DetailLoaded) -> None:
        if str(message.problem.id) == self._detail_id:
            self.query_one(ProblemDetail).show(message.problem)
