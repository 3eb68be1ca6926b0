"""The Prompts screen's side list: each prompt with its versions, newest first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.widgets import Tree

from workbench.core.prompts.versions import PromptInfo, PromptVersion


@dataclass(frozen=True)
class PromptEntry:
    """One prompt, its versions (oldest first) and each version's Try pass rate."""

    info: PromptInfo
    versions: Sequence[PromptVersion]
    rates: Mapping[int, tuple[int, int]]  # version id -> (valid, total)


def version_label(version: PromptVersion, rates: Mapping[int, tuple[int, int]]) -> str:
    """E.g. ``v12 06-01 14:03 67% · shorter system turn``."""
    label = f"v{version.id} {version.created_at[5:16].replace('T', ' ')}"
    if version.id in rates:
        ok, total = rates[version.id]
        label += f" {100 * ok / total:.0f}%"
    if version.note:
        label += f" · {version.note}"
    return label


class PromptTree(Tree[tuple[str, Any]]):
    """Node data: ("prompt", name) or ("version", version id)."""

    def show(self, entries: Iterable[PromptEntry]) -> None:
        self.clear()
        self.root.expand()
        self.show_root = False
        for entry in entries:
            node = self.root.add(
                f"{entry.info.name} [{entry.info.purpose}]",
                data=("prompt", entry.info.name),
                expand=True,
            )
            for version in reversed(entry.versions):
                node.add_leaf(version_label(version, entry.rates), data=("version", version.id))
