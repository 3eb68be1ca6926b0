"""One keymap: every binding of every screen and dialog, for ``docs/keys.md`` and checks.

Each binding has an id (``area.verb``); ``[keys]`` in ``workbench.toml`` maps ids to other
keys (Textual's keymap), e.g. ``"runs.export" = "ctrl+e"``.  ``docs/keys.md`` is generated
from here (``python -m workbench.tui.keys_doc > docs/keys.md``) and a test keeps it current.
The classes come from ``app.binding_owners()`` (this module never imports the app).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding


@dataclass(frozen=True)
class KeyEntry:
    where: str  # the screen or dialog
    id: str  # the binding id: what [keys] in workbench.toml names
    keys: str  # as declared, e.g. "enter,w"
    verb: str  # the binding's description


def _own_bindings(cls: Any) -> Iterable[Binding]:
    """Bindings ``cls`` declares itself (not those it inherits)."""
    for binding in cls.__dict__.get("BINDINGS", []):
        if isinstance(binding, Binding):
            yield binding


#: (where, class) pairs: the app's ``binding_owners()`` lists every class with bindings
Owners = Sequence[tuple[str, Any]]


def all_bindings(owners: Owners) -> list[KeyEntry]:
    return [
        KeyEntry(where, b.id or "", b.key, b.description)
        for where, cls in owners
        for b in _own_bindings(cls)
    ]


def binding_ids(owners: Owners) -> set[str]:
    return {e.id for e in all_bindings(owners) if e.id}


def key_verbs(owners: Owners) -> dict[str, set[str]]:
    """Each single key -> the verbs it has across screens (sections and dialogs apart)."""
    verbs: dict[str, set[str]] = defaultdict(set)
    for e in all_bindings(owners):
        if "dialog" in e.where.lower() or e.where in (
            "Help",
            "Trace filter",
            "Trace label",
            "Trace request",
        ):
            continue  # a modal's keys never meet a section's
        for key in e.keys.split(","):
            verbs[key.strip()].add(e.verb)
    return dict(verbs)


def keys_markdown(owners: Owners) -> str:
    """``docs/keys.md``: every binding once, by screen."""
    lines = [
        "# Keys",
        "",
        "Generated from the bindings (`python -m workbench.tui.keys_doc > docs/keys.md`); a",
        "test keeps it current.  Rebind any key in `workbench.toml` by its id:",
        "",
        "```toml",
        "[keys]",
        '"runs.export" = "ctrl+e"',
        '"traces.label" = "z"',
        "```",
        "",
        "`?` lists the keys of the screen on show; `ctrl+p` offers every command by name.",
        "A key means one verb wherever it is bound (`t` is Traces, `x` Export, `r` Refresh,",
        "`escape` Back, `enter` Open on every screen that has them); a test keeps it so.",
        "Dialogs keep their own keys (`y` / `n` answer a question).",
        "",
    ]
    where = ""
    for e in all_bindings(owners):
        if e.where != where:
            where = e.where
            lines += ["", f"## {where}", "", "| keys | does | id |", "| --- | --- | --- |"]
        keys = ", ".join(f"`{k.strip()}`" for k in e.keys.split(","))
        lines.append(f"| {keys} | {e.verb} | `{e.id}` |")
    shared = {k: v for k, v in sorted(key_verbs(owners).items()) if len(v) > 1}
    if shared:
        lines += [
            "",
            "## One key, different verbs on different screens",
            "",
            "Known and kept for now (each is rebindable by id); no new ones may be added.",
            "",
        ]
        lines += [f"- `{k}`: {' / '.join(sorted(v))}" for k, v in shared.items()]
    return "\n".join(lines) + "\n"
