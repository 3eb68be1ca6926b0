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


class BatchState(StrEnum):
    """Where a batch stands (``batches.status``), locally: the provider's own status is in
    ``meta``.  The order of operations makes each state durable before the next step."""

    PREPARING = "preparing"  # row and items committed; the provider may not have it yet
    UPLOADED = "uploaded"  # OpenAI: input file uploaded, batch not yet created
    SUBMITTED = "submitted"  # the provider (or a GPU node, for files) has it
    ENDED = "ended"  # terminal at the provider; results not all recorded yet
    INGESTED = "ingested"  # every result recorded (or its item queued again)
    REFUSED = "refused"  # never accepted (enqueued-token limit, rejected file): items queued again
    AMBIGUOUS = "ambiguous"  # recovery found several candidate batches: a person decides

    @property
    def open(self) -> bool:
        """Its items are out: a resume must not send them again."""
        return self in OPEN_BATCH_STATES


OPEN_BATCH_STATES = frozenset(
    {
        BatchState.PREPARING,
        BatchState.UPLOADED,
        BatchState.SUBMITTED,
        BatchState.ENDED,
        BatchState.AMBIGUOUS,
    }
)


class BatchItemState(StrEnum):
    """One item's place in a batch (``batch_items.state``)."""

    OUT = "out"  # in a batch whose result is not recorded yet
    DONE = "done"  # its result is recorded
    ERROR = "error"  # its error is recorded (a later attempt may go in another batch)
    REQUEUED = "requeued"  # expired, cancelled or refused: it goes out again as a new attempt
