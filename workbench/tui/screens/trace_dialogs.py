"""Dialogs of the trace stepper: filter, label a sample, and the request a sample sent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from workbench.core.views.requests import SentRequest
from workbench.core.views.traces import LABEL_PRESETS, OUTCOMES, FilterChoices, TraceFilter

_FIELDS = ("outcome", "error_type", "bin", "model", "stage", "flag", "label")


class TraceFilterDialog(ModalScreen[TraceFilter | None]):
    """Pick outcome / error type / bin / model / stage / flag / label and a search text."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="traces.filter.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="traces.filter.apply"),
    ]

    def __init__(self, current: TraceFilter, choices: FilterChoices) -> None:
        super().__init__()
        self.current = current
        self.choices = choices

    def _options(self, name: str) -> tuple[str, ...]:
        if name == "outcome":
            return OUTCOMES
        plural = {
            "error_type": "error_types",
            "bin": "bins",
            "model": "models",
            "stage": "stages",
            "flag": "flags",
            "label": "labels",
        }[name]
        values: tuple[str, ...] = getattr(self.choices, plural)
        return values

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box trace-filter-box") as box:
            box.border_title = "Filter traces"
            for name in _FIELDS:
                with Horizontal(classes="filter-row"):
                    yield Label(name.replace("_", " "), classes="filter-label")
                    value = getattr(self.current, name)
                    options = self._options(name)
                    yield Select(
                        [(o, o) for o in options],
                        value=value if value in options else Select.NULL,
                        prompt="any",
                        id=f"filter-{name}",
                    )
            with Horizontal(classes="filter-row"):
                yield Label("search", classes="filter-label")
                yield Input(
                    self.current.text or "",
                    placeholder="text in output or question",
                    id="filter-text",
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Clear", id="clear")
            yield Static("ctrl+s apply · escape cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#filter-outcome", Select).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_apply(self) -> None:
        values: dict[str, Any] = {}
        for name in _FIELDS:
            value = self.query_one(f"#filter-{name}", Select).value
            values[name] = None if value is Select.NULL else str(value)
        values["text"] = self.query_one("#filter-text", Input).value.strip() or None
        self.dismiss(replace(self.current, **values))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(TraceFilter())


class LabelDialog(ModalScreen[tuple[str, str] | None]):
    """A preset label (keys 1-3) or a free one (tab to type), with an optional note."""

    DEFAULT_CLASSES = "dialog"
    AUTO_FOCUS = ""  # digits pick presets until tab moves into the text box
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="traces.label.cancel"),
        *(
            Binding(str(i + 1), f"preset({i})", preset, id=f"traces.label.preset{i + 1}")
            for i, preset in enumerate(LABEL_PRESETS)
        ),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box label-box") as box:
            box.border_title = "Label this sample"
            with Horizontal(classes="label-presets"):
                for i, preset in enumerate(LABEL_PRESETS):
                    button = Button(f"{i + 1} {preset}", id=f"preset-{i}")
                    button.can_focus = False  # digits stay shortcuts; tab goes to the text
                    yield button
            yield Input(placeholder="or tab here and type a label", id="label-text")
            yield Input(placeholder="note (optional)", id="label-note")
            yield Static(
                "1-3 preset · tab type a label · enter save · escape cancel", classes="dialog-hint"
            )

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _note(self) -> str:
        return self.query_one("#label-note", Input).value.strip()

    def action_preset(self, index: int) -> None:
        self.dismiss((LABEL_PRESETS[index], self._note()))

    @on(Button.Pressed)
    def _preset(self, event: Button.Pressed) -> None:
        self.action_preset(int((event.button.id or "preset-0").split("-")[1]))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        label = self.query_one("#label-text", Input).value.strip()
        if label:
            self.dismiss((label, self._note()))
        else:
            self.query_one("#label-text", Input).focus()


class RequestDialog(ModalScreen[None]):
    """The exact request a sample's call sent: messages or raw prompt and prefix, the
    parameters, what the adapter sent and the continuation method (redacted)."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "close", "Close", id="traces.request.close"),
        Binding("y", "copy", "Copy", id="traces.request.copy"),
    ]

    def __init__(self, request: SentRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical(classes="dialog-box", id="request-box") as box:
            box.border_title = f"Request of call {r.call_id}"
            # Content, never markup: prompts hold brackets ("[pricing]") that must show as typed
            head = (
                f"{r.provider}:{r.model}  ·  continuation {r.continuation or '-'}  ·  "
                f"{'raw prompt' if r.raw else 'chat messages'}  ·  attempts {r.attempts}  ·  "
                f"{r.status}"
            )
            yield Static(Content(head), id="request-head")
            params = ", ".join(f"{k}={v}" for k, v in r.parameters) or "-"
            sent = ", ".join(f"{k}={v}" for k, v in r.sent_params) or "-"
            yield Static(
                Content.assemble(
                    ("parameters ", "$text-muted"), params, ("\nsent ", "$text-muted"), sent
                ),
                id="request-params",
            )
            with VerticalScroll(id="request-scroll"):
                if r.system:
                    yield Static("system", classes="trace-title")
                    yield Static(Content(r.system), classes="trace-block")
                for m in r.messages:
                    yield Static(m.role, classes="trace-title")
                    yield Static(Content(m.content), classes="trace-block")
                if r.prompt is not None:
                    yield Static("raw prompt", classes="trace-title")
                    yield Static(Content(r.prompt), classes="trace-block")
                if r.prefix:
                    yield Static("prefix continued", classes="trace-title")
                    yield Static(Content(r.prefix), classes="trace-block")
                if r.error:
                    yield Static(Content(f"error: {r.error}"), classes="dialog-error")
                if not (r.system or r.messages or r.prompt or r.prefix):
                    yield Static("(the call stored no request text)", classes="dialog-hint")
            yield Static("y copy · escape close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.request.as_text())
        self.notify(f"copied the request of call {self.request.call_id}", timeout=2)
