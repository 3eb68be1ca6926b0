"""Prompt versions in the store: immutable, content-hashed, with lineage.

Every save is a new ``prompt_versions`` row (or the existing one when the same
text was saved before), so a run that references a version id can always
show the exact text it used.  Import/export moves the latest version of each
prompt to and from ``NAME.md.j2`` files so prompts can live in git too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import InputError, StoreError
from workbench.core.prompts.templates import (
    TEMPLATE_SUFFIX,
    PromptTemplate,
    default_source,
    list_defaults,
    parse_template,
)
from workbench.core.store import Store, now_iso


@dataclass(frozen=True)
class PromptInfo:
    """One prompt and its newest version."""

    id: int
    name: str
    purpose: str
    n_versions: int
    latest_id: int
    latest_at: str


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version.  ``body`` is the whole file text, front matter included."""

    id: int
    name: str
    purpose: str
    content_hash: str
    parent_id: int | None
    body: str
    note: str
    created_at: str

    @property
    def template(self) -> PromptTemplate:
        return parse_template(self.body, origin=f"{self.name} v{self.id}")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.id}"


def content_hash(body: str) -> str:
    """SHA-256 of the text with line endings normalised, so CRLF checkouts match."""
    normalised = body.replace("\r\n", "\n").rstrip() + "\n"
    return hashlib.sha256(normalised.encode()).hexdigest()


def save_version(
    store: Store, name: str, body: str, *, note: str = "", parent_id: int | None = None
) -> int:
    """Record ``body`` as a version of prompt ``name``; the same text returns the old id.

    The text must parse (front matter and Jinja), and its front-matter name must be
    ``name``.  ``parent_id`` defaults to the prompt's newest version.
    """
    template = parse_template(body, origin=name)
    if template.name != name:
        raise InputError(f"{name}: front matter says name = '{template.name}'; they must match")
    digest = content_hash(body)
    with store.transaction():
        row = store.query_one("SELECT id FROM prompts WHERE name=?", (name,))
        if row is None:
            prompt_id = store.insert(
                "prompts", {"name": name, "purpose": template.purpose, "created_at": now_iso()}
            )
        else:
            prompt_id = int(row["id"])
            store.update("prompts", prompt_id, {"purpose": template.purpose})
        existing = store.scalar(
            "SELECT id FROM prompt_versions WHERE prompt_id=? AND content_hash=?",
            (prompt_id, digest),
        )
        if existing is not None:
            return int(existing)
        if parent_id is None:
            parent_id = store.scalar(
                "SELECT MAX(id) FROM prompt_versions WHERE prompt_id=?", (prompt_id,)
            )
        elif store.scalar("SELECT 1 FROM prompt_versions WHERE id=?", (parent_id,)) is None:
            raise StoreError(f"{name}: parent version {parent_id} does not exist")
        return store.insert(
            "prompt_versions",
            {
                "prompt_id": prompt_id,
                "content_hash": digest,
                "parent_id": parent_id,
                "body": body.replace("\r\n", "\n"),
                "note": note,
                "created_at": now_iso(),
            },
        )


_VERSION_SQL = """
    SELECT v.id, p.name, p.purpose, v.content_hash, v.parent_id, v.body, v.note, v.created_at
    FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
"""


def list_prompts(store: Store) -> list[PromptInfo]:
    rows = store.query(
        """
        SELECT p.id, p.name, p.purpose, COUNT(v.id) AS n, MAX(v.id) AS latest_id,
               MAX(v.created_at) AS latest_at
        FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id
        GROUP BY p.id ORDER BY p.name
        """
    )
    return [
        PromptInfo(r["id"], r["name"], r["purpose"], r["n"], r["latest_id"], r["latest_at"])
        for r in rows
    ]


def versions(store: Store, name: str) -> list[PromptVersion]:
    """Versions of ``name``, oldest first."""
    rows = store.query(_VERSION_SQL + " WHERE p.name=? ORDER BY v.id", (name,))
    return [PromptVersion(**r) for r in rows]


def get_version(store: Store, version_id: int) -> PromptVersion:
    row = store.query_one(_VERSION_SQL + " WHERE v.id=?", (version_id,))
    if row is None:
        raise StoreError(f"no prompt version with id {version_id}")
    return PromptVersion(**row)


def latest_version(store: Store, name: str) -> PromptVersion | None:
    found = versions(store, name)
    return found[-1] if found else None


# Version pins of the run being executed (see ``pinned_versions``); None outside a run.
_PINS: ContextVar[Mapping[str, int] | None] = ContextVar("prompt_pins", default=None)


@contextmanager
def pinned_versions(pins: Mapping[str, int]) -> Iterator[None]:
    """Within the block, a bare prompt name resolves as it did when the pins were taken.

    ``pins`` maps names to version ids (a run's ``prompt_pins``).  A bundled default
    missing from the pins was not in the store then, so it resolves to the bundled text
    rather than to a version saved later.
    """
    token = _PINS.set(dict(pins))
    try:
        yield
    finally:
        _PINS.reset(token)


def current_pins(store: Store) -> dict[str, int]:
    """The newest version id of every prompt in the store: what a new run pins."""
    return {info.name: info.latest_id for info in list_prompts(store)}


def resolve_version(store: Store, ref: str | int) -> PromptVersion:
    """A version from ``12``, ``"12"``, ``"name@12"`` or ``"name"`` (its newest version).

    A bundled default named but not yet in the store is seeded first, so configs can
    say ``prompt = "perturb-step"`` in a fresh workspace.  Inside ``pinned_versions``
    a bare name resolves to its pinned version.
    """
    text = str(ref).strip()
    if text.isdigit():
        return get_version(store, int(text))
    name, _, vid = text.partition("@")
    if vid:
        if not vid.isdigit():
            raise InputError(f"prompt reference '{text}': expected name@VERSION_ID")
        version = get_version(store, int(vid))
        if version.name != name:
            raise InputError(
                f"prompt reference '{text}': version {vid} belongs to '{version.name}'"
            )
        return version
    pins = _PINS.get()
    if pins is not None:
        if name in pins:
            return get_version(store, pins[name])
        if name in list_defaults():
            return get_version(
                store, save_version(store, name, default_source(name), note="default")
            )
    latest = latest_version(store, name)
    if latest is None and name in list_defaults():
        return get_version(store, save_version(store, name, default_source(name), note="default"))
    if latest is None:
        raise InputError(f"no prompt named '{name}'")
    return latest


def count_versions(store: Store) -> int:
    """Prompt versions in the workspace, every prompt together."""
    return int(store.scalar("SELECT COUNT(*) FROM prompt_versions") or 0)


def seed_defaults(store: Store) -> list[int]:
    """Make sure every bundled template is in the store; returns their version ids.

    Idempotent: an unchanged default is not saved twice.  A default that changed in a
    newer workbench becomes a new version whose parent is the prompt's newest version.
    """
    return [
        save_version(store, name, default_source(name), note="default") for name in list_defaults()
    ]


def export_prompts(
    store: Store, directory: str | Path, names: Iterable[str] | None = None
) -> list[Path]:
    """Write the newest version of each prompt (or of ``names``) to ``DIR/NAME.md.j2``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    wanted = list(names) if names is not None else [p.name for p in list_prompts(store)]
    written = []
    for name in wanted:
        latest = latest_version(store, name)
        if latest is None:
            raise InputError(f"no prompt named '{name}'")
        path = out / f"{name}{TEMPLATE_SUFFIX}"
        text = latest.body if latest.body.endswith("\n") else latest.body + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def import_prompts(store: Store, path: str | Path, *, note: str = "") -> list[int]:
    """Save each ``*.md.j2`` file under ``path`` (a file or a directory) as a version.

    Every file is parsed before any is saved, so one bad file imports nothing.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob(f"*{TEMPLATE_SUFFIX}"))
        if not files:
            raise InputError(f"{p}: no *{TEMPLATE_SUFFIX} files")
    elif p.is_file():
        files = [p]
    else:
        raise InputError(f"{p}: no such file or directory")
    parsed = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{f}: cannot read ({exc})") from None
        parsed.append((parse_template(text, origin=str(f)), text, f))
    with store.transaction():
        return [
            save_version(store, t.name, text, note=note or f"imported from {f.name}")
            for t, text, f in parsed
        ]
