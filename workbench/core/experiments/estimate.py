"""Pre-launch estimate of a run: planned requests, tokens and a cost range.

Input tokens are counted on the rendered requests (about four characters a
token, as the budget does).  Output tokens are bounded above by each request's
``max_tokens`` and projected from earlier calls of the same model on the same
stage (and prompt version when recorded) in the store.  A model with no price
is reported as unpriced, never as $0.  A follow-on stage sized before it has
items (``project_pending``) ranges from its input without the earlier answer it
carries (no history) to every request at ``max_tokens``; the runner hands that
range to the engine, so a run's live projection counts the stages still to come.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.engine import WorkItem
from workbench.core.engine.budget import Pricer, estimate_input_tokens
from workbench.core.experiments.kinds import KINDS
from workbench.core.providers import Usage, split_model_ref
from workbench.core.store import Store

#: earlier calls needed before their mean output length is trusted as a projection
MIN_HISTORY = 3


@dataclass(frozen=True)
class StagePlan:
    """The requests one stage will send to one model."""

    stage: str
    model_ref: str
    n_requests: int
    input_tokens: int
    max_output_tokens: int  # sum of max_tokens x n over the requests
    prompt_version: str | None = None
    # a projected stage's input without the earlier answer it carries (which may be short):
    # the floor of its cost range; None: ``input_tokens`` is known, not projected
    floor_input_tokens: int | None = None


@dataclass(frozen=True)
class StageEstimate:
    plan: StagePlan
    projected_output_tokens: int | None  # None: no history for this stage + model
    history_calls: int
    cost_low: float | None  # None: unpriced model
    cost_high: float | None

    @property
    def priced(self) -> bool:
        return self.cost_high is not None


@dataclass(frozen=True)
class Estimate:
    stages: tuple[StageEstimate, ...]
    pending_stages: tuple[str, ...] = ()  # stages whose items depend on earlier outputs

    @property
    def n_requests(self) -> int:
        return sum(s.plan.n_requests for s in self.stages)

    @property
    def input_tokens(self) -> int:
        return sum(s.plan.input_tokens for s in self.stages)

    @property
    def max_output_tokens(self) -> int:
        return sum(s.plan.max_output_tokens for s in self.stages)

    @property
    def unpriced_models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.plan.model_ref for s in self.stages if not s.priced))

    @property
    def cost_low(self) -> float | None:
        priced = [s.cost_low for s in self.stages if s.cost_low is not None]
        return sum(priced) if priced else None

    @property
    def cost_high(self) -> float | None:
        priced = [s.cost_high for s in self.stages if s.cost_high is not None]
        return sum(priced) if priced else None

    def cost_text(self) -> str:
        """``$0.12 – $0.80``, ``unpriced``, or the priced range plus the unpriced models."""
        low, high = self.cost_low, self.cost_high
        if high is None or low is None:
            return "unpriced" if self.stages else "$0.00 (nothing to send)"
        text = f"${low:,.2f} – ${high:,.2f}" if round(low, 2) != round(high, 2) else f"${high:,.2f}"
        if self.unpriced_models:
            text += f" + unpriced ({', '.join(self.unpriced_models)})"
        return text

    def summary(self) -> str:
        text = (
            f"{self.n_requests:,} requests · ~{self.input_tokens:,} tokens in · "
            f"≤ {self.max_output_tokens:,} out · {self.cost_text()}"
        )
        if self.pending_stages:
            text += f" · later stages sized at run time: {', '.join(self.pending_stages)}"
        return text


def plan_items(items: Iterable[WorkItem]) -> list[StagePlan]:
    """Group work items by (stage, model, prompt version) and count their tokens."""
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for item in items:
        version = item.payload.get("prompt_version")
        key = (item.stage, item.model_ref, None if version is None else str(version))
        acc = groups.setdefault(key, [0, 0, 0])
        acc[0] += 1
        acc[1] += estimate_input_tokens(item.request)
        acc[2] += item.request.max_tokens * max(1, item.request.n)
    return [
        StagePlan(stage, model, n, tokens_in, tokens_out, version)
        for (stage, model, version), (n, tokens_in, tokens_out) in groups.items()
    ]


def output_history(
    store: Store, model_ref: str, stage: str, prompt_version: str | None = None
) -> tuple[float | None, int]:
    """Mean output tokens per call of ``model_ref`` on ``stage`` in earlier runs, and how many."""
    provider, model = split_model_ref(model_ref)
    sql = (
        "SELECT AVG(c.output_tokens), COUNT(*) FROM calls c JOIN samples s ON s.call_id=c.id"
        " WHERE c.provider=? AND c.model=? AND c.status='ok' AND c.cache_hit=0"
        " AND c.output_tokens IS NOT NULL AND s.stage=?"
    )
    params: list[Any] = [provider, model, stage]
    if prompt_version is not None:
        sql += " AND json_extract(s.payload,'$.prompt_version')=?"
        params.append(prompt_version)
    mean, n = store.conn.execute(sql, params).fetchone()
    if not n and prompt_version is not None:  # a new version: the model's length still tells
        return output_history(store, model_ref, stage)
    return (None if mean is None else float(mean)), int(n or 0)


def estimate_plans(store: Store, prices: Pricer, plans: Sequence[StagePlan]) -> list[StageEstimate]:
    out = []
    for plan in plans:
        mean, n_hist = output_history(store, plan.model_ref, plan.stage, plan.prompt_version)
        projected = None
        if mean is not None and n_hist >= MIN_HISTORY:
            projected = min(plan.max_output_tokens, round(mean * plan.n_requests))
        high = prices.cost(plan.model_ref, Usage(plan.input_tokens, plan.max_output_tokens))
        low = None
        if high is not None:
            # without history the floor is the input alone: output may be short
            floor_in = plan.input_tokens if projected else plan.floor_input_tokens
            low = prices.cost(plan.model_ref, Usage(floor_in or plan.input_tokens, projected or 0))
        out.append(StageEstimate(plan, projected, n_hist, low, high))
    return out


def estimate_items(
    store: Store,
    prices: Pricer,
    items: Iterable[WorkItem],
    *,
    pending_stages: Sequence[str] = (),
    projected: Sequence[StagePlan] = (),
) -> Estimate:
    """The estimate for planned work items plus projected plans of later stages."""
    plans = [*plan_items(items), *projected]
    return Estimate(tuple(estimate_plans(store, prices, plans)), tuple(pending_stages))


#: later stages whose size follows from the first stage: stage -> (model field, count field)
_FOLLOW_ON = {
    "continue": ("completer", "samples"),
    "control": ("completer", "samples"),
    "check": ("checker", "check_samples"),
    "judge": ("judge", "samples"),
}


def project_pending(
    config: Any, items: Sequence[WorkItem], pending: Sequence[str]
) -> tuple[list[StagePlan], list[str]]:
    """Upper-bound plans for follow-on stages (every first-stage item yields a prefix).

    A continuation's prompt holds the first stage's prompt plus its answer, so
    its input is taken as the first stage's input plus that stage's max output.
    Stages it cannot size stay pending.
    """
    if not items:
        return [], list(pending)
    first = items[0].stage
    base = [i for i in items if i.stage == first]
    n = len(base)
    floor_in = sum(estimate_input_tokens(i.request) for i in base)
    tokens_in = floor_in + sum(i.request.max_tokens for i in base)
    plans, still_pending = [], []
    for stage in pending:
        spec = _FOLLOW_ON.get(stage)
        model = getattr(config, spec[0], None) if spec else None
        if stage == "check" and model is None:
            model = getattr(config, "perturber", None)
        count = int(getattr(config, spec[1], 1) or 1) if spec else 0
        if spec is None or not isinstance(model, str):
            still_pending.append(stage)
            continue
        max_tokens = int(getattr(config, "max_tokens", None) or 1024)
        plans.append(
            StagePlan(
                stage,
                model,
                n * count,
                tokens_in * count,
                n * count * max_tokens,
                floor_input_tokens=floor_in * count,
            )
        )
    return plans, still_pending


def plan_experiment(store: Store, config: Any) -> tuple[list[WorkItem], list[str]]:
    """Work items of every stage that can be listed before launch, and the stages that cannot.

    A later stage (e.g. continuations of perturbations) has no items until the
    earlier one has outputs; it is reported as pending instead of guessed.
    """
    cls = KINDS.get(config.kind)
    if cls is None:
        return [], []
    experiment = cls(config)
    items: list[WorkItem] = []
    pending: list[str] = []
    for stage in experiment.stages():
        try:
            stage_items = list(experiment.items(stage, store, 0))
        except Exception:  # a stage that reads earlier outputs may not cope with none
            stage_items = []
        if stage_items:
            items += stage_items
        else:
            pending.append(stage)
    return items, pending
