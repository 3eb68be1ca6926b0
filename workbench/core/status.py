"""Statuses stored in the workspace: one vocabulary for runs, calls and samples."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands (``runs.status``)."""

    PENDING = "pending"  # created, not started
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET = "stopped: budget"  # the budget cap stopped it; raise the cap and resume
    # shown, never stored: marked running, but its executor's heartbeat stopped (killed,
    # crashed, machine lost); resume it
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        """Not finished: something may still run (or resume) it."""
        return self in ACTIVE_RUN_STATUSES

    @property
    def stopped_early(self) -> bool:
        """Ended before every item finished, on purpose (cancel or budget)."""
        return self in (RunStatus.CANCELLED, RunStatus.BUDGET)


ACTIVE_RUN_STATUSES = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED})


class CallStatus(StrEnum):
    """The outcome of one request (``calls.status``)."""

    OK = "ok"
    ERROR = "error"


class SampleStatus(StrEnum):
    """The outcome of one work item (``samples.status``)."""

    DONE = "done"
    ERROR = "error"
    INVALID = "invalid"  # output failed validation (e.g. a perturbation that did not check out)
    SKIPPED = "skipped"  # set aside before running (e.g. a trace too short to cut)


SET_ASIDE_SAMPLE_STATUSES = frozenset({SampleStatus.INVALID, SampleStatus.SKIPPED})
