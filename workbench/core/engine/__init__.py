"""The run engine: work items -> model calls -> journal, with limits, retries, cache, budget.

Public face: ``Engine`` (``run_items`` / ``call``), the ``WorkItem`` contract
experiments hand it, the events listeners receive, and prices.  The modules
behind it: engine (phase 1 and controls), session (one run in progress),
records + journal (typed rows, batched commits), limiter, budget, cache,
pricing, progress (live counters), retry.
"""

from workbench.core.engine.budget import Pricer
from workbench.core.engine.cache import find_cached, request_sql, response_text_sql
from workbench.core.engine.engine import CallResult, Engine, EventListener, out_in_batches
from workbench.core.engine.events import (
    CostRange,
    Event,
    ItemFinished,
    LimitChanged,
    PoolStalled,
    ReplicaHealth,
    ReplicaStats,
    RetryScheduled,
    RunFinished,
    RunStats,
    StageFinished,
    StageProgress,
    StageStarted,
)
from workbench.core.engine.items import CallPlan, WorkItem, item_key
from workbench.core.engine.pool import PoolTiming
from workbench.core.engine.pricing import PriceTable, format_usd
from workbench.core.engine.records import AttemptOutcome, Prepared
from workbench.core.engine.retry import RetryPolicy
from workbench.core.engine.session import RunEnd, RunSession

__all__ = [
    "AttemptOutcome",
    "CallPlan",
    "CallResult",
    "CostRange",
    "Engine",
    "Event",
    "EventListener",
    "ItemFinished",
    "LimitChanged",
    "PoolStalled",
    "PoolTiming",
    "Prepared",
    "PriceTable",
    "Pricer",
    "ReplicaHealth",
    "ReplicaStats",
    "RetryPolicy",
    "RetryScheduled",
    "RunEnd",
    "RunFinished",
    "RunSession",
    "RunStats",
    "StageFinished",
    "StageProgress",
    "StageStarted",
    "WorkItem",
    "find_cached",
    "format_usd",
    "item_key",
    "out_in_batches",
    "request_sql",
    "response_text_sql",
]
