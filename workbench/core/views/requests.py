"""The exact request behind a sample: messages or raw prefix, parameters, continuation method.

Read from the call's stored request JSON (what was hashed for the cache key) and
``sent_params`` (what the adapter actually sent, e.g. where temperature went), through
the one redactor, so a key that reached a prompt never reaches the screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.redact import Redactor
from workbench.core.store import Store

#: request fields shown as parameters, in this order (the rest are the text sent)
PARAMETERS = ("temperature", "top_p", "max_tokens", "stop", "n", "seed")


@dataclass(frozen=True)
class SentMessage:
    role: str
    content: str


@dataclass(frozen=True)
class SentRequest:
    """One call's request as sent, redacted."""

    call_id: int
    sample_id: int | None
    provider: str
    model: str
    continuation: str | None  # the method used (raw / prefill / emulate), from the call
    system: str | None
    messages: tuple[SentMessage, ...]
    prompt: str | None  # raw text for completion-style requests
    prefix: str | None  # the partial answer the model continues
    parameters: tuple[tuple[str, str], ...]  # name -> value as text, set ones only
    sent_params: tuple[tuple[str, str], ...]  # what the adapter sent, as it reported
    tools: tuple[str, ...]
    attempts: int
    status: str
    error: str | None

    @property
    def raw(self) -> bool:
        """Whether the request was raw text (a prefix continued) rather than chat messages."""
        return self.prompt is not None and not self.messages

    def as_text(self) -> str:
        """Plain text for the clipboard and the request dialog."""
        lines = [
            f"call {self.call_id} · {self.provider}:{self.model} · "
            f"continuation {self.continuation or '-'} · attempts {self.attempts} · {self.status}"
        ]
        if self.parameters:
            lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in self.parameters))
        if self.sent_params:
            lines.append("sent: " + ", ".join(f"{k}={v}" for k, v in self.sent_params))
        if self.tools:
            lines.append("tools: " + ", ".join(self.tools))
        if self.system:
            lines += ["", "[system]", self.system]
        for m in self.messages:
            lines += ["", f"[{m.role}]", m.content]
        if self.prompt is not None:
            lines += ["", "[raw prompt]", self.prompt]
        if self.prefix:
            lines += ["", "[prefix continued]", self.prefix]
        if self.error:
            lines += ["", f"error: {self.error}"]
        return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return str(value)


def load_request(
    store: Store, call_id: int, *, redactor: Redactor | None = None
) -> SentRequest | None:
    """The request of call ``call_id`` (None when there is no such call)."""
    row = store.query_one(
        "SELECT c.id, c.provider, c.model, c.continuation, c.request, c.sent_params,"
        " c.attempts, c.status, c.error,"
        " (SELECT s.id FROM samples s WHERE s.call_id=c.id ORDER BY s.id LIMIT 1) AS sample_id"
        " FROM calls c WHERE c.id=?",
        (call_id,),
    )
    if row is None:
        return None
    red = redactor or Redactor.from_env()
    request = red.stored_json(row["request"], {})
    request = request if isinstance(request, dict) else {}
    sent = red.stored_json(row["sent_params"], {})
    sent = sent if isinstance(sent, dict) else {}
    messages = tuple(
        SentMessage(str(m.get("role", "?")), str(m.get("content", "")))
        for m in request.get("messages") or ()
        if isinstance(m, dict)
    )
    parameters = tuple(
        (name, _text(request[name]))
        for name in PARAMETERS
        if request.get(name) not in (None, [], ())
    )
    extra = request.get("extra")
    if isinstance(extra, dict):
        parameters += tuple((str(k), _text(v)) for k, v in sorted(extra.items()))
    tools = tuple(str(t.get("name")) for t in request.get("tools") or () if isinstance(t, dict))
    return SentRequest(
        call_id=int(row["id"]),
        sample_id=row["sample_id"],
        provider=str(row["provider"]),
        model=str(request.get("model") or row["model"]),
        continuation=row["continuation"] or request.get("continuation"),
        system=request.get("system"),
        messages=messages,
        prompt=request.get("prompt"),
        prefix=request.get("prefix"),
        parameters=parameters,
        sent_params=tuple((str(k), _text(v)) for k, v in sorted(sent.items())),
        tools=tools,
        attempts=int(row["attempts"] or 0),
        status=str(row["status"]),
        error=red.text(row["error"]) if row["error"] else None,
    )
