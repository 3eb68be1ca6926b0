"""App-wide messages that more than one screen listens to."""

from __future__ import annotations

from textual.message import Message


class WorkspaceChanged(Message):
    """Problems, sets or prompts were added; the current screen reloads what it shows."""


class SamplesImported(Message):
    """The bundled-sample import finished (``text`` is one line for the user)."""

    def __init__(self, text: str, *, ok: bool) -> None:
        super().__init__()
        self.text = text
        self.ok = ok
