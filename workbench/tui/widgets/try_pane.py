"""The Prompts screen's Try tab: model, N and problem set; what a Try did, call by call."""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from workbench.core.experiments.playground import PreviewResult
from workbench.core.perturb import load_taxonomy
from workbench.tui.prompt_playground import cost_text, short_id
from workbench.tui.widgets.step_diff import StepDiff
from workbench.tui.widgets.version_compare import checks_cell, result_note

TRY_HINT = (
    "ctrl+r (or the Try button) perturbs the first N problems with this draft; "
    "pick a row to see the changed step here"
)
COLUMNS = ("version", "problem", "step", "error type", "flags", "tokens", "cost", "ms")


class TryPane(Vertical):
    """Controls (``#try-model``, ``#try-n``, ``#try-set``, ``#try-run``), a status line,
    one table row per problem tried, and the step the highlighted row changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: dict[str, PreviewResult] = {}  # table row key -> result

    def compose(self) -> ComposeResult:
        with Horizontal(id="try-controls"):
            yield Label("model")
            yield Input(id="try-model")
            yield Label("N")
            yield Input("3", id="try-n", type="integer")
            yield Label("set")
            yield Input(placeholder="problem set (blank: library)", id="try-set")
            yield Button("Try", id="try-run", variant="primary")
        with Horizontal(id="try-plan"):
            # what to ask for, before trying: one error type and one step, or the seed's pick
            yield Label("error type")
            yield Select[str](
                [(e.id, e.id) for e in load_taxonomy()], prompt="any (seeded)", id="try-error"
            )
            yield Label("step")
            yield Input(placeholder="any (seeded)", id="try-step", type="integer")
        yield Static("", id="try-status")
        yield DataTable(id="try-table", cursor_type="row", zebra_stripes=True)
        yield StepDiff(id="try-diff")

    def plan_choice(self) -> tuple[tuple[str, ...], int | None]:
        """The error types and the step asked for (empty / None: the seed chooses)."""
        error = self.query_one("#try-error", Select).value
        step = self.query_one("#try-step", Input).value.strip()
        errors = () if error is Select.NULL else (str(error),)
        return errors, (int(step) if step.isdigit() and int(step) > 0 else None)

    def on_mount(self) -> None:
        self.query_one("#try-table", DataTable).add_columns(*COLUMNS)
        self.query_one("#try-diff", StepDiff).clear(TRY_HINT)

    def show_status(self, text: Content | str) -> None:
        self.query_one("#try-status", Static).update(
            Content(text) if isinstance(text, str) else text  # errors hold brackets: plain
        )

    def add_results(self, version: str, run_id: int, results: Sequence[PreviewResult]) -> None:
        """A row per problem of a finished Try; the first of them is highlighted and shown."""
        table = self.query_one("#try-table", DataTable)
        for r in results:
            key = f"{run_id}:{r.problem_id}"
            self.rows[key] = r
            table.add_row(
                version,
                short_id(r.problem_id),
                "-" if r.step_index is None else str(r.step_index + 1),
                r.error_type or "-",
                checks_cell(r),
                f"{r.input_tokens}/{r.output_tokens}",
                cost_text(r.cost_usd),
                f"{r.latency_ms:.0f}",
                key=key,
            )
        if results:
            table.move_cursor(row=table.row_count - len(results))
            self.show_result(results[0])

    @on(DataTable.RowHighlighted, "#try-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        result = self.rows.get(str(event.row_key.value))
        if result is not None:
            self.show_result(result)

    def show_result(self, result: PreviewResult) -> None:
        self.query_one("#try-diff", StepDiff).show(
            result.original_step or "", result.perturbed_step, note=result_note(result)
        )
