"""The home screen: what is in the workspace and where to go next.

An empty workspace gets one clear next step (import the bundled samples with
``i``); otherwise a summary of problems, sets, prompts and runs.  Counting
runs in a thread worker so a 100,000-problem workspace opens instantly.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from workbench.core.views.workspace import WorkspaceSummary, summarise_workspace
from workbench.tui.messages import WorkspaceChanged
from workbench.tui.workspace import Workspace, workspace_of

EMPTY_TEXT = """\
[b]This workspace has no problems yet.[/b]

  [b $accent]i[/]  import the bundled samples (200 GSM8K + 100 MATH-500 problems), then
  [b $accent]1[/]  open Problems to search, filter, sample and save a problem set.

  [b $accent]I[/]  import your own file or folder (JSONL / CSV / Parquet, or a Hugging Face name);
     from a shell: [i]workbench import PATH[/i].

[dim]? keys for this screen · ctrl+p all commands · q quit[/dim]"""


def plural(n: int, noun: str) -> str:
    return noun if n == 1 else f"{noun}s"


def render_summary(s: WorkspaceSummary) -> str:
    # the path, source and run names are the user's: escaped, so "[pricing]" shows as typed
    sources = ", ".join(f"{c.n:,} {escape(c.name)}" for c in s.by_source) or "none"
    runs = ", ".join(f"{c.n} {c.name}" for c in s.runs_by_status) or "none yet"
    lines = [
        f"[b]Workspace[/b]  {escape(str(s.path))}",
        "",
        f"  [b]{s.n_problems:,}[/b] problems  ({sources})",
        f"  [b]{s.n_sets}[/b] {plural(s.n_sets, 'problem set')} · "
        f"[b]{s.n_prompts}[/b] {plural(s.n_prompts, 'prompt')}",
        f"  runs: {runs}",
    ]
    if s.latest_run:
        r = s.latest_run
        lines.append(f"  latest run: #{r.id} {escape(r.name)} ({r.kind}, {r.status})")
    lines += [
        "",
        "[b $accent]1[/] Problems  [b $accent]2[/] Prompts  [b $accent]3[/] Runs  "
        "[b $accent]4[/] Traces  [b $accent]5[/] Plots  [b $accent]6[/] Tables",
        "",
        "[dim]? keys for this screen · ctrl+p all commands · q quit[/dim]",
    ]
    return "\n".join(lines)


class HomeScreen(Screen[None]):
    """Empty state for a new workspace; a summary otherwise."""

    BINDINGS = [
        Binding("i", "app.import_samples", "Import samples", id="home.import_samples"),
        Binding("I", "app.import_file", "Import file", id="home.import_file"),
        Binding("r", "refresh_summary", "Refresh", id="home.refresh"),
    ]

    @dataclass
    class Summarised(Message):
        summary: WorkspaceSummary

    summary: WorkspaceSummary | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="home-scroll"), Vertical(id="home-card"):
            yield Static("Loading workspace…", id="home-summary")
        yield Footer()

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def on_mount(self) -> None:
        self.action_refresh_summary()

    def on_screen_resume(self) -> None:
        self.action_refresh_summary()

    def action_refresh_summary(self) -> None:
        self._summarise()

    @work(thread=True, exclusive=True, exit_on_error=False, group="home-summary")
    def _summarise(self) -> None:
        with self.workspace.thread_store() as store:
            summary = summarise_workspace(store)
        self.post_message(self.Summarised(summary))

    @on(Summarised)
    def _show_summary(self, message: Summarised) -> None:
        self.summary = message.summary
        card = self.query_one("#home-card")
        card.set_class(message.summary.empty, "-empty")
        text = EMPTY_TEXT if message.summary.empty else render_summary(message.summary)
        self.query_one("#home-summary", Static).update(text)

    @on(WorkspaceChanged)
    def _workspace_changed(self) -> None:
        self.action_refresh_summary()
