"""The one redactor: API keys never reach the database, exports, logs or the screen.

Engine (stored error text), provider adapters (error messages that echo a key)
and exports all use it, so a key one path catches cannot leak through another.
A secret is any value of an environment variable whose name says it holds one
(``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``), any extra value a caller
knows is a key (an adapter's own key), and anything shaped like a provider key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"

#: environment variables whose values are secrets
SECRET_ENV_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.I)
#: mapping keys whose values are dropped from exported records
SECRET_FIELD_NAME = re.compile(
    r"api[_-]?key|authori[sz]ation|^headers?$|token$|secret|password", re.I
)
#: provider keys recognisable by their shape, wherever they came from
KEY_SHAPE = re.compile(r"\b(?:(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{16,})")

MIN_ENV_SECRET = 8  # shorter values (e.g. "1", "true") are settings, not keys
MIN_EXTRA_SECRET = 4


def env_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of secret-named environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= MIN_ENV_SECRET}
    return tuple(sorted(values, key=len, reverse=True))


@dataclass(frozen=True)
class Redactor:
    """Replaces known secrets and key-shaped strings with ``[redacted]``."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, extra: Iterable[str | None] = (), environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """The environment's secrets plus ``extra`` (e.g. the key an adapter holds)."""
        values = set(env_secrets(environ))
        values.update(s for s in extra if s and len(s) >= MIN_EXTRA_SECRET)
        return cls(tuple(sorted(values, key=len, reverse=True)))

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return KEY_SHAPE.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """A copy of ``value`` with secret-named keys dropped and every string redacted."""
        if isinstance(value, Mapping):
            return {
                str(k): self.value(v)
                for k, v in value.items()
                if not SECRET_FIELD_NAME.search(str(k))
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def redact_text(text: str, *extra: str | None) -> str:
    """``text`` with the environment's secrets (and ``extra`` ones) redacted."""
    return Redactor.from_env(extra).text(text)
