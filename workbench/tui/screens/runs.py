"""Runs section: the runs list, launching from the builder, and the live runs' workers.

Each launched run executes in its own thread worker (group ``run-<id>``)
owned by this screen, so it keeps going while the user looks elsewhere; the
monitor screens are views onto it.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core.errors import WorkbenchError
from workbench.core.status import RunStatus
from workbench.core.views.runs import RunRow, list_runs, run_headline
from workbench.tui.commands import PaletteCommand
from workbench.tui.dialogs import ChoiceDialog, TextInputDialog
from workbench.tui.export_dialog import open_export
from workbench.tui.live_runs import (
    LaunchRequest,
    LaunchRun,
    LiveRun,
    RunEnded,
    RunEngineReady,
    RunLimitChanged,
    RunStatsUpdated,
    execute_run,
)
from workbench.tui.messages import OpenCompare, OpenRun, OpenRunBuilder, WorkspaceChanged
from workbench.tui.widgets.meters import fmt_duration, fmt_usd
from workbench.tui.workspace import Workspace, workspace_of

COLUMNS = ("id", "name", "kind", "status", "cost", "duration", "samples", "headline")
#: a run's name is cut to this many characters under 130 columns, so the headline shows
NARROW_NAME = 22
NARROW_BELOW = 130


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())


def resumable_config(store: Any, run_id: int) -> Any:
    """The validated config snapshot a run was started with (one-line error if it is not)."""
    from workbench.core.experiments import load_experiment_config

    return load_experiment_config(store.get_run(run_id)["config"])


def model_refs(config: Any) -> tuple[str, ...]:
    """The ``provider:model`` strings a config names (for per-provider concurrency keys)."""
    refs: list[str] = []
    for value in config.model_dump(mode="json").values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and ":" in item and " " not in item:
                refs.append(item)
    return tuple(dict.fromkeys(refs))


class RunsScreen(Screen[None]):
    """Every run with its status, cost, duration and headline; n launches a new one."""

    PALETTE = (
        PaletteCommand("runs: new", "Build and launch a run", "new_run"),
        PaletteCommand("runs: watch", "Watch the selected run", "watch"),
        PaletteCommand("runs: resume", "Continue the selected stopped run", "resume"),
        PaletteCommand("runs: re-run", "A new run from the selected run's config, edited", "rerun"),
        PaletteCommand("runs: compare", "Compare the selected run with another", "compare"),
        PaletteCommand("runs: export", "Export the selected run (samples or tables)", "export"),
    )
    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding("n", "new_run", "New run", id="runs.new"),
        Binding("enter", "watch", "Open", id="runs.open"),
        Binding("w", "watch", "Watch", id="runs.watch"),
        Binding("t", "traces", "Traces", id="runs.traces"),
        Binding("u", "resume", "Resume", id="runs.resume"),
        Binding("e", "rerun", "Re-run", id="runs.rerun"),
        Binding("v", "compare", "Compare", id="runs.compare"),
        Binding("x", "export", "Export", id="runs.export"),
        Binding("r", "refresh", "Refresh", id="runs.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._headlines: dict[tuple[int, str], str] = {}
        self._rows: list[RunRow] = []
        self._narrow: bool | None = None  # the width the rows were laid out for

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    @property
    def live(self) -> dict[int, LiveRun]:
        """Runs started in this app (the monitors read them too)."""
        return self.workspace.live_runs

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable[str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-empty", classes="empty-state")
        yield Static("", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.action_refresh()
        # cheap (one grouped query); only while this screen is the one on show
        self.set_interval(1.0, self._tick)

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def _tick(self) -> None:
        if self.is_current and any(r.active for r in self._rows):
            self.action_refresh()

    # -- table -------------------------------------------------------------------

    def _headline(self, row: RunRow) -> str:
        key = (row.id, row.status)
        if row.active:  # changes as samples land; cheap enough at 1 Hz for one run
            return run_headline(self.workspace.store, row.id, row.kind)
        if key not in self._headlines:
            self._headlines[key] = run_headline(self.workspace.store, row.id, row.kind)
        return self._headlines[key]

    def _cells(self, row: RunRow) -> tuple[str | Text, ...]:
        cost = fmt_usd(row.cost_usd) if row.n_calls and row.cost_usd else "$0"
        if row.unpriced_calls:
            cost = f"{cost} + {row.unpriced_calls} unpriced"
        live = self.live.get(row.id)
        status: str = live.status if live and live.status is RunStatus.PAUSED else row.status
        if row.active and live is None:  # stopped with the app that ran it, or run elsewhere
            status = f"{row.status} (not here)"
        narrow = self.size.width < NARROW_BELOW
        headline = self._headline(row)
        if row.status is RunStatus.FAILED and row.error:  # the reason stays on the list
            reason = one_line(row.error)
            has_result = headline.strip() not in ("", "-", "–")
            headline = f"{headline} · {reason}" if has_result else reason
        # names and reasons are user and config text ("[pricing]"): Text, never markup;
        # the other cells are our own vocabulary
        return (
            str(row.id),
            Text(fit(row.name, NARROW_NAME) if narrow else row.name),
            row.kind,
            status,
            cost,
            fmt_duration(row.duration_s),
            f"{row.n_samples:,}",
            Text(headline),
        )

    def action_refresh(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        self._rows = list_runs(self.workspace.store)
        selected = self.selected_run_id()
        wanted = [str(r.id) for r in self._rows]
        narrow = self.size.width < NARROW_BELOW
        # columns only widen in place: a width change rebuilds the rows
        if [k.value for k in table.rows] != wanted or narrow != self._narrow:
            relayout = self._narrow is not None and narrow != self._narrow
            self._narrow = narrow
            table.clear(columns=relayout)  # auto widths never shrink: new columns do
            if relayout:
                for col in COLUMNS:
                    table.add_column(col, key=col)
            for row in self._rows:
                table.add_row(*self._cells(row), key=str(row.id))
        else:
            for row in self._rows:
                for col, value in zip(COLUMNS, self._cells(row), strict=True):
                    table.update_cell(str(row.id), col, value, update_width=True)
        if selected is not None and str(selected) in wanted:
            table.move_cursor(row=wanted.index(str(selected)), animate=False)
        empty = not self._rows
        table.display = not empty
        self.query_one("#runs-empty", Static).display = empty
        if empty:
            self.query_one("#runs-empty", Static).update(
                "No runs yet.  Press n to build one (problem set, models, budget)."
            )
        self._update_hint()

    def _update_hint(self) -> None:
        """What the list as a whole says, and the selected run's failure reason in full."""
        watching = len([r for r in self.live.values() if r.status.active])
        hint = Text(
            f"{len(self._rows)} runs · {watching} running here · n new · enter watch · t traces"
            " · u resume a stopped run"
        )
        selected = next((r for r in self._rows if r.id == self.selected_run_id()), None)
        if selected is not None and selected.status is RunStatus.FAILED:
            reason = one_line(selected.error or "no reason was stored")
            hint = Text.assemble((f"run {selected.id} failed: ", "bold red"), reason)
        self.query_one("#runs-hint", Static).update(hint)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _row_highlighted(self) -> None:
        self._update_hint()

    def on_resize(self) -> None:
        if self._rows:
            self.action_refresh()

    def selected_run_id(self) -> int | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # empty or moving table
            return None
        return int(key.value) if key.value is not None else None

    # -- actions -------------------------------------------------------------------

    def action_new_run(self) -> None:
        self.post_message(OpenRunBuilder())

    @on(LaunchRun)
    def _launch_requested(self, message: LaunchRun) -> None:
        self.launch(message.request)

    @on(DataTable.RowSelected, "#runs-table")
    def _row_chosen(self) -> None:
        # the focused table takes enter for itself, so the screen's enter binding never fires
        self.action_watch()

    def action_watch(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.watch_run(run_id)

    def watch_run(self, run_id: int) -> None:
        self.post_message(OpenRun(run_id, "monitor"))

    def action_traces(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.post_message(OpenRun(run_id, "traces"))

    def action_rerun(self) -> None:
        """The builder, filled with the selected run's config: edit it and launch a new run."""
        run_id = self.selected_run_id()
        if run_id is None:
            return
        config = self.workspace.store.get_run(run_id)["config"]
        self.post_message(OpenRunBuilder(dict(config), title=f"Re-run run {run_id}"))

    def action_compare(self) -> None:
        """Pick run B for the selected run A, then compare them side by side."""
        run_a = self.selected_run_id()
        others = [r for r in self._rows if r.id != run_a]
        if run_a is None or not others:
            self.notify("comparing needs two runs", severity="warning", timeout=3)
            return
        choices = [(str(r.id), f"{r.id:>4}  {r.name}  ({r.kind}, {r.status})") for r in others]

        def chosen(key: str | None) -> None:
            if key is not None and run_a is not None:
                self.post_message(OpenCompare(run_a, int(key)))

        self.app.push_screen(ChoiceDialog(f"Compare run {run_a} with…", choices), chosen)

    def action_export(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            open_export(self, run_id)

    def action_resume(self) -> None:
        """Continue the selected run: only items without a finished sample are sent."""
        row = next((r for r in self._rows if r.id == self.selected_run_id()), None)
        if row is None:
            return
        live = self.live.get(row.id)
        if live is not None and live.status.active:
            self.watch_run(row.id)
            return
        if row.status is RunStatus.DONE:
            self.notify(f"run {row.id} is done: nothing to resume", timeout=3)
            return
        try:
            config = resumable_config(self.workspace.store, row.id)
        except WorkbenchError as exc:
            self.notify(str(exc), title="Cannot resume", severity="error")
            return
        if row.active:  # a live executor elsewhere holds its lease (a dead one: interrupted)
            self.notify(
                f"run {row.id} is running in another workbench; resume it once that ends",
                title="Cannot resume",
                severity="warning",
            )
            return
        if row.status is RunStatus.BUDGET:
            self._resume_with_budget(row, config)
            return
        self.start(row.id, config, model_refs(config))

    def _resume_with_budget(self, row: RunRow, config: Any) -> None:
        """A run its cap stopped: ask for a higher cap, then resume under it."""
        from workbench.core.experiments import RunSettings

        cap = float(config.budget_usd or 0.0)

        def check(text: str) -> str | None:
            try:
                value = float(text.lstrip("$"))
            except ValueError:
                return "a number of dollars, e.g. 2.50"
            return None if value > row.cost_usd else f"more than the ${row.cost_usd:.4f} spent"

        def chosen(text: str | None) -> None:
            if text:
                change = RunSettings(float(text.lstrip("$")), config.concurrency)
                self.start(row.id, config, model_refs(config), change=change)

        self.app.push_screen(
            TextInputDialog(
                "Raise the budget",
                f"Run {row.id} stopped at its ${cap:.2f} cap after spending "
                f"${row.cost_usd:.4f}. New cap in USD (kept in the run's history):",
                value=f"{max(cap * 2, row.cost_usd * 2, 0.01):.2f}",
                validate=check,
            ),
            chosen,
        )

    # -- launching -------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> int | None:
        """Pre-flight and make the run, start its worker, and open its monitor.

        A config error is one line and leaves no run row (None)."""
        from workbench.core.experiments import create_checked_run

        config = request.config
        ws = self.workspace
        try:
            run_id = create_checked_run(ws.store, ws.providers, ws.settings, config)
        except WorkbenchError as exc:
            self.notify(str(exc), title="Cannot launch", severity="error")
            return None
        return self.start(run_id, config, tuple(request.model_refs))

    def start(self, run_id: int, config: Any, refs: tuple[str, ...], *, change: Any = None) -> int:
        """Run ``config`` as ``run_id`` in a worker (a new run or a resumed one); watch it.

        ``change``: new budget / concurrency (``RunSettings``) for a resumed run."""
        self.live[run_id] = LiveRun(run_id, refs, Signal(self, f"run-{run_id}"))
        store, settings = self.workspace.store, self.workspace.settings

        def body() -> None:
            execute_run(store, settings, config, run_id, self.post_message, change=change)

        self.run_worker(
            body,
            name=f"run {run_id}",
            group=f"run-{run_id}",
            exclusive=True,
            thread=True,
            exit_on_error=False,
        )
        self.action_refresh()
        self.watch_run(run_id)
        return run_id

    @on(RunEngineReady)
    def _engine_ready(self, message: RunEngineReady) -> None:
        live = self.live.get(message.run_id)
        if live is not None:
            live.engine = message.engine

    @on(RunStatsUpdated)
    def _stats(self, message: RunStatsUpdated) -> None:
        live = self.live.get(message.run_id)
        if live is None:
            return
        live.stats = message.stats
        if live.status is RunStatus.RUNNING and message.stats.paused:
            live.status = RunStatus.PAUSED
        live.changed.publish(live)

    @on(RunLimitChanged)
    def _limit(self, message: RunLimitChanged) -> None:
        live = self.live.get(message.run_id)
        if live is not None:
            live.limits[message.provider] = message.limit

    @on(RunEnded)
    def _ended(self, message: RunEnded) -> None:
        live = self.live.get(message.run_id)
        if live is not None:
            live.status = message.status
            live.error = message.error
            live.changed.publish(live)
        severity: Any = "information" if message.status is RunStatus.DONE else "warning"
        tail = f": {message.error}" if message.error else ""
        self.notify(f"run {message.run_id} {message.status}{tail}", severity=severity)
        self.action_refresh()
        if self.app.screen is not self:  # e.g. the Problems screen: new solve rates to show
            self.app.screen.post_message(WorkspaceChanged())
