"""Work items: the contract between experiments and the engine.

An experiment turns a stage into ``WorkItem``s with stable keys; the engine
sends the ones whose key has no finished sample yet, and records for each a
``calls`` row (every outcome) and a ``samples`` row (what the item produced)
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core.providers import Continuation, ModelRequest


def item_key(stage: str, problem_id: str | None, sample_index: int = 0, *extra: object) -> str:
    """A stable, readable key: ``stage/problem/sample[/extra...]``."""
    parts = [stage, problem_id or "-", str(sample_index), *(str(e) for e in extra)]
    return "/".join(parts)


@dataclass(frozen=True)
class WorkItem:
    """One model request an experiment needs, and where its result goes."""

    key: str  # unique within a run; resume = items whose key has no finished sample
    stage: str
    role: str  # solver / perturber / completer / judge / selector / ...
    model_ref: str  # "provider:model", e.g. "anthropic:claude-sonnet-4-5"
    request: ModelRequest
    problem_id: str | None = None
    sample_index: int = 0
    parent_id: int | None = None  # the sample this item derives from
    payload: Mapping[str, Any] = field(default_factory=dict)  # stored on the sample


@dataclass(frozen=True)
class CallPlan:
    """A kind of call a run will make at some stage, known from its config before any spend.

    Later stages have no items until earlier ones are stored; their plans let the
    engine check models, providers, keys, continuation methods and prices up front.
    """

    role: str  # solver / perturber / checker / completer / judge / ...
    model_ref: str
    prefix: bool = False  # continues from a partial answer
    continuation: Continuation | None = None  # the method asked for (None: the adapter's best)
