"""Detail pane for one problem: question, numbered steps, gold answer, LaTeX made readable."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.containers import VerticalScroll
from textual.widgets import Static

from workbench.core.text import latex_to_text


def readable(text: str, source: str) -> str:
    """LaTeX as Unicode; GSM8K's ``$`` is money, not math."""
    return latex_to_text(text, dollars_are_math=not source.lower().startswith("gsm"))


def render_problem(problem: Any) -> str:
    """Console markup for a problem (anything with the Problem fields)."""
    source = str(problem.source)
    where = [source]
    if problem.subject:
        where.append(str(problem.subject))
    if problem.level is not None:
        where.append(f"level {problem.level}")
    parts = [
        f"[b]{escape(str(problem.id))}[/b]  [dim]{escape(' · '.join(where))}[/dim]",
        "",
        "[b $accent]Question[/]",
        escape(readable(problem.question, source)),
        "",
        f"[b $accent]Steps[/] [dim]({len(problem.steps)})[/dim]",
    ]
    width = len(str(len(problem.steps)))
    for n, step in enumerate(problem.steps, start=1):
        body = escape(readable(step, source)).replace("\n", "\n" + " " * (width + 2))
        parts.append(f"[b]{n:>{width}}.[/b] {body}")
    if not problem.steps:
        parts.append("[dim]no reference steps[/dim]")
    parts += ["", "[b $accent]Gold answer[/]", f"[b]{escape(readable(problem.answer, source))}[/b]"]
    return "\n".join(parts)


class ProblemDetail(VerticalScroll):
    """Scrollable pane; ``show(problem)`` replaces what it shows."""

    DEFAULT_CLASSES = "problem-detail"

    def compose(self) -> Any:
        yield Static("Press enter on a problem to see it here.", id="problem-detail-body")

    def show(self, problem: Any) -> None:
        self.query_one("#problem-detail-body", Static).update(render_problem(problem))
        self.scroll_home(animate=False)

    def show_message(self, text: str) -> None:
        self.query_one("#problem-detail-body", Static).update(escape(text))
