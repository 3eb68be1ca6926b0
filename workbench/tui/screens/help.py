"""``?``: the keys that work on the current screen, read from its live bindings."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static


@dataclass(frozen=True)
class KeyHelp:
    key: str
    description: str
    where: str  # "app", the screen's name, or the focused widget's


def bindings_for(screen: Screen[object], title: str = "this screen") -> list[KeyHelp]:
    """Every binding active on ``screen``: the screen's own first, then the focused
    widget's, then the app's, each in declared order; one row per key and description."""
    app = screen.app
    groups: dict[str, list[KeyHelp]] = {"screen": [], "widget": [], "app": []}
    stock: dict[str, list[KeyHelp]] = {}
    seen: set[tuple[str, str]] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        description = binding.description or binding.tooltip
        if not description or binding.system:
            continue
        if app.ENABLE_COMMAND_PALETTE and binding.action in (
            "command_palette",
            "app.command_palette",
        ):
            continue  # listed once below, with a better description
        node = active.node
        group = "app" if node is app else "screen" if node is screen else "widget"
        if (group, description) in seen:
            continue  # e.g. ctrl+c and super+c both "Copy selected text"
        seen.add((group, description))
        where = {
            "app": "everywhere",
            "screen": title,
            "widget": f"in the {_widget_name(node)}",
        }[group]
        row = KeyHelp(app.get_key_display(binding), description, where)
        # the workbench's own bindings (they all have ids) before Textual's stock ones
        (groups[group] if binding.id else stock.setdefault(group, [])).append(row)
    palette = app.COMMAND_PALETTE_BINDING
    if app.ENABLE_COMMAND_PALETTE:
        groups["app"].append(
            KeyHelp(palette, "Command palette (area: verb commands)", "everywhere")
        )
    for group, rows in stock.items():
        groups[group] += rows
    return [*groups["screen"], *groups["widget"], *groups["app"]]


def _widget_name(node: object) -> str:
    name = type(node).__name__
    for suffix in ("Table", "List", "Input", "Log"):
        if name.endswith(suffix):
            return suffix.lower()
    return name.lower()


class HelpScreen(ModalScreen[None]):
    """Keys for the screen underneath, grouped by where they come from."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help.close"),
        Binding("question_mark", "dismiss", "Close", show=False, id="help.close2"),
        Binding("q", "dismiss", "Close", show=False, id="help.close3"),
    ]

    def __init__(self, target: Screen[object], title: str) -> None:
        super().__init__()
        self.rows = bindings_for(target, title)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box help-box") as box:
            box.border_title = f"Keys · {self.title_text}"
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            yield Static("escape or ? to close · ctrl+p for all commands", classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "what it does", "where")
        for row in self.rows:
            table.add_row(row.key, row.description, row.where)
        table.focus()
