"""Two prompt versions' playground results side by side: pass rates, flags, step diffs."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Select, Static

from workbench.core.experiments.playground import PreviewResult
from workbench.core.perturb import type_mismatch
from workbench.core.views.prompt_compare import PromptDiff
from workbench.tui.widgets.step_diff import StepDiff

ResultsFor = Callable[[int], list[PreviewResult]]
DiffFor = Callable[[int, int], PromptDiff]

LINE_STYLE = {"removed": "$error", "added": "$success", "gap": "$text-muted", "same": ""}
LINE_MARK = {"removed": "- ", "added": "+ ", "gap": "  ", "same": "  "}


def prompt_diff_content(diff: PromptDiff) -> Content:
    """Each side's version and the model it was tried with, then the changed lines."""
    head = Content.assemble(
        ("A ", "bold"),
        f"{diff.a.title} · {diff.a.tried}\n",
        ("B ", "bold"),
        f"{diff.b.title} · {diff.b.tried}",
    )
    if diff.a.model and diff.b.model and diff.a.model != diff.b.model:
        head += Content.styled("\nthe two were tried with different models", "bold $warning")
    if not diff.lines:
        return head + Content.styled("\nthe same text", "$text-muted")
    lines = [
        Content.styled(LINE_MARK[line.op] + line.text, LINE_STYLE[line.op]) for line in diff.lines
    ]
    return head + Content("\n") + Content("\n").join(lines)


def pass_rate_text(results: list[PreviewResult]) -> str:
    n = len(results)
    valid = sum(r.valid for r in results)
    first = sum(r.valid and r.attempt == 1 for r in results)
    pct = f"{100 * valid / n:.0f}%" if n else "-"
    return f"{valid}/{n} valid ({pct}), {first} on the first try"


def mismatch(result: PreviewResult) -> str | None:
    """Why the perturbed step does not look like the requested error type (or None)."""
    return type_mismatch(result.error_type, result.original_step, result.perturbed_step)


def flags_cell(result: PreviewResult | None) -> str:
    if result is None:
        return "-"
    if result.status == "error":
        return "error"
    if not result.validated:
        return "unchecked"  # the run stopped before its outputs were validated
    return ", ".join(result.flags) or "ok"


def checks_cell(result: PreviewResult) -> str:
    """The validation flags, and "type mismatch" when the step does not look like the
    error type asked for (a warning: the step stays valid)."""
    cell = flags_cell(result)
    if mismatch(result) is None or result.status == "error":
        return cell
    return "type mismatch" if cell == "ok" else f"{cell}, type mismatch"


def result_note(result: PreviewResult) -> str:
    bits = [f"attempt {result.attempt}"]
    if result.error_type:
        bits.append(result.error_type)
    if (why := mismatch(result)) is not None:
        bits.append(f"type mismatch: {why}")
    if result.reasons:
        bits.append("; ".join(result.reasons))
    if result.error:
        bits.append(result.error)
    if result.perturbed_step is None and result.output.strip():
        reply = " ".join(result.output.split())  # one line: the raw reply that did not parse
        bits.append(f"reply: {reply[:200]}{'…' if len(reply) > 200 else ''}")
    return " · ".join(bits)


class VersionCompare(Vertical):
    """Pick versions A and B; rows are problems, the highlighted one shows both diffs."""

    DEFAULT_CSS = """
    VersionCompare { height: 1fr; }
    VersionCompare #compare-controls { height: auto; }
    VersionCompare Select { width: 1fr; }
    VersionCompare #compare-rates { height: auto; padding: 0 1; color: $text-muted; }
    VersionCompare #compare-prompt {
        height: auto; max-height: 12; padding: 0 1; border: round $panel;
    }
    VersionCompare #compare-table { height: 1fr; min-height: 5; }
    VersionCompare #compare-diffs { height: auto; max-height: 14; }
    VersionCompare #compare-diffs StepDiff { width: 1fr; }
    """

    def __init__(
        self, results_for: ResultsFor, diff_for: DiffFor | None = None, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.results_for = results_for
        self.diff_for = diff_for
        self.labels: dict[int, str] = {}  # version id -> its name in the pickers

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-controls"):
            yield Select[int]([], prompt="version A", id="compare-a")
            yield Select[int]([], prompt="version B", id="compare-b")
        yield Static("Pick two versions that have Try results.", id="compare-rates")
        with VerticalScroll(id="compare-prompt"):
            yield Static("", id="compare-prompt-diff")
        yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="compare-diffs"):
            yield StepDiff(id="compare-diff-a")
            yield StepDiff(id="compare-diff-b")

    def on_mount(self) -> None:
        self.query_one("#compare-table", DataTable).add_columns("problem", "A", "B")

    def set_choices(self, options: list[tuple[str, int]]) -> None:
        """Offer these versions; keep current picks, default to the two newest."""
        ids = [v for _, v in options]
        self.labels = dict((v, label) for label, v in options)
        a, b = self.query_one("#compare-a", Select), self.query_one("#compare-b", Select)
        for select in (a, b):
            current = select.value
            select.set_options(options)
            if current in ids:
                select.value = current
        if len(ids) >= 2 and (a.is_blank() or b.is_blank()):
            a.value, b.value = ids[-2], ids[-1]

    def picked(self) -> tuple[int, int] | None:
        a = self.query_one("#compare-a", Select).value
        b = self.query_one("#compare-b", Select).value
        if isinstance(a, int) and isinstance(b, int):
            return a, b
        return None

    @on(Select.Changed)
    def _picked_changed(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear()
        picked = self.picked()
        rates = self.query_one("#compare-rates", Static)
        if picked is None:
            rates.update("Pick two versions that have Try results.")
            self.query_one("#compare-prompt-diff", Static).update("")
            return
        a, b = picked
        left, right = self.results_for(a), self.results_for(b)
        name_a, name_b = (self.labels.get(v, f"@{v}") for v in (a, b))
        rates.update(
            Content(f"A {name_a}: {pass_rate_text(left)}\nB {name_b}: {pass_rate_text(right)}")
        )
        if self.diff_for is not None:
            self.query_one("#compare-prompt-diff", Static).update(
                prompt_diff_content(self.diff_for(a, b))
            )
        by_a = {r.problem_id: r for r in left}
        by_b = {r.problem_id: r for r in right}
        for pid in dict.fromkeys([*by_a, *by_b]):
            table.add_row(pid, flags_cell(by_a.get(pid)), flags_cell(by_b.get(pid)), key=pid)

    @on(DataTable.RowHighlighted, "#compare-table")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        picked = self.picked()
        if picked is None:
            return
        pid = str(event.row_key.value)
        for version_id, widget_id in zip(
            picked, ("#compare-diff-a", "#compare-diff-b"), strict=True
        ):
            widget = self.query_one(widget_id, StepDiff)
            found = next((r for r in self.results_for(version_id) if r.problem_id == pid), None)
            if found is None:
                widget.clear("not tried on this problem")
            else:
                widget.show(
                    found.original_step or "", found.perturbed_step, note=result_note(found)
                )
