"""Import your own problems: a file or a folder (JSONL / JSON / CSV / Parquet) or a hub name.

The path field completes as you type (``right`` accepts the grey suggestion, ``tab``
moves on); the adapter is chosen from the formats the importer knows ("auto" detects it
from the columns).  The import runs in a thread worker and the dialog then shows the
same per-row report the CLI prints (``library.report_lines``), so a bad file is read
where it was chosen.  The dialog returns how many problems landed (0: nothing changed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Input, Label, Select, Static

from workbench.core.library import FILE_FORMATS, ImportReport, import_path, report_lines
from workbench.tui.workspace import workspace_of

#: the adapter choices: "auto" detects the layout from the columns
ADAPTERS = ("auto", "gsm8k", "math", "numina", "ocw", "bbmistake", "processbench")
MAX_CANDIDATES = 6


def path_candidates(value: str) -> list[str]:
    """Completions of ``value``: folders (with a trailing ``/``) and data files, by name.

    Hidden entries show only when the typed prefix starts with a dot.
    """
    if not value:
        return []
    # split the text, not a Path: pathlib drops a trailing "." that the user is typing
    head, _, prefix = value.rpartition("/")
    folder = Path(os.path.expanduser(head + "/" if head or value.startswith("/") else "."))
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    found: list[str] = []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
            continue
        if entry.is_dir():
            found.append(value + name[len(prefix) :] + "/")
        elif entry.suffix.lower() in FILE_FORMATS:
            found.append(value + name[len(prefix) :])
    return found


class PathSuggester(Suggester):
    """Suggests the first completion of a path (folders first is not needed: names sort)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        found = path_candidates(value)
        return found[0] if found else None


@dataclass
class ImportFinished(Message):
    """The dialog's import worker finished: its reports, or the one-line reason it failed."""

    reports: list[ImportReport]
    error: str | None


def report_text(reports: list[ImportReport], error: str | None) -> Text:
    """The CLI's report (each skipped row, then a summary per file), as plain text."""
    if error is not None:
        return Text(f"import failed: {error}", style="bold red")
    text = Text()
    for report in reports:
        *skipped, summary = report_lines(report)
        for line in skipped:
            text.append(line + "\n", style="yellow")
        text.append(summary + "\n", style="bold")
    return text


class ImportDialog(ModalScreen[int]):
    """Path (completed), adapter, dataset name, row limit; enter imports, escape closes."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "close", "Close", id="import.close"),
        Binding("ctrl+s", "import", "Import", id="import.run"),
    ]

    def __init__(self, path: str = "") -> None:
        super().__init__()
        self.initial_path = path
        self.imported = 0
        self.running = False
        self.reports: list[ImportReport] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="import-box") as box:
            box.border_title = "Import problems"
            yield Label("File or folder (JSONL / JSON / CSV / Parquet), or a hub name:")
            yield Input(
                self.initial_path or str(Path.cwd()) + "/",
                placeholder="path/to/data.jsonl",
                suggester=PathSuggester(),
                id="import-path",
            )
            yield Static("", id="import-candidates", classes="dialog-hint")
            with Horizontal(id="import-options"):
                yield Select(
                    [(name, name) for name in ADAPTERS],
                    value="auto",
                    allow_blank=False,
                    id="import-adapter",
                )
                yield Input(placeholder="dataset id (default: file stem)", id="import-name")
                yield Input(placeholder="keep N rows", id="import-limit", type="integer")
            with VerticalScroll(id="import-report-scroll"):
                yield Static("", id="import-report", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Import", variant="primary", id="import-go")
                yield Button("Close", id="import-close")
            yield Static(
                "→ complete path · enter / ctrl+s import · escape close", classes="dialog-hint"
            )

    def on_mount(self) -> None:
        path = self.query_one("#import-path", Input)
        path.focus()
        path.cursor_position = len(path.value)
        self._show_candidates(path.value)

    # -- the path field ---------------------------------------------------------

    @on(Input.Changed, "#import-path")
    def _path_changed(self, event: Input.Changed) -> None:
        self._show_candidates(event.value)

    def _show_candidates(self, value: str) -> None:
        found = path_candidates(value)
        names = [Path(c.rstrip("/")).name + ("/" if c.endswith("/") else "") for c in found]
        more = f"  (+{len(names) - MAX_CANDIDATES} more)" if len(names) > MAX_CANDIDATES else ""
        self.query_one("#import-candidates", Static).update(
            Text("  ".join(names[:MAX_CANDIDATES]) + more) if names else ""
        )

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_import()

    @on(Button.Pressed, "#import-go")
    def _go(self) -> None:
        self.action_import()

    @on(Button.Pressed, "#import-close")
    def _close_pressed(self) -> None:
        self.action_close()

    # -- importing -------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """``import_dataset`` keywords from the form."""
        adapter = self.query_one("#import-adapter", Select).value
        name = self.query_one("#import-name", Input).value.strip()
        limit = self.query_one("#import-limit", Input).value.strip()
        return {
            "schema": None if adapter in ("auto", Select.BLANK) else str(adapter),
            "name": name or None,
            "limit": int(limit) if limit and int(limit) > 0 else None,
        }

    def action_import(self) -> None:
        source = self.query_one("#import-path", Input).value.strip()
        if self.running or not source:
            return
        path = Path(source).expanduser()
        if not path.exists() and (path.parent != Path(".") and path.parent.is_dir()):
            # a half-typed local path ("data/mi") is not a hub name: say so, send nothing
            self.query_one("#import-report", Static).update(
                Text(f"import failed: {source}: no such file or folder", style="bold red")
            )
            return
        self.running = True
        self.query_one("#import-report", Static).update(f"importing {source}…")
        self._import(str(path), self.options())

    @work(thread=True, exclusive=True, exit_on_error=False, group="import-file")
    def _import(self, source: str, options: dict[str, Any]) -> None:
        try:
            with workspace_of(self).thread_store() as store:
                reports = import_path(store, source, **options)
        except Exception as exc:  # a user's file: one line, the store keeps what landed
            self.post_message(ImportFinished([], str(exc).splitlines()[0] if str(exc) else ""))
            return
        self.post_message(ImportFinished(reports, None))

    @on(ImportFinished)
    def _finished(self, message: ImportFinished) -> None:
        self.running = False
        self.reports, self.error = message.reports, message.error
        self.imported += sum(r.n_imported for r in message.reports)
        self.query_one("#import-report", Static).update(report_text(message.reports, message.error))

    def action_close(self) -> None:
        if not self.running:
            self.dismiss(self.imported)
