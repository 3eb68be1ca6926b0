"""The Prompts screen's side list: each prompt with its versions, newest first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import Tree

from workbench.core.prompts.versions import PromptInfo, PromptVersion


@dataclass(frozen=True)
class PromptEntry:
    """One prompt, its versions (oldest first) and each version's Try pass rate."""

    info: PromptInfo
    versions: Sequence[PromptVersion]
    rates: Mapping[int, tuple[int, int]]  # version id -> (valid, total)


def version_numbers(found: Sequence[PromptVersion]) -> dict[int, int]:
    """Version id -> its number within its prompt (1 = the first), oldest first."""
    return {v.id: n for n, v in enumerate(found, start=1)}


def version_name(version: PromptVersion, number: int | None) -> str:
    """E.g. ``perturb-step v3 (@13)``: the per-prompt number, and the id runs pin."""
    return f"{version.name} v{number} (@{version.id})" if number else version.label


def version_label(
    version: PromptVersion, rates: Mapping[int, tuple[int, int]], number: int | None = None
) -> Text:
    """E.g. ``v3 @13 06-01 14:03 67% · shorter system turn`` (plain text: notes are the
    user's and may hold brackets)."""
    label = f"v{number} @{version.id}" if number else f"@{version.id}"
    label += f" {version.created_at[5:16].replace('T', ' ')}"
    if version.id in rates:
        ok, total = rates[version.id]
        label += f" {100 * ok / total:.0f}%"
    if version.note:
        label += f" · {version.note}"
    return Text(label)


class PromptTree(Tree[tuple[str, Any]]):
    """Node data: ("prompt", name) or ("version", version id)."""

    def show(self, entries: Iterable[PromptEntry]) -> None:
        self.clear()
        self.root.expand()
        self.show_root = False
        for entry in entries:
            numbers = version_numbers(entry.versions)
            node = self.root.add(
                Text(f"{entry.info.name} [{entry.info.purpose}]"),
                data=("prompt", entry.info.name),
                expand=True,
            )
            for version in reversed(entry.versions):
                node.add_leaf(
                    version_label(version, entry.rates, numbers.get(version.id)),
                    data=("version", version.id),
                )
