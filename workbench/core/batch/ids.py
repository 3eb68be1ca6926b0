"""Batch custom ids: short, provider-safe, and mapped back through ``batch_items``.

Item keys contain ``/`` and can be long; providers accept short ids only
(Anthropic ``^[a-zA-Z0-9_-]{1,64}$``, OpenAI up to 64 characters).  The id
hashes (run, item key, attempt), so the same item sent in a later batch gets a
new id and a result can never be matched to the wrong attempt.
"""

from __future__ import annotations

import base64
import hashlib
import re

#: what every provider accepts; ours are 32 characters of it
CUSTOM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def custom_id(run_id: int, item_key: str, attempt: int) -> str:
    """``"wb" + base32(sha256(run_id, item_key, attempt))[:30]``."""
    digest = hashlib.sha256(f"{run_id}\x00{item_key}\x00{attempt}".encode()).digest()
    return "wb" + base64.b32encode(digest).decode("ascii")[:30]
