"""Tables section: CSV tables, the questions generated on them, and the agent's conversations.

Three levels on one screen, enter going down and escape up: the table list (profile and a
page of rows beside it), a table's questions (hint, DAG, answers, validation and pass rate),
and a question's conversations (a stepper over turns, tool calls folded to one line).
Everything shown comes from ``core.views.tables``; the screen renders it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core.analysis.stats import format_bound, format_percent
from workbench.core.views import tables as views
from workbench.tui.commands import PaletteCommand
from workbench.tui.live_runs import LaunchRun
from workbench.tui.messages import OpenRunBuilder, WorkspaceChanged
from workbench.tui.workspace import Workspace, workspace_of

PAGE_ROWS = 15  # rows of a table's frame preview per page
BADGES = {"correct": ("✓", "green"), "wrong": ("✗", "red"), "no_answer": ("∅", "yellow")}


class Level(StrEnum):
    TABLES = "tables"
    QUESTIONS = "questions"
    CONVERSATIONS = "conversations"


def _badges(subs: tuple[tuple[str, str], ...], names: bool = False) -> Text:
    out = Text()
    for name, status in subs:
        mark, style = BADGES.get(status, ("?", "dim"))
        out.append(f"{mark}{' ' + name if names else ''} ", style=style)
    return out


def _run(run_id: int, recorded: bool) -> str:
    return f"run {run_id} (recorded)" if recorded else f"run {run_id}"


def _rate(rate: Any) -> str:
    if rate is None:
        return "–"
    return f"{rate.correct}/{rate.n}"


class TablesScreen(Screen[None]):
    """Tables, their generated questions and the conversations that answered them."""

    CSS_PATH = "tables.tcss"
    PALETTE = (
        PaletteCommand("tables: new run", "Generate / answer / best-of-n on a table", "new_run"),
        PaletteCommand("tables: raw output", "Toggle raw and shown tool output", "raw"),
    )
    BINDINGS = [
        Binding("enter", "open", "Open", id="tables.open"),
        Binding("escape", "back", "Back", id="tables.back"),
        Binding("j", "step(1)", "Next", id="tables.next"),
        Binding("k", "step(-1)", "Prev", id="tables.previous"),
        Binding("full_stop", "page(1)", "Next page", id="tables.next_page"),
        Binding("comma", "page(-1)", "Prev page", id="tables.previous_page"),
        Binding("W", "raw", "Raw/shown", id="tables.raw"),
        Binding("n", "new_run", "New run", id="tables.new_run"),
        Binding("r", "refresh", "Refresh", id="tables.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.level = Level.TABLES
        self.tables: list[views.TableSummary] = []
        self.table: views.TableSummary | None = None
        self.frame_offset = 0  # the frame preview's first row
        self.questions: list[views.QuestionView] = []
        self.question: views.QuestionView | None = None
        self.conversations: list[views.ConversationRef] = []
        self.conversation: views.ConversationView | None = None
        self.turn = 0
        self.expanded: set[int] = set()  # turns whose tool output is shown
        self.raw = False  # raw stored results instead of what the model was shown
        self._turn_line = 0  # the current turn's first line in the stepper

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="tables-crumb")
        with Horizontal(id="tables-body"):
            yield DataTable(id="tables-list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="tables-detail-scroll"):
                yield Static("", id="tables-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load_tables()

    @on(WorkspaceChanged)
    def _changed(self) -> None:
        self.action_refresh()

    # -- loading -----------------------------------------------------------------------------

    @property
    def listing(self) -> DataTable[Any]:
        return self.query_one("#tables-list", DataTable)

    def _fill(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]], cursor: int) -> None:
        table = self.listing
        table.clear(columns=True)
        table.add_columns(*columns)
        for row in rows:
            table.add_row(*row)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        table.focus()

    def load_tables(self, cursor: int = 0) -> None:
        self.level = Level.TABLES
        self.tables = views.table_summaries(self.workspace.store)
        rows = [
            (s.table.name, f"{s.table.n_rows:,}×{s.table.n_columns}", str(s.questions))
            for s in self.tables
        ]
        self._fill(("table", "rows×cols", "questions"), rows, cursor)
        self._show()

    def load_questions(self, cursor: int = 0) -> None:
        assert self.table is not None
        self.level = Level.QUESTIONS
        self.questions = views.table_questions(self.workspace.store, self.table.table.sha256)
        rows = [
            (
                Text("✓", "green") if q.accepted else Text("✗", "red"),
                _rate(q.pass_rate),
                q.question[:60] or q.raw[:60],
            )
            for q in self.questions
        ]
        self._fill(("ok", "pass", "question"), rows, cursor)
        self._show()

    def load_conversations(self, cursor: int = 0) -> None:
        assert self.table is not None and self.question is not None
        self.level = Level.CONVERSATIONS
        store = self.workspace.store
        generated = [
            ref
            for ref in views.generation_conversations(store, self.table.table.sha256)
            if ref.run_id == self.question.run_id
        ]
        self.conversations = generated + views.question_conversations(
            store, self.question.question_id
        )
        rows = [
            (ref.label, _badges(ref.subs), _run(ref.run_id, ref.recorded), ref.stop_reason)
            for ref in self.conversations
        ]
        self._fill(("conversation", "verdicts", "from", "stop"), rows, cursor)
        self._open_conversation()

    def _open_conversation(self) -> None:
        row = self.listing.cursor_row
        self.turn = 0
        self.expanded = set()
        if 0 <= row < len(self.conversations):
            self.conversation = views.conversation(self.workspace.store, self.conversations[row])
        else:
            self.conversation = None
        self._show()

    # -- rendering ---------------------------------------------------------------------------

    def _show(self) -> None:
        crumb = Text("Tables", "bold")
        if self.level != Level.TABLES and self.table is not None:
            crumb.append(f" › {self.table.table.name}")
        if self.level == Level.CONVERSATIONS and self.question is not None:
            crumb.append(f" › {self.question.question[:50]}")
        if self.level == Level.CONVERSATIONS:
            crumb.append("   j/k turns · enter expands · W raw/shown", "dim")
        self.query_one("#tables-crumb", Static).update(crumb)
        detail = self.query_one("#tables-detail", Static)
        if self.level == Level.TABLES:
            detail.update(self._table_detail())
        elif self.level == Level.QUESTIONS:
            detail.update(self._question_detail())
        else:
            detail.update(self._conversation_detail())
            # keep the current turn in view (a line count: wrapped lines make it approximate)
            scroll = self.query_one("#tables-detail-scroll", VerticalScroll)
            scroll.scroll_to(y=max(0, self._turn_line - 1), animate=False)

    def _table_detail(self) -> Text:
        row = self.listing.cursor_row
        if not self.tables or not 0 <= row < len(self.tables):
            return Text(
                "No tables yet: `workbench import --table FILE.csv`, or `workbench demo`.", "dim"
            )
        table = self.tables[row].table
        out = Text()
        out.append(f"{table.name}", "bold")
        out.append(
            f"  {table.n_rows:,} rows × {table.n_columns} columns · {table.encoding}"
            f" · sha256 {table.sha256[:12]} · {Path(table.path).name}\n\n",
            "dim",
        )
        profile = table.profile.get("columns", {})
        width = max([6, *(len(c) for c in table.columns)])
        out.append(
            f"{'column':<{width}} {'dtype':<8} {'nulls':>5} {'distinct':>8}  range / top\n", "bold"
        )
        for name in table.columns:  # the file's order (the stored profile is sorted)
            col = profile.get(name)
            if col is None:
                continue
            out.append(f"{name:<{width}} ", "cyan")
            out.append(
                f"{col.get('dtype', ''):<8} {col.get('nulls', 0):>5} {col.get('distinct', 0):>8}  "
            )
            if col.get("min") is not None:
                out.append(f"{col.get('min')} … {col.get('max')}")
            elif col.get("top"):
                out.append(", ".join(f"{v} ({n})" for v, n in col["top"][:3]))
            out.append("\n")
        page = views.frame_page(self.workspace.store, table.id, self.frame_offset, PAGE_ROWS)
        if page.error:
            out.append(f"\n{page.error}\n", "red")
            return out
        end = page.offset + len(page.rows)
        out.append(f"\nrows {page.offset + 1:,}–{end:,} of {page.total:,}", "bold")
        out.append("  (. next page, , previous)\n", "dim")
        widths = [
            max([len(c), *(len(r[i]) for r in page.rows)]) for i, c in enumerate(page.columns)
        ]
        out.append("  ".join(c.rjust(w) for c, w in zip(page.columns, widths, strict=True)))
        out.append("\n")
        for r in page.rows:
            out.append("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=False)) + "\n")
        return out

    def _question_detail(self) -> Text:
        row = self.listing.cursor_row
        if not self.questions or not 0 <= row < len(self.questions):
            return Text("No questions on this table yet: n starts a csv_agent run.", "dim")
        q = self.questions[row]
        out = Text()
        out.append(q.question or "(did not parse)", "bold")
        out.append(f"\n{q.question_id} · {_run(q.run_id, q.recorded)}\n\n", "dim")
        if q.accepted:
            out.append("accepted", "green")
        else:
            out.append(q.status, "red")
        if q.flags:
            out.append(f"  flags: {', '.join(q.flags)}", "yellow")
        if q.reason:
            out.append(f"\n{q.reason}")
        out.append("\n")
        rate = q.pass_rate
        if rate is not None:
            out.append("\npass rate ", "bold")
            # the one rounding rule every surface uses (analysis.stats)
            out.append(
                f"{format_percent(rate.correct, rate.n)} ({rate.correct}/{rate.n} attempts, "
                f"95% CI {format_bound(rate.low, rate.n)}–{format_bound(rate.high, rate.n)})\n"
            )
        if q.constraints:
            out.append("\nconstraints ", "bold")
            out.append(q.constraints + "\n")
        if q.hint:
            out.append("\nhint ", "bold")
            out.append(q.hint + "\n")
        if q.format:
            out.append("\nformat ", "bold")
            out.append("; ".join(q.format) + "\n")
        if q.answers:
            out.append("\nanswers ", "bold")
            out.append(", ".join(f"{k} = {v}" for k, v in q.answers) + "\n")
        if q.recomputed and not q.accepted:
            out.append("the DAG gives ", "bold")
            out.append(", ".join(f"{k} = {v}" for k, v in q.recomputed) + "\n")
        if q.dag:
            out.append("\nDAG\n", "bold")
            for step in q.dag:
                out.append("  " * (step.depth + 1) + f"{step.id} ")
                out.append(step.tool, "cyan")
                out.append(f"({step.args})")
                if step.save_as:
                    out.append(f" → {step.save_as}", "dim")
                if step.answer:
                    out.append(f" ⇒ @{step.answer}", "green")
                out.append("\n")
        if not q.question and q.raw:
            out.append("\nraw\n", "bold")
            out.append(q.raw[:2000] + "\n")
        return out

    def _conversation_detail(self) -> Text:
        conv = self.conversation
        if conv is None:
            return Text("No conversations for this question yet.", "dim")
        ref = conv.ref
        out = Text()
        out.append(
            f"{ref.label} · {_run(ref.run_id, ref.recorded)} · {ref.stop_reason}"
            f" · {ref.turns} turns  "
        )
        out.append_text(_badges(ref.subs, names=True))
        out.append(f"  [{'raw' if self.raw else 'shown'} output]\n", "dim")
        if conv.prompt_hint:
            out.append(f"hint: {conv.prompt_hint}\n", "dim")
        for i, turn in enumerate(conv.turns):
            current = i == self.turn
            if current:
                self._turn_line = out.plain.count("\n") + 1
            out.append("\n▶ " if current else "\n  ", "bold yellow" if current else "")
            out.append(f"turn {turn.turn}\n", "bold" if current else "dim")
            if turn.text:
                out.append("    " + turn.text.strip().replace("\n", "\n    ") + "\n")
            for call in turn.calls:
                out.append("    ")
                out.append(call.folded, "red" if call.error_kind else "cyan")
                out.append("\n")
                if i in self.expanded:
                    body = call.raw if self.raw else call.shown
                    out.append("      " + body.replace("\n", "\n      ") + "\n", "dim")
            if turn.feedback:
                out.append("    user: " + turn.feedback.replace("\n", "\n    ") + "\n", "yellow")
        return out

    # -- events and actions ------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#tables-list")
    def _highlighted(self) -> None:
        if self.level == Level.CONVERSATIONS:
            self._open_conversation()
        else:
            if self.level == Level.TABLES:
                self.frame_offset = 0
            self._show()

    @on(DataTable.RowSelected, "#tables-list")
    def _selected(self) -> None:
        # the focused list takes enter for itself, so the screen's binding never fires
        self.action_open()

    def action_open(self) -> None:
        row = self.listing.cursor_row
        if self.level == Level.TABLES and 0 <= row < len(self.tables):
            self.table = self.tables[row]
            self.load_questions()
        elif self.level == Level.QUESTIONS and 0 <= row < len(self.questions):
            self.question = self.questions[row]
            self.load_conversations()
        elif self.level == Level.CONVERSATIONS and self.conversation is not None:
            self.expanded ^= {self.turn}
            self._show()

    def action_back(self) -> None:
        if self.level == Level.CONVERSATIONS:
            self.load_questions(self.questions.index(self.question) if self.question else 0)
        elif self.level == Level.QUESTIONS:
            self.load_tables(self.tables.index(self.table) if self.table else 0)

    def action_step(self, delta: int) -> None:
        if self.level == Level.CONVERSATIONS and self.conversation is not None:
            last = max(len(self.conversation.turns) - 1, 0)
            self.turn = max(0, min(last, self.turn + delta))
            self._show()
        else:
            table = self.listing
            if table.row_count:
                table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + delta)))

    def action_page(self, delta: int) -> None:
        row = self.listing.cursor_row
        if self.level != Level.TABLES or not 0 <= row < len(self.tables):
            return
        total = self.tables[row].table.n_rows
        last = max(0, (total - 1) // PAGE_ROWS * PAGE_ROWS)
        self.frame_offset = max(0, min(last, self.frame_offset + delta * PAGE_ROWS))
        self._show()

    def action_raw(self) -> None:
        self.raw = not self.raw
        if self.level == Level.CONVERSATIONS and self.conversation is not None:
            self.expanded.add(self.turn)  # asking for raw output means wanting to see it
        self._show()

    def action_refresh(self) -> None:
        cursor = self.listing.cursor_row
        if self.level == Level.TABLES:
            self.load_tables(cursor)
        elif self.level == Level.QUESTIONS:
            self.load_questions(cursor)
        else:
            self.load_conversations(cursor)

    def action_new_run(self) -> None:
        """The run builder with a csv_agent config on the current table."""
        row = self.listing.cursor_row
        table = self.table
        if self.level == Level.TABLES and 0 <= row < len(self.tables):
            table = self.tables[row]
        config: dict[str, Any] = {"kind": "csv_agent"}
        if table is not None:
            config["tables"] = [table.table.name]
            config["name"] = f"csv {table.table.name}"
        self.post_message(OpenRunBuilder(config, title="New CSV-agent run"))

    @on(LaunchRun)
    async def _launch(self, message: LaunchRun) -> None:
        """Runs launches and monitors every run: hand the request over there."""
        message.stop()
        await self.app.switch_mode("runs")
        self.app.screen.post_message(LaunchRun(message.request))
