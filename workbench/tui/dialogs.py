"""Reusable modal dialogs: confirm, text input, choice.

Each is a ``ModalScreen[T]``; use ``await app.push_screen_wait(...)`` from a
worker, or ``app.push_screen(dialog, callback)``.  Escape always cancels
(False / None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from workbench.core.store import Store
from workbench.core.views.workspace import recent_runs

#: validate(value) -> an error message, or None when the value is fine
Validator = Callable[[str], str | None]

T = TypeVar("T")


class _Dialog(ModalScreen[T]):
    DEFAULT_CLASSES = "dialog"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def _cancel_value(self) -> T:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(self._cancel_value())


class ConfirmDialog(_Dialog[bool]):
    """Yes / no.  ``y`` / ``enter`` confirm, ``n`` / ``escape`` cancel."""

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="dialog.yes"),
        Binding("n", "cancel", "No", id="dialog.no"),
    ]

    def __init__(self, title: str, message: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.title_text, self.message, self.yes, self.no = title, message, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Static(self.message, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="primary", id="yes")
                yield Button(self.no, id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def _cancel_value(self) -> bool:
        return False

    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class TextInputDialog(_Dialog[str | None]):
    """One line of text, validated before it is accepted."""

    def __init__(
        self,
        title: str,
        prompt: str,
        *,
        value: str = "",
        placeholder: str = "",
        validate: Validator | None = None,
    ) -> None:
        super().__init__()
        self.title_text, self.prompt, self.value = title, prompt, value
        self.placeholder, self.validate = placeholder, validate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Label(self.prompt, classes="dialog-message")
            yield Input(self.value, placeholder=self.placeholder, id="dialog-input")
            yield Static("", id="dialog-error", classes="dialog-error")
            yield Static("enter accept · escape cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _cancel_value(self) -> str | None:
        return None

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        problem = self.validate(value) if self.validate else None
        if problem:
            self.query_one("#dialog-error", Static).update(problem)
            return
        self.dismiss(value)


class ChoiceDialog(_Dialog[str | None]):
    """Pick one of several options; returns its key."""

    def __init__(
        self, title: str, choices: Sequence[tuple[str, str]], *, current: str | None = None
    ) -> None:
        """``choices`` are (key, label) pairs."""
        super().__init__()
        self.title_text, self.choices, self.current = title, list(choices), current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield OptionList(*(Option(label, id=key) for key, label in self.choices))
            yield Static("enter choose · escape cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [key for key, _ in self.choices]
        if self.current in keys:
            options.highlighted = keys.index(self.current)
        options.focus()

    def _cancel_value(self) -> str | None:
        return None

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


def choose_run(
    screen: Screen[Any],
    store: Store,
    title: str,
    current: int | None,
    on_pick: Callable[[int], object],
) -> None:
    """Offer the newest runs in a ``ChoiceDialog``; ``on_pick`` gets the chosen run id."""
    runs = recent_runs(store, limit=200)
    if not runs:
        return
    choices = [(str(r.id), f"{r.id:>4}  {r.name}  ({r.kind}, {r.status})") for r in runs]

    def done(key: str | None) -> None:
        if key is not None:
            on_pick(int(key))

    chosen = str(current) if current is not None else None
    screen.app.push_screen(ChoiceDialog(title, choices, current=chosen), done)
