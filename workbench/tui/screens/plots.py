"""Plots section: quick terminal charts of a run, switched with keys, exportable as CSV.

The data of a plot is computed in a thread worker (``core.views.plots``) and
drawn by a ``PlotPanel`` at the panel's size; an empty plot says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from workbench.core.views.plots import PLOTS, PlotData, PlotSpec
from workbench.core.views.workspace import latest_run_id
from workbench.tui.dialogs import choose_run
from workbench.tui.widgets.plot_panels import PlotPanel
from workbench.tui.workspace import Workspace, workspace_of

EXPORT_DIR = Path("exports")


@dataclass
class PlotReady(Message):
    run_id: int
    data: PlotData


class PlotsScreen(Screen[None]):
    """One plot of one run at a time; letters pick the plot, x exports its data."""

    CSS_PATH = "plots.tcss"
    BINDINGS = [
        *(
            # the plot bar above lists these keys; the footer keeps room for the rest
            Binding(
                spec.shortcut, f"plot('{spec.key}')", spec.name, id=f"plots.{spec.key}", show=False
            )
            for spec in PLOTS
        ),
        Binding("right,tab", "cycle(1)", "Next plot", id="plots.next", show=False),
        Binding("left,shift+tab", "cycle(-1)", "Prev plot", id="plots.previous", show=False),
        Binding("r", "choose_run", "Run", id="plots.run"),
        Binding("x", "export", "Export CSV", id="plots.export"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.spec: PlotSpec = PLOTS[0]
        self.data: PlotData | None = None

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="plots-bar")
        yield PlotPanel(id="plots-panel")
        yield Static("", id="plots-empty", classes="empty-state")
        yield Footer()

    def on_mount(self) -> None:
        latest = latest_run_id(self.workspace.store)
        if latest is None:
            self._show_empty("No runs yet: launch one from Runs (3), then come back for its plots.")
            return
        self.open_run(latest)

    def on_screen_resume(self) -> None:
        if self.run_id is None:
            latest = latest_run_id(self.workspace.store)
            if latest is not None:
                self.open_run(latest)

    def open_run(self, run_id: int, plot: str | None = None) -> None:
        self.run_id = run_id
        if plot is not None:
            self.spec = next(s for s in PLOTS if s.key == plot)
        self._compute()

    def _compute(self) -> None:
        if self.run_id is None:
            return
        self._update_bar(loading=True)
        self._build(self.run_id, self.spec)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plots-data")
    def _build(self, run_id: int, spec: PlotSpec) -> None:
        store = self.workspace.store.reopen()
        try:
            data = spec.build(store, run_id)
        except Exception as exc:  # a plot that cannot be computed says why, in one line
            data = PlotData(spec.key, spec.name, "bars", "", "", empty=f"cannot plot: {exc}")
        finally:
            store.close()
        self.post_message(PlotReady(run_id, data))

    @on(PlotReady)
    def _ready(self, message: PlotReady) -> None:
        if message.run_id != self.run_id or message.data.key != self.spec.key:
            return
        self.data = message.data
        if message.data.empty:
            self._show_empty(
                f"{message.data.title}: {message.data.empty}\n\n"
                "another plot: its letter above (or tab) · another run: r"
            )
        else:
            self.query_one("#plots-empty").display = False
            panel = self.query_one(PlotPanel)
            panel.display = True
            panel.show(message.data)
        self._update_bar()

    def _show_empty(self, text: str) -> None:
        self.query_one(PlotPanel).display = False
        empty = self.query_one("#plots-empty", Static)
        empty.display = True
        empty.update(text)
        self._update_bar()

    def _update_bar(self, *, loading: bool = False) -> None:
        names = "  ".join(
            f"[reverse] {s.shortcut} {s.name} [/]" if s is self.spec else f"{s.shortcut} {s.name}"
            for s in PLOTS
        )
        run = f"run {self.run_id}" if self.run_id is not None else "no run"
        self.query_one("#plots-bar", Static).update(
            f"{run}{' · computing…' if loading else ''}   {names}"
        )

    # -- actions --------------------------------------------------------------

    def action_plot(self, key: str) -> None:
        self.spec = next(s for s in PLOTS if s.key == key)
        self._compute()

    def action_cycle(self, step: int) -> None:
        i = PLOTS.index(self.spec)
        self.spec = PLOTS[(i + step) % len(PLOTS)]
        self._compute()

    def action_export(self) -> None:
        data = self.data
        if data is None or data.empty:
            self.notify("nothing to export for this plot", severity="warning", timeout=2)
            return
        path = data.export(EXPORT_DIR, self.run_id)
        self.notify(f"wrote {Path(path).resolve()} ({len(data.rows)} rows)", timeout=5)

    def action_choose_run(self) -> None:
        choose_run(self, self.workspace.store, "Plot run", self.run_id, self.open_run)
