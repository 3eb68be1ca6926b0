"""The Prompts screen's Edit tab: the template editor beside its live preview."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static, TextArea

from workbench.tui.prompt_playground import editor_language


class PromptPreview(Vertical):
    """Which problem the draft is rendered on, its template error, and the rendered turns."""

    def compose(self) -> ComposeResult:
        yield Static("", id="preview-problem")
        yield Static("", id="preview-error")
        with VerticalScroll(id="preview-scroll"):
            yield Static("", id="preview")

    def show_problem(self, text: str) -> None:
        self.query_one("#preview-problem", Static).update(Content(text))  # problem ids: plain

    def show_error(self, error: str | None) -> None:
        box = self.query_one("#preview-error", Static)
        box.update(Content.from_markup("[$text-error]⚠ $e[/]", e=error) if error else "")
        box.display = error is not None

    def show_rendered(self, rendered: Content | str) -> None:
        self.query_one("#preview", Static).update(rendered)


class PromptEditorPane(Horizontal):
    """The editor (``#editor``) and its preview (``#preview-pane``)."""

    def compose(self) -> ComposeResult:
        yield TextArea(
            "",
            id="editor",
            language=editor_language(),
            show_line_numbers=True,
            tab_behavior="indent",
        )
        yield PromptPreview(id="preview-pane")

    @property
    def editor(self) -> TextArea:
        return self.query_one("#editor", TextArea)

    @property
    def preview(self) -> PromptPreview:
        return self.query_one(PromptPreview)

    def load(self, text: str, title: str) -> None:
        self.editor.load_text(text)
        self.editor.border_title = title

    def show_error(self, error: str | None) -> None:
        self.preview.show_error(error)
        self.editor.set_class(error is not None, "-invalid")
