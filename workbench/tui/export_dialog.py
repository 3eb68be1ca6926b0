"""Export a run from the TUI: samples or analysis tables, every format the CLI writes.

Opened from Runs and Traces (``x``) and the palette.  The output path starts at
``exports/run-N-samples.jsonl`` and follows the chosen format until it is edited; the
absolute path is shown under it before and after writing.  The export runs in a
thread worker; the dialog returns the ``ExportResult`` (None when closed without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Select, Static

from workbench.core.analysis.export import ExportFormat
from workbench.core.views.exports import (
    EXPORT_FORMATS,
    TABLE_FORMATS,
    ExportResult,
    ExportWhat,
    default_export_path,
    export_run,
)
from workbench.tui.workspace import workspace_of


@dataclass
class ExportFinished(Message):
    result: ExportResult | None
    error: str | None


class ExportDialog(ModalScreen[ExportResult | None]):
    """What (samples / tables), format, stage, path; enter or ctrl+s writes, escape closes."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "close", "Close", id="export.close"),
        Binding("ctrl+s", "export", "Export", id="export.run"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.result: ExportResult | None = None
        self.running = False
        self._auto_path = str(default_export_path(run_id, ExportWhat.SAMPLES, "jsonl"))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="export-box") as box:
            box.border_title = f"Export run {self.run_id}"
            with Horizontal(id="export-options"):
                yield Select(
                    [(w.value, w) for w in ExportWhat],
                    value=ExportWhat.SAMPLES,
                    allow_blank=False,
                    id="export-what",
                )
                yield Select(
                    [(f, f) for f in EXPORT_FORMATS],
                    value="jsonl",
                    allow_blank=False,
                    id="export-format",
                )
                yield Input(placeholder="stage (all)", id="export-stage")
            yield Label("Output file (a folder for dataset):")
            yield Input(self._auto_path, id="export-path")
            yield Static("", id="export-full-path", classes="dialog-hint", markup=False)
            with VerticalScroll(id="export-report-scroll"):
                yield Static("", id="export-report", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Close", id="export-close")
            yield Static("enter / ctrl+s export · escape close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()
        self._show_full_path()

    # -- the form ---------------------------------------------------------------

    @property
    def what(self) -> ExportWhat:
        return ExportWhat(str(self.query_one("#export-what", Select).value))

    @property
    def fmt(self) -> ExportFormat:
        return cast(ExportFormat, self.query_one("#export-format", Select).value)

    @on(Select.Changed)
    def _choice_changed(self) -> None:
        path = self.query_one("#export-path", Input)
        self.query_one("#export-stage", Input).disabled = self.what is ExportWhat.TABLES
        if path.value == self._auto_path:  # not edited: follow the choice
            self._auto_path = str(default_export_path(self.run_id, self.what, self.fmt))
            path.value = self._auto_path
        self._show_full_path()

    @on(Input.Changed, "#export-path")
    def _path_changed(self) -> None:
        self._show_full_path()

    def _show_full_path(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        shown = f"→ {Path(value).expanduser().resolve()}" if value else ""
        self.query_one("#export-full-path", Static).update(shown)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_export()

    @on(Button.Pressed, "#export-go")
    def _go(self) -> None:
        self.action_export()

    @on(Button.Pressed, "#export-close")
    def _close_pressed(self) -> None:
        self.action_close()

    # -- writing -----------------------------------------------------------------

    def action_export(self) -> None:
        out = self.query_one("#export-path", Input).value.strip()
        report = self.query_one("#export-report", Static)
        if self.running or not out:
            return
        if self.what is ExportWhat.TABLES and self.fmt not in TABLE_FORMATS:
            report.update(Text("analysis tables export as jsonl or csv", style="bold red"))
            return
        stage = self.query_one("#export-stage", Input).value.strip() or None
        self.running = True
        report.update(f"exporting run {self.run_id}…")
        self._export(self.what, self.fmt, out, {"stage": stage})

    @work(thread=True, exclusive=True, exit_on_error=False, group="export-run")
    def _export(self, what: ExportWhat, fmt: ExportFormat, out: str, opts: dict[str, Any]) -> None:
        workspace = workspace_of(self)
        try:
            with workspace.thread_store() as store:
                result = export_run(
                    store,
                    self.run_id,
                    what,
                    fmt,
                    out,
                    stage=opts["stage"] if what is ExportWhat.SAMPLES else None,
                    bins=workspace.settings.bins,
                )
        except Exception as exc:  # one line; nothing half-written is reported as written
            self.post_message(ExportFinished(None, str(exc).splitlines()[0] if str(exc) else ""))
            return
        self.post_message(ExportFinished(result, None))

    @on(ExportFinished)
    def _finished(self, message: ExportFinished) -> None:
        self.running = False
        report = self.query_one("#export-report", Static)
        if message.result is None:
            report.update(Text(f"export failed: {message.error}", style="bold red"))
            return
        self.result = message.result
        report.update(Text(message.result.text(), style="bold"))

    def action_close(self) -> None:
        if not self.running:
            self.dismiss(self.result)


def open_export(screen: Screen[Any], run_id: int) -> None:
    """Push the export dialog for ``run_id``; what it wrote stays said in a toast."""

    def done(result: ExportResult | None) -> None:
        if result is not None:
            screen.notify(result.text(), timeout=6)

    screen.app.push_screen(ExportDialog(run_id), done)
