"""Every call a run will make, read from its config, so the engine can check them first.

Later stages (continuations, checks, judges) have no work items until earlier
stages have stored outputs, so their models cannot be checked from items.  Each
config names its models in a few conventional fields; this module turns those
into ``CallPlan``s, one per (role, model, continuation), for ``Engine.preflight``.
"""

from __future__ import annotations

from workbench.core.engine import CallPlan
from workbench.core.experiments.base import ExperimentConfig
from workbench.core.providers import Continuation

#: config fields that name a model sending plain requests (no prefix), and its role
_PLAIN_FIELDS = {
    "solver": "solver",
    "solvers": "solver",
    "perturber": "perturber",
    "selector": "selector",
    "judge": "judge",
    "critic": "critic",
    "model": "model",
}


def _refs(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, str)]
    return []


def call_plans(config: ExperimentConfig) -> list[CallPlan]:
    """The calls ``config``'s stages will make: plain ones, then continuations from a prefix."""
    plans: list[CallPlan] = []
    for field, role in _PLAIN_FIELDS.items():
        for ref in _refs(getattr(config, field, None)):
            plans.append(CallPlan(role, ref))
    choice = getattr(config, "continuation", None)
    continuation = None if choice in (None, "auto") else Continuation(choice)
    completer = getattr(config, "completer", None)
    if isinstance(completer, str):
        plans.append(CallPlan("completer", completer, prefix=True, continuation=continuation))
    if getattr(config, "check_too_easy", False):  # the too-easy check continues the same way
        checker = getattr(config, "checker", None) or getattr(config, "perturber", None)
        if isinstance(checker, str):
            plans.append(CallPlan("checker", checker, prefix=True, continuation=continuation))
    return list(dict.fromkeys(plans))
