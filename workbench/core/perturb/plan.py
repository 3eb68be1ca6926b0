"""Perturb one step of a worked solution: choose, ask, parse, validate, retry, truncate.

The program, not the model, picks which step to perturb and which error type to
inject (seeded, so a run is reproducible); the model only rewrites that step and
returns it in a ``<perturbed_step>`` block (or JSON).  Each output is checked
(``check_perturbation``) and the flags are stored on the sample; an invalid output
can be retried with the reasons fed back.  ``truncate`` then builds the prefix a
completer continues from.  Pure functions: no store, no provider.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from workbench.core.errors import InputError
from workbench.core.library import join_steps
from workbench.core.payloads import (
    PerturbExtras,
    PerturbPayload,
    PlanFields,
    TruncationFields,
    ValidationFields,
)
from workbench.core.perturb.check import (
    ANSWER_LEAKED,
    FLAGS,
    LEAKED_LABEL,
    REWROTE_OTHER_STEPS,
    TAG,
    UNCHANGED,
    UNPARSEABLE,
    UNRELATED,
    ParsedPerturbation,
    PerturbCheck,
    check_perturbation,
    parse_perturbation,
    validate_perturbation,
)
from workbench.core.perturb.taxonomy import ErrorType, load_taxonomy
from workbench.core.providers import Message, ModelRequest

Weighting = Literal["uniform", "middle"]
TruncateStrategy = Literal["after", "after_k", "random"]
TRUNCATE_STRATEGIES: tuple[TruncateStrategy, ...] = ("after", "after_k", "random")

__all__ = [  # validation lives in perturb.check and is re-exported here
    "ANSWER_LEAKED",
    "FLAGS",
    "LEAKED_LABEL",
    "REWROTE_OTHER_STEPS",
    "TAG",
    "TRUNCATE_STRATEGIES",
    "UNCHANGED",
    "UNPARSEABLE",
    "UNRELATED",
    "Attempt",
    "ParsedPerturbation",
    "PerturbCheck",
    "PerturbOutcome",
    "PerturbPlan",
    "TruncateStrategy",
    "Truncation",
    "Weighting",
    "build_prefix",
    "check_perturbation",
    "choose_error_type",
    "choose_step",
    "eligible_steps",
    "feedback_message",
    "parse_perturbation",
    "payload_for",
    "perturb_variables",
    "perturb_with_retries",
    "plan_perturbation",
    "retry_request",
    "step_weights",
    "truncate",
    "validate_perturbation",
]

# -- choosing the step and the error type ------------------------------------------


def _rng(seed: int, key: str, purpose: str) -> random.Random:
    # String seeds hash with SHA-512 inside random, so this is stable across processes
    # (unlike hash()), and each (key, purpose) gets an independent stream.
    return random.Random(f"{seed}:{key}:{purpose}")


def eligible_steps(n_steps: int, *, allow_final: bool = False) -> list[int]:
    """Indexes that may be perturbed: all but the final-answer line unless ``allow_final``."""
    if n_steps <= 0:
        return []
    if allow_final or n_steps == 1:
        return list(range(n_steps)) if allow_final else []
    return list(range(n_steps - 1))


def step_weights(indexes: Sequence[int], weighting: Weighting) -> list[float]:
    """``uniform``: equal; ``middle``: a tent peaking at the middle eligible step."""
    m = len(indexes)
    if weighting == "uniform":
        return [1.0] * m
    return [float(min(i + 1, m - i)) for i in range(m)]


def choose_step(
    n_steps: int,
    *,
    seed: int,
    key: str = "",
    weighting: Weighting = "uniform",
    allow_final: bool = False,
) -> int:
    """The 0-based step to perturb, deterministic in (seed, key)."""
    indexes = eligible_steps(n_steps, allow_final=allow_final)
    if not indexes:
        raise InputError(
            f"a solution with {n_steps} step(s) has no step to perturb "
            "(the final-answer line is excluded unless allow_final)"
        )
    weights = step_weights(indexes, weighting)
    return _rng(seed, key, "step").choices(indexes, weights=weights, k=1)[0]


def choose_error_type(
    *,
    seed: int,
    key: str = "",
    allowed: Sequence[str] = (),
    taxonomy: Sequence[ErrorType] | None = None,
) -> ErrorType:
    """An error type drawn uniformly from the taxonomy (or from the ``allowed`` ids)."""
    types = list(taxonomy if taxonomy is not None else load_taxonomy())
    if allowed:
        known = {t.id: t for t in types}
        missing = [a for a in allowed if a not in known]
        if missing:
            raise InputError(f"unknown error type '{missing[0]}' (known: {', '.join(known)})")
        types = [known[a] for a in allowed]
    return _rng(seed, key, "error-type").choice(types)


@dataclass(frozen=True)
class PerturbPlan:
    """What to perturb, decided before any model call."""

    step_index: int  # 0-based
    error_type: ErrorType

    def to_payload(self) -> PlanFields:
        return {"step_index": self.step_index, "error_type": self.error_type.id}


def plan_perturbation(
    steps: Sequence[str],
    *,
    seed: int,
    key: str,
    weighting: Weighting = "uniform",
    allow_final: bool = False,
    allowed_types: Sequence[str] = (),
    taxonomy: Sequence[ErrorType] | None = None,
) -> PerturbPlan:
    index = choose_step(
        len(steps), seed=seed, key=key, weighting=weighting, allow_final=allow_final
    )
    error = choose_error_type(seed=seed, key=key, allowed=allowed_types, taxonomy=taxonomy)
    return PerturbPlan(index, error)


def perturb_variables(question: str, steps: Sequence[str], plan: PerturbPlan) -> dict[str, Any]:
    """The variables the ``perturb`` templates receive."""
    return {
        "question": question,
        "steps": list(steps),
        "step_number": plan.step_index + 1,
        "step": steps[plan.step_index],
        "error_type": plan.error_type.name,
        "error_description": plan.error_type.description,
        "error_example": plan.error_type.example,
    }


# -- retries with feedback ----------------------------------------------------------


def feedback_message(check: PerturbCheck, step_number: int) -> str:
    """The user turn sent back after an invalid output."""
    reasons = "; ".join(check.reasons) or "the reply could not be used"
    return (
        f"That reply cannot be used: {reasons}. Reply again with only the rewritten "
        f"step {step_number} inside <{TAG}> and </{TAG}> tags, with no explanation."
    )


def retry_request(
    request: ModelRequest, previous_output: str, check: PerturbCheck, step_number: int
) -> ModelRequest:
    """``request`` extended with the invalid reply and the feedback on it."""
    turns = (
        Message("assistant", previous_output),
        Message("user", feedback_message(check, step_number)),
    )
    return replace(request, messages=(*request.messages, *turns))


def retry_after_invalid(
    request_json: str, previous_output: str, payload: Mapping[str, Any]
) -> ModelRequest:
    """The next attempt after a stored invalid perturbation.

    ``request_json`` is the stored request of the invalid attempt; the flags
    and the step index come from its sample payload.
    """
    data = json.loads(request_json)
    return retry_request(
        ModelRequest.from_json(data if isinstance(data, dict) else {}),
        previous_output,
        PerturbCheck.from_payload(payload),
        int(payload["step_index"]) + 1,
    )


@dataclass(frozen=True)
class Attempt:
    output: str
    check: PerturbCheck


@dataclass(frozen=True)
class PerturbOutcome:
    """The last check and every attempt; ``status`` is "valid" or "failed" (with ``reason``)."""

    attempts: tuple[Attempt, ...]

    @property
    def check(self) -> PerturbCheck:
        return self.attempts[-1].check

    @property
    def status(self) -> Literal["valid", "failed"]:
        return "valid" if self.check.valid else "failed"

    @property
    def reason(self) -> str | None:
        return None if self.check.valid else "; ".join(self.check.reasons)


async def perturb_with_retries(
    call: Callable[[ModelRequest], Awaitable[str]],
    request: ModelRequest,
    steps: Sequence[str],
    index: int,
    *,
    answer: str | None = None,
    max_attempts: int = 3,
) -> PerturbOutcome:
    """Ask, validate, and re-ask with feedback up to ``max_attempts`` times in total."""
    if max_attempts < 1:
        raise InputError("max_attempts must be at least 1")
    attempts: list[Attempt] = []
    current = request
    for _ in range(max_attempts):
        output = await call(current)
        check = check_perturbation(output, steps, index, answer=answer)
        attempts.append(Attempt(output, check))
        if check.valid:
            break
        current = retry_request(current, output, check, index + 1)
    return PerturbOutcome(tuple(attempts))


# -- truncation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Truncation:
    """The prefix a completer continues from: steps before, the perturbed step, ``k`` more."""

    strategy: TruncateStrategy
    k: int  # original steps kept after the perturbed one
    prefix_steps: tuple[str, ...]

    @property
    def cut(self) -> int:
        """Number of steps in the prefix."""
        return len(self.prefix_steps)

    @property
    def prefix(self) -> str:
        return build_prefix(self.prefix_steps)

    def to_payload(self) -> TruncationFields:
        return {
            "truncation": {"strategy": self.strategy, "k": self.k, "cut": self.cut},
            "truncate_at": self.cut,
            "prefix": self.prefix,
        }


def build_prefix(steps: Sequence[str]) -> str:
    """Steps joined the way solutions are stored, ending with a newline for the next step."""
    return join_steps(steps) + "\n" if steps else ""


def truncate(
    steps: Sequence[str],
    index: int,
    perturbed_step: str,
    *,
    strategy: TruncateStrategy = "after",
    k: int = 1,
    seed: int = 0,
    key: str = "",
    allow_final: bool = False,
) -> Truncation:
    """Cut after the perturbed step (``after``), after ``k`` more original steps
    (``after_k``), or after a seeded random number of them (``random``).

    Kept steps never include the final-answer line unless ``allow_final``.
    """
    if not 0 <= index < len(steps):
        raise InputError(f"step index {index} is outside a {len(steps)}-step solution")
    if strategy not in TRUNCATE_STRATEGIES:
        raise InputError(
            f"unknown truncation strategy '{strategy}' ({', '.join(TRUNCATE_STRATEGIES)})"
        )
    after = len(steps) - index - 1
    available = after if allow_final else max(0, after - 1)
    if strategy == "after":
        extra = 0
    elif strategy == "after_k":
        if k < 0:
            raise InputError("truncation k must be 0 or more")
        extra = min(k, available)
    else:
        extra = _rng(seed, key, "truncate").randint(0, available)
    kept = (*steps[:index], perturbed_step, *steps[index + 1 : index + 1 + extra])
    return Truncation(strategy, extra, tuple(kept))


def check_and_truncate(
    output: str,
    steps: Sequence[str],
    index: int,
    *,
    answer: str | None,
    strategy: TruncateStrategy,
    k: int,
    seed: int,
    key: str,
    allow_final: bool,
) -> tuple[PerturbCheck, ValidationFields]:
    """Validate a perturber's output and, when valid, truncate after the perturbed step.

    Returns the check and the payload fields to store: the check's, plus the
    truncation's (prefix, cut) when the output is valid.
    """
    check = check_perturbation(output, steps, index, answer=answer)
    checked = check.to_payload()
    fields = ValidationFields(
        perturbed_step=checked["perturbed_step"],
        flags=checked["flags"],
        flag_reasons=checked["flag_reasons"],
        valid=checked["valid"],
    )
    if check.valid and check.step is not None:
        cut = truncate(
            steps,
            index,
            check.step,
            strategy=strategy,
            k=k,
            seed=seed,
            key=key,
            allow_final=allow_final,
        )
        truncation = cut.to_payload()
        fields["truncation"] = truncation["truncation"]
        fields["truncate_at"] = truncation["truncate_at"]
        fields["prefix"] = truncation["prefix"]
    return check, fields


def payload_for(
    plan: PerturbPlan, steps: Sequence[str], extra: PerturbExtras | None = None
) -> PerturbPayload:
    """Sample payload for a perturb item: the plan and the original step."""
    payload = PerturbPayload(
        step_index=plan.step_index,
        error_type=plan.error_type.id,
        original_step=steps[plan.step_index],
        n_steps=len(steps),
    )
    return cast(PerturbPayload, payload | (extra or {}))
