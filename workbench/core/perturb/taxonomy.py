"""The error taxonomy used to perturb steps (``workbench/data/prompts/taxonomy.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from workbench.core.errors import InputError


@dataclass(frozen=True)
class ErrorType:
    id: str  # stable, stored on samples and used in configs
    name: str  # given to the perturb prompt
    description: str
    example: str


def parse_taxonomy(text: str, origin: str = "taxonomy.toml") -> tuple[ErrorType, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{origin}: invalid TOML: {exc}") from None
    entries = data.get("error")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{origin}: expected one or more [[error]] tables")
    types: list[ErrorType] = []
    for i, entry in enumerate(entries, start=1):
        fields = {}
        for key in ("id", "name", "description", "example"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{origin}: error #{i}: '{key}' must be a non-empty string")
            fields[key] = value.strip()
        extra = sorted(set(entry) - set(fields))
        if extra:
            raise InputError(f"{origin}: error #{i}: unknown key '{extra[0]}'")
        types.append(ErrorType(**fields))
    ids = [t.id for t in types]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InputError(f"{origin}: duplicate error id '{dupes[0]}'")
    return tuple(types)


@cache
def _bundled() -> tuple[ErrorType, ...]:
    text = (resources.files("workbench") / "data" / "prompts" / "taxonomy.toml").read_text(
        encoding="utf-8"
    )
    return parse_taxonomy(text)


def load_taxonomy(path: str | Path | None = None) -> tuple[ErrorType, ...]:
    """The bundled taxonomy, or the one in ``path``."""
    if path is None:
        return _bundled()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_taxonomy(text, str(p))


def get_error_type(type_id: str, taxonomy: tuple[ErrorType, ...] | None = None) -> ErrorType:
    types = taxonomy if taxonomy is not None else load_taxonomy()
    for t in types:
        if t.id == type_id or t.name == type_id:
            return t
    raise InputError(f"unknown error type '{type_id}' (known: {', '.join(t.id for t in types)})")
