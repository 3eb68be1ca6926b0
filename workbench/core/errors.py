"""Error types.  Every message is one line that names the problem (file, row, field)."""

from __future__ import annotations

from enum import StrEnum


class WorkbenchError(Exception):
    """Base for errors shown to the user as a single line."""


class ConfigError(WorkbenchError):
    """Invalid configuration, or a missing key / unsupported combination found before any spend."""


class StoreError(WorkbenchError):
    """The workspace database cannot be opened or queried as asked."""


class RunBusyError(StoreError):
    """Another live executor holds the run's lease: a second one would pay its items twice."""


class InputError(WorkbenchError):
    """Bad input data (dataset file, prompt template, ...)."""


class ErrorKind(StrEnum):
    """Why a model call failed; decides retry policy and shows in the live monitor."""

    RATE_LIMIT = "rate_limit"  # 429
    SERVER = "server"  # 5xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # dropped / refused connection
    MALFORMED = "malformed"  # 200 with an unparseable body
    BAD_REQUEST = "bad_request"  # 400, 422
    AUTH = "auth"  # 401, 403
    NOT_FOUND = "not_found"  # 404
    REFUSAL = "refusal"  # the model declined (content filter / refusal stop reason)
    BUDGET = "budget"  # not sent: budget cap
    CANCELLED = "cancelled"
    OTHER = "other"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = {
    ErrorKind.RATE_LIMIT,
    ErrorKind.SERVER,
    ErrorKind.TIMEOUT,
    ErrorKind.CONNECTION,
    ErrorKind.MALFORMED,
}


class ProviderError(WorkbenchError):
    """A failed model request, classified so the engine can decide what to do."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        return f"{self.kind.value}{status}: {self.args[0]}"
