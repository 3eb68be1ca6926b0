"""Plots section: quick terminal charts of a run, switched with keys, exportable as CSV.

The data of a plot is computed in a thread worker (``core.views.plots``) and
drawn by a ``PlotPanel`` at the panel's size; an empty plot says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from workbench.core.views.plots import PLOTS, PlotData, PlotSpec
from workbench.core.views.traces import TraceFilter
from workbench.core.views.workspace import latest_run_id
from workbench.tui.dialogs import choose_run
from workbench.tui.messages import OpenRun
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
        Binding("right_square_bracket", "bar(1)", "Next bar", id="plots.next_bar"),
        Binding("left_square_bracket", "bar(-1)", "Prev bar", id="plots.previous_bar"),
        Binding("t", "traces", "Traces", id="plots.traces"),
        Binding("R", "choose_run", "Pick run", id="plots.run"),
        Binding("x", "export", "Export", id="plots.export"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.spec: PlotSpec = PLOTS[0]
        self.data: PlotData | None = None
        self.bar = 0  # the chosen category: its numbers are shown, t opens its traces

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="plots-bar")
        yield Static("", id="plots-chosen")
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
        self.bar = 0
        if message.data.empty:
            self._show_empty(
                f"{message.data.title}: {message.data.empty}\n\n"
                "another plot: its key above (or tab) · another run: R"
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
        empty.update(Content(text))  # may hold an exception's text: never markup
        self._update_bar()

    def _update_bar(self, *, loading: bool = False) -> None:
        # at 100 columns the full names do not fit beside the run: the chosen plot keeps its
        # name, the others show their key and a one-word name
        wide = self.size.width >= 150
        names = "  ".join(
            f"[reverse] {self._key_of(s)} {s.name} [/]"
            if s is self.spec
            else f"{self._key_of(s)} {s.name if wide else s.short_name}"
            for s in PLOTS
        )
        run = f"run {self.run_id}" if self.run_id is not None else "no run"
        self.query_one("#plots-bar", Static).update(
            f"{run}{' · computing…' if loading else ''}  {names}"
        )
        self._update_chosen()

    def _key_of(self, spec: PlotSpec) -> str:
        """The key that shows ``spec`` as the user sees it ("$", not "dollar_sign"),
        after any rebinding in workbench.toml."""
        action = f"plot('{spec.key}')"
        for bindings in self._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.action == action:
                    return escape(self.app.get_key_display(binding))
        return escape(spec.shortcut)

    def _update_chosen(self) -> None:
        """The chosen bar's numbers (value, n, interval) and how to open its traces."""
        chosen = self.query_one("#plots-chosen", Static)
        data = self.data
        if data is None or data.empty or not data.labels:
            chosen.display = False
            return
        chosen.display = True
        i = min(self.bar, len(data.labels) - 1)
        detail = data.details[i] if i < len(data.details) else ""
        n = len(data.samples_of(i))
        # the traces first: the detail is what a narrow terminal cuts
        more = f"t: its {n:,} traces" if n else "no traces behind it"
        chosen.update(
            Content.assemble(
                ("[ ] ", "bold"),
                (f"{data.x_label} {data.labels[i]}", "bold"),
                f" ({i + 1}/{len(data.labels)})  ·  {more}  ·  {detail}",
            )
        )

    def on_resize(self) -> None:
        self._update_bar()

    # -- actions --------------------------------------------------------------

    def action_plot(self, key: str) -> None:
        self.spec = next(s for s in PLOTS if s.key == key)
        self._compute()

    def action_cycle(self, step: int) -> None:
        i = PLOTS.index(self.spec)
        self.spec = PLOTS[(i + step) % len(PLOTS)]
        self._compute()

    def action_bar(self, step: int) -> None:
        data = self.data
        if data is None or data.empty or not data.labels:
            return
        self.bar = (self.bar + step) % len(data.labels)
        self._update_chosen()

    def action_traces(self) -> None:
        """Open the chosen bar's samples in Traces (exactly the ones it counts)."""
        data = self.data
        if data is None or self.run_id is None or data.empty or not data.labels:
            self.notify("no bar to open: this plot has no categories", timeout=2)
            return
        i = min(self.bar, len(data.labels) - 1)
        ids = data.samples_of(i)
        if not ids:
            self.notify(f"no traces behind {data.labels[i]}", severity="warning", timeout=2)
            return
        scope = f"{self.spec.name}: {data.labels[i]}"
        self.post_message(
            OpenRun(self.run_id, "traces", trace_filter=TraceFilter(samples=ids, scope=scope))
        )

    def action_export(self) -> None:
        data = self.data
        if data is None or data.empty:
            self.notify("nothing to export for this plot", severity="warning", timeout=2)
            return
        path = data.export(EXPORT_DIR, self.run_id)
        self.notify(f"wrote {Path(path).resolve()} ({len(data.rows)} rows)", timeout=5)

    def action_choose_run(self) -> None:
        choose_run(self, self.workspace.store, "Plot run", self.run_id, self.open_run)
