"""Two prompt versions side by side: what changed in the text, and the model each was tried
with (the newest playground run of each), so a difference in results is read against both."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from workbench.core.experiments.playground import KIND as PREVIEW_KIND
from workbench.core.prompts.versions import get_version, versions
from workbench.core.store import Store, loads

LineOp = Literal["same", "removed", "added", "gap"]


@dataclass(frozen=True)
class DiffLine:
    op: LineOp
    text: str


@dataclass(frozen=True)
class VersionSide:
    version_id: int
    name: str
    number: int  # within its prompt: 1 is the first version
    model: str | None  # the model of the newest playground run of this version
    run_id: int | None

    @property
    def title(self) -> str:
        return f"{self.name} v{self.number} (@{self.version_id})"

    @property
    def tried(self) -> str:
        if self.model is None:
            return "not tried yet"
        return f"tried with {self.model} (run {self.run_id})"


@dataclass(frozen=True)
class PromptDiff:
    a: VersionSide
    b: VersionSide
    lines: tuple[DiffLine, ...]  # changed lines with one line of context; empty: same text


def _side(store: Store, version_id: int) -> VersionSide:
    version = get_version(store, version_id)
    numbers = {v.id: n for n, v in enumerate(versions(store, version.name), start=1)}
    row = store.query_one(
        "SELECT r.id, r.config FROM runs r WHERE r.kind=? AND EXISTS (SELECT 1 FROM samples s"
        " WHERE s.run_id=r.id AND json_extract(s.payload,'$.prompt_version_id')=?)"
        " ORDER BY r.id DESC LIMIT 1",
        (PREVIEW_KIND, version_id),
    )
    config = loads(row["config"], {}) if row is not None else {}
    model = config.get("model") if isinstance(config, dict) else None
    return VersionSide(
        version_id=version_id,
        name=version.name,
        number=numbers.get(version_id, 0),
        model=str(model) if model else None,
        run_id=int(row["id"]) if row is not None else None,
    )


def diff_lines(old: str, new: str, *, context: int = 1) -> tuple[DiffLine, ...]:
    """The lines that differ, with ``context`` lines around each change."""
    out: list[DiffLine] = []
    groups = difflib.SequenceMatcher(
        None, old.splitlines(), new.splitlines(), autojunk=False
    ).get_grouped_opcodes(context)
    a, b = old.splitlines(), new.splitlines()
    for i, group in enumerate(groups):
        if i:
            out.append(DiffLine("gap", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [DiffLine("same", line) for line in a[i1:i2]]
                continue
            if tag in ("delete", "replace"):
                out += [DiffLine("removed", line) for line in a[i1:i2]]
            if tag in ("insert", "replace"):
                out += [DiffLine("added", line) for line in b[j1:j2]]
    return tuple(out)


def prompt_diff(store: Store, a_id: int, b_id: int) -> PromptDiff:
    """Version ``a_id`` against ``b_id``: the text change and the model each was tried with."""
    a_body, b_body = get_version(store, a_id).body, get_version(store, b_id).body
    return PromptDiff(_side(store, a_id), _side(store, b_id), diff_lines(a_body, b_body))
