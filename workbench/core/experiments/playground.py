"""``perturb-preview``: one perturb prompt version, one model, N problems.

The prompt playground runs this experiment, so its calls get the cache, costs
and journal of any run, and its results stay in the store for comparing
versions later.  Stages: ``perturb``, then ``retry-1`` .. ``retry-(max_attempts-1)``
for outputs that failed validation, each re-asking with the reasons fed back.
Validation flags, the perturbed step and the truncated prefix go on the sample's
payload; an invalid sample gets status ``invalid``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field

from workbench.core.engine import WorkItem, item_key, request_sql
from workbench.core.errors import InputError
from workbench.core.experiments.base import Experiment, ExperimentConfig
from workbench.core.library.problems import find_problem, select_problems
from workbench.core.perturb.plan import (
    TruncateStrategy,
    check_and_truncate,
    payload_for,
    perturb_variables,
    plan_perturbation,
    retry_after_invalid,
)
from workbench.core.prompts import resolve_version
from workbench.core.providers import split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store, dumps, loads, now_iso

KIND = "perturb-preview"
FIRST_STAGE = "perturb"


class PerturbPreviewConfig(ExperimentConfig):
    kind: Literal["perturb-preview"] = "perturb-preview"
    prompt: str = "perturb-step"  # a version ref: name (newest), name@ID or ID
    model: str = "local:gemma-3-270m"
    weighting: Literal["uniform", "middle"] = "uniform"
    allow_final: bool = False
    error_types: tuple[str, ...] = ()  # taxonomy ids to draw from; empty = all
    # perturb this step (1-based; the last perturbable one when a problem is shorter);
    # None: chosen by the seed
    step: int | None = Field(default=None, ge=1)
    max_attempts: int = Field(default=2, ge=1, le=5)
    truncation: Literal["after", "after_k", "random"] = "after"
    truncation_k: int = Field(default=1, ge=0)
    temperature: float | None = None  # None = the template's default
    max_tokens: int | None = Field(default=None, ge=1)


def retry_stage(attempt: int) -> str:
    """Stage name for the ``attempt``-th try (1 = the first)."""
    return FIRST_STAGE if attempt == 1 else f"retry-{attempt - 1}"


class PerturbPreview(Experiment):
    kind = KIND
    config_model = PerturbPreviewConfig

    def __init__(self, config: ExperimentConfig) -> None:
        if not isinstance(config, PerturbPreviewConfig):
            config = PerturbPreviewConfig.model_validate(config.model_dump())
        super().__init__(config)
        self.cfg: PerturbPreviewConfig = config
        split_model_ref(self.cfg.model)  # a bad model ref fails before any stage

    def stages(self) -> list[str]:
        return [retry_stage(a) for a in range(1, self.cfg.max_attempts + 1)]

    # -- items --------------------------------------------------------------------

    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        if stage == FIRST_STAGE:
            yield from self._first_items(store)
            return
        previous = self.stages()[self.stages().index(stage) - 1]
        for sample in store.samples(run_id, previous, status=SampleStatus.INVALID):
            call = store.query_one(
                f"SELECT {request_sql()} AS request FROM calls WHERE id=?", (sample["call_id"],)
            )
            if call is None:
                continue
            payload = sample["payload"]
            request = retry_after_invalid(call["request"], sample["output"] or "", payload)
            yield WorkItem(
                key=item_key(stage, sample["problem_id"]),
                stage=stage,
                role="perturber",
                model_ref=self.cfg.model,
                request=request,
                problem_id=sample["problem_id"],
                parent_id=sample["id"],
                payload={
                    **{k: payload[k] for k in _CARRIED if k in payload},
                    "attempt": int(payload.get("attempt", 1)) + 1,
                },
            )

    def _first_items(self, store: Store) -> Iterable[WorkItem]:
        version = resolve_version(store, self.cfg.prompt)
        template = version.template
        if template.purpose != "perturb":
            raise InputError(
                f"prompt {version.label} has purpose '{template.purpose}', not perturb"
            )
        _, model = split_model_ref(self.cfg.model)
        overrides: dict[str, Any] = {}
        if self.cfg.temperature is not None:
            overrides["temperature"] = self.cfg.temperature
        if self.cfg.max_tokens is not None:
            overrides["max_tokens"] = self.cfg.max_tokens
        for problem in select_problems(store, self.cfg.problems):
            steps = list(problem.steps)
            if len(steps) < (1 if self.cfg.allow_final else 2):
                continue  # nothing perturbable
            plan = plan_perturbation(
                steps,
                seed=self.cfg.seed,
                key=problem.id,
                weighting=self.cfg.weighting,
                allow_final=self.cfg.allow_final,
                allowed_types=self.cfg.error_types,
            )
            if self.cfg.step is not None:
                last = len(steps) if self.cfg.allow_final else len(steps) - 1
                plan = replace(plan, step_index=min(self.cfg.step, last) - 1)
            variables = perturb_variables(problem.question, steps, plan)
            request = template.request(model, variables, **overrides)
            yield WorkItem(
                key=item_key(FIRST_STAGE, problem.id),
                stage=FIRST_STAGE,
                role="perturber",
                model_ref=self.cfg.model,
                request=request,
                problem_id=problem.id,
                payload=payload_for(
                    plan,
                    steps,
                    {"prompt_version_id": version.id, "gold": problem.answer, "attempt": 1},
                ),
            )

    # -- post-processing --------------------------------------------------------------

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        """Validate each output of ``stage``; re-runnable (reads only the store)."""
        for sample in store.samples(run_id, stage):
            if sample["status"] not in (SampleStatus.DONE, SampleStatus.INVALID):
                continue
            payload = sample["payload"]
            steps = _steps_for(store, sample["problem_id"])
            index = int(payload["step_index"])
            if not 0 <= index < len(steps):
                continue
            check, updates = check_and_truncate(
                sample["output"] or "",
                steps,
                index,
                answer=payload.get("gold") or None,
                strategy=self._strategy(),
                k=self.cfg.truncation_k,
                seed=self.cfg.seed,
                key=str(sample["problem_id"]),
                allow_final=self.cfg.allow_final,
            )
            payload.update(updates)
            with store.transaction():
                store.update(
                    "samples",
                    sample["id"],
                    {
                        "status": SampleStatus.DONE if check.valid else SampleStatus.INVALID,
                        "payload": dumps(payload),
                        "updated_at": now_iso(),
                    },
                )

    def _strategy(self) -> TruncateStrategy:
        return self.cfg.truncation

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        results = final_results(store, run_id)
        n = len(results)
        flags = Counter(f for r in results for f in r.flags)
        return {
            "prompt_version_id": results[0].prompt_version_id if results else None,
            "problems": n,
            "valid": sum(r.valid for r in results),
            "valid_first_try": sum(r.valid and r.attempt == 1 for r in results),
            "pass_rate": (sum(r.valid for r in results) / n) if n else None,
            "flags": dict(flags),
        }


_CARRIED = ("step_index", "error_type", "original_step", "n_steps", "prompt_version_id", "gold")


def _steps_for(store: Store, problem_id: str | None) -> list[str]:
    """The problem's stored steps (no stepify fallback: the preview shows what is stored)."""
    problem = find_problem(store, problem_id) if problem_id is not None else None
    return [str(s) for s in problem.steps] if problem else []


@dataclass(frozen=True)
class PreviewResult:
    """The last attempt for one problem, with what the playground shows."""

    sample_id: int
    problem_id: str
    status: str  # done / invalid / error
    attempt: int
    step_index: int | None
    error_type: str | None
    original_step: str | None
    perturbed_step: str | None
    flags: tuple[str, ...]
    reasons: tuple[str, ...]
    prefix: str | None
    output: str
    prompt_version_id: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # summed over attempts; None when any attempt is unpriced
    latency_ms: float  # summed over attempts
    error: str | None
    validated: bool = False  # after_stage has checked this output

    @property
    def valid(self) -> bool:
        return self.status == SampleStatus.DONE and self.validated and not self.flags


def final_results(store: Store, run_id: int) -> list[PreviewResult]:
    """Per problem, the latest attempt of a preview run, with totals over its attempts."""
    rows = store.query(
        """
        SELECT s.id, s.problem_id, s.status, s.output, s.payload, s.stage, c.input_tokens,
               c.output_tokens, c.cost_usd, c.latency_ms, c.cache_hit, c.error
        FROM samples s LEFT JOIN calls c ON c.id = s.call_id
        WHERE s.run_id=? ORDER BY s.id
        """,
        (run_id,),
    )
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_problem.setdefault(str(r["problem_id"]), []).append(r)
    results = []
    for problem_id, attempts in by_problem.items():
        last = attempts[-1]
        payload = loads(last["payload"], {})
        costs: Sequence[float | None] = [0.0 if a["cache_hit"] else a["cost_usd"] for a in attempts]
        results.append(
            PreviewResult(
                sample_id=int(last["id"]),
                problem_id=problem_id,
                status=str(last["status"]),
                attempt=int(payload.get("attempt", len(attempts))),
                step_index=payload.get("step_index"),
                error_type=payload.get("error_type"),
                original_step=payload.get("original_step"),
                perturbed_step=payload.get("perturbed_step"),
                flags=tuple(payload.get("flags", ())),
                reasons=tuple(payload.get("flag_reasons", ())),
                prefix=payload.get("prefix"),
                output=last["output"] or "",
                prompt_version_id=payload.get("prompt_version_id"),
                input_tokens=sum(int(a["input_tokens"] or 0) for a in attempts),
                output_tokens=sum(int(a["output_tokens"] or 0) for a in attempts),
                cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
                latency_ms=sum(float(a["latency_ms"] or 0.0) for a in attempts),
                error=last["error"],
                validated="valid" in payload,
            )
        )
    return results


def version_pass_rates(store: Store, name: str) -> dict[int, tuple[int, int]]:
    """For each version of prompt ``name``: (valid, total) over its preview runs' problems."""
    rates: dict[int, tuple[int, int]] = {}
    runs = store.query("SELECT id, config FROM runs WHERE kind=? ORDER BY id", (KIND,))
    for run in runs:
        for r in final_results(store, int(run["id"])):
            if r.prompt_version_id is None:
                continue
            vname = store.scalar(
                "SELECT p.name FROM prompt_versions v JOIN prompts p ON p.id=v.prompt_id "
                "WHERE v.id=?",
                (r.prompt_version_id,),
            )
            if vname != name:
                continue
            valid, total = rates.get(r.prompt_version_id, (0, 0))
            rates[r.prompt_version_id] = (valid + int(r.valid), total + 1)
    return rates


def latest_results(store: Store, version_id: int) -> list[PreviewResult]:
    """Results of the newest preview run that used prompt version ``version_id``."""
    runs = store.query("SELECT id FROM runs WHERE kind=? ORDER BY id DESC", (KIND,))
    for row in runs:
        results = final_results(store, int(row["id"]))
        if results and results[0].prompt_version_id == version_id:
            return results
    return []
