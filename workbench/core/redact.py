"""The one redactor: API keys never reach the database, exports, logs or the screen.

Engine (stored error text), provider adapters (error messages that echo a key)
and exports all use it, so a key one path catches cannot leak through another.
A secret is any value of an environment variable whose name says it holds one
(``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``), any extra value a caller
knows is a key (an adapter's own key), and anything shaped like a provider key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

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
#: short strings repeat across an export's rows (stages, models, statuses): each distinct one
#: is redacted once per redactor; longer ones are rarely repeated and not kept
MEMO_MAX_CHARS = 64
MEMO_MAX_ENTRIES = 10_000


#: a cheap test for text that may hold a secret-named key (a superset of SECRET_FIELD_NAME)
MAYBE_SECRET_FIELD = re.compile(r"api[_-]?key|authori[sz]ation|header|token|secret|password", re.I)


@lru_cache(maxsize=4096)
def secret_field(name: str) -> bool:
    """True when a mapping key names a secret (its value is dropped from exports)."""
    return SECRET_FIELD_NAME.search(name) is not None


def env_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of secret-named environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= MIN_ENV_SECRET}
    return tuple(sorted(values, key=len, reverse=True))


@dataclass(frozen=True)
class Redactor:
    """Replaces known secrets and key-shaped strings with ``[redacted]``."""

    secrets: tuple[str, ...] = ()
    _memo: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(
        cls, extra: Iterable[str | None] = (), environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """The environment's secrets plus ``extra`` (e.g. the key an adapter holds)."""
        values = set(env_secrets(environ))
        values.update(s for s in extra if s and len(s) >= MIN_EXTRA_SECRET)
        # as JSON text spells them too (either way of writing non-ASCII), so stored JSON can
        # be redacted before it is parsed
        values.update(
            [json.dumps(v, ensure_ascii=ascii)[1:-1] for v in values for ascii in (True, False)]
        )
        return cls(tuple(sorted(values, key=len, reverse=True)))

    def is_clean(self, text: str) -> bool:
        """True when ``text`` holds nothing to redact (a few substring tests, no regex)."""
        if "k-" in text or "hf_" in text:  # every KEY_SHAPE match holds one of these
            return False
        return not any(secret in text for secret in self.secrets)

    def text(self, text: str) -> str:
        short = len(text) <= MEMO_MAX_CHARS
        if short and (done := self._memo.get(text)) is not None:
            return done
        redacted = text
        for secret in self.secrets:
            if secret in redacted:
                redacted = redacted.replace(secret, REDACTED)
        if "k-" in redacted or "hf_" in redacted:  # every KEY_SHAPE match holds one of these
            redacted = KEY_SHAPE.sub(REDACTED, redacted)
        if short and len(self._memo) < MEMO_MAX_ENTRIES:
            self._memo[text] = redacted
        return redacted

    def stored_json(self, raw: str | None, default: Any, *, clean: bool = False) -> Any:
        """Stored JSON text parsed, with its secrets redacted and secret-named keys dropped.

        The text is redacted before parsing (one pass over one string, not one per value);
        only text that may hold a secret-named key is walked for keys.  ``clean``: the
        caller has seen that ``raw`` holds nothing to redact (``is_clean``).
        """
        if not raw:
            return default
        text = raw if clean else self.text(raw)
        try:  # orjson: a million payloads in an export, parsing is a large share of it
            parsed = orjson.loads(text)
        except ValueError:
            try:  # NaN / Infinity, which Python's json writes and orjson refuses
                parsed = json.loads(text)
            except ValueError:  # not JSON, or a secret replaced across its syntax
                try:
                    return self.value(json.loads(raw))
                except ValueError:
                    return default
        return self.value(parsed) if MAYBE_SECRET_FIELD.search(text) else parsed

    def value(self, value: Any) -> Any:
        """A copy of ``value`` with secret-named keys dropped and every string redacted."""
        # exact type checks first: an export calls this for every value of every row, and
        # the ABC isinstance checks below cost more than the redaction itself
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if kind is dict or isinstance(value, Mapping):
            return {
                key: self.value(v)
                for k, v in value.items()
                if not secret_field(key := k if type(k) is str else str(k))
            }
        if kind is list or isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def redact_text(text: str, *extra: str | None) -> str:
    """``text`` with the environment's secrets (and ``extra`` ones) redacted."""
    return Redactor.from_env(extra).text(text)
