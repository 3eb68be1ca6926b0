"""Perturb-and-recover (off-policy): perturb one step, truncate, let a completer continue.

Stages, in order (each stored before the next is built):

- ``perturb``: the perturber rewrites one program-chosen step with a chosen error type.
  Post-processing validates each output (flags stored on the sample) and, when
  valid, truncates: the prefix is stored on the sample.
- ``perturb-retry-1`` .. ``perturb-retry-N``: invalid outputs are asked again with
  the validation message fed back (the previous call's request + the feedback
  turns).  After the last attempt an invalid perturbation is set aside
  (status ``invalid``) with its reasons.
- ``check`` (``check_too_easy``): the perturber (or ``checker``) continues from its own
  perturbed prefix; a problem whose check still reaches the right answer is too
  easy to perturb and is set aside (status ``skipped``) with that reason.
- ``continue``: the completer continues each remaining prefix ``samples`` times; graded,
  then recovery detection (explicit / silent) is stored on every continuation.
- ``control`` (optional): the same cut with the original step, for a baseline.
- ``judge`` (optional): an LLM judge reads each continuation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from workbench.core.engine import WorkItem, item_key, request_sql
from workbench.core.experiments.base import Experiment, ExperimentConfig
from workbench.core.experiments.recovery.continue_stage import (
    JUDGE,
    Prefix,
    PrefixConfig,
    Problems,
    continue_items,
    grade_continuations,
    grade_stage,
    judge_items,
    problem_steps,
    read_judgements,
    set_aside,
    stage_rate,
)
from workbench.core.library.problems import selected_problems
from workbench.core.payloads import PrefixPayload
from workbench.core.perturb.plan import (
    TruncateStrategy,
    Weighting,
    build_prefix,
    check_and_truncate,
    eligible_steps,
    payload_for,
    perturb_variables,
    plan_perturbation,
    retry_after_invalid,
)
from workbench.core.prompts import resolve_version
from workbench.core.providers import split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store, dumps, now_iso

PERTURB = "perturb"
CHECK = "check"
CONTINUE = "continue"
CONTROL = "control"
RETRY_PREFIX = "perturb-retry-"


class RecoveryConfig(PrefixConfig):
    kind: Literal["recovery"] = "recovery"
    perturber: str
    perturb_prompt: str = "perturb-step"
    perturb_temperature: float = Field(default=0.7, ge=0, le=2)
    perturb_max_tokens: int | None = Field(default=None, ge=1)  # None: the prompt's default
    error_types: tuple[str, ...] = ()  # taxonomy ids; empty = all
    step_weighting: Weighting = "uniform"
    allow_final: bool = False
    max_attempts: int = Field(default=3, ge=1, le=10)  # perturb + retries with feedback
    truncation: TruncateStrategy = "after"
    truncation_k: int = Field(default=1, ge=0)
    check_too_easy: bool = True
    checker: str | None = None  # model for the too-easy check; default the perturber
    check_samples: int = Field(default=1, ge=1, le=100)
    control: bool = False


def attempt_stage(attempt: int) -> str:
    """Stage name of the n-th perturbation attempt (1-based)."""
    return PERTURB if attempt == 1 else f"{RETRY_PREFIX}{attempt - 1}"


class RecoveryExperiment(Experiment):
    kind: ClassVar[str] = "recovery"
    config_model: ClassVar[type[ExperimentConfig]] = RecoveryConfig
    config: RecoveryConfig

    def stage_roles(self, stage: str) -> tuple[str, ...] | None:
        """Which models each stage calls (a batch-mode stage is checked against these)."""
        if stage in (CONTINUE, CONTROL):
            return ("completer",)
        if stage == CHECK:
            return ("checker",)
        if stage == JUDGE:
            return ("judge",)
        if stage == PERTURB or stage.startswith(RETRY_PREFIX):
            return ("perturber",)
        return None

    def stages(self) -> list[str]:
        c = self.config
        stages = [attempt_stage(a) for a in range(1, c.max_attempts + 1)]
        stages += [CHECK] if c.check_too_easy else []
        stages += [CONTINUE] + ([CONTROL] if c.control else []) + ([JUDGE] if c.judge else [])
        return stages

    # -- work items --------------------------------------------------------

    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        if stage == PERTURB:
            return self._perturb_items(store)
        if stage.startswith(RETRY_PREFIX):
            return self._retry_items(store, run_id, int(stage.removeprefix(RETRY_PREFIX)) + 1)
        if stage == CHECK:
            c = self.config
            return continue_items(
                c,
                store,
                CHECK,
                self._accepted(store, run_id),
                model_ref=c.checker or c.perturber,
                k=c.check_samples,
                role="checker",
            )
        if stage == CONTINUE:
            return continue_items(self.config, store, CONTINUE, self._accepted(store, run_id))
        if stage == CONTROL:
            return continue_items(
                self.config, store, CONTROL, self._accepted(store, run_id, original=True)
            )
        if stage == JUDGE:
            return judge_items(self.config, store, run_id, CONTINUE)
        return []

    def _perturb_items(self, store: Store) -> Iterator[WorkItem]:
        c = self.config
        version = resolve_version(store, c.perturb_prompt)
        template = version.template
        _, model = split_model_ref(c.perturber)
        for problem in selected_problems(store, c.problems):
            steps = problem_steps(problem)
            if not eligible_steps(len(steps), allow_final=c.allow_final):
                continue  # set aside with a reason in after_stage
            plan = plan_perturbation(
                steps,
                seed=c.seed,
                key=problem.id,
                weighting=c.step_weighting,
                allow_final=c.allow_final,
                allowed_types=c.error_types,
            )
            yield WorkItem(
                key=item_key(PERTURB, problem.id, 0),
                stage=PERTURB,
                role="perturber",
                model_ref=c.perturber,
                request=template.request(
                    model,
                    perturb_variables(problem.question, steps, plan),
                    temperature=c.perturb_temperature,
                    seed=c.seed,
                    **({"max_tokens": c.perturb_max_tokens} if c.perturb_max_tokens else {}),
                ),
                problem_id=problem.id,
                payload=payload_for(
                    plan,
                    steps,
                    {
                        "attempt": 1,
                        "prompt_version": version.id,
                        "error_type_name": plan.error_type.name,
                    },
                ),
            )

    def _retry_items(self, store: Store, run_id: int, attempt: int) -> Iterator[WorkItem]:
        """Attempt ``attempt`` for each problem whose previous attempt was invalid."""
        previous = store.samples(run_id, attempt_stage(attempt - 1), status=SampleStatus.INVALID)
        stage = attempt_stage(attempt)
        for s in previous:
            p = s["payload"]
            if p.get("set_aside") or s["call_id"] is None:
                continue
            call = store.query_one(
                f"SELECT {request_sql()} AS request FROM calls WHERE id=?", (s["call_id"],)
            )
            if call is None:
                continue
            request = retry_after_invalid(call["request"], s["output"] or "", p)
            yield WorkItem(
                key=item_key(stage, s["problem_id"], 0),
                stage=stage,
                role="perturber",
                model_ref=self.config.perturber,
                request=request,
                problem_id=s["problem_id"],
                parent_id=s["id"],
                payload={
                    k: p[k]
                    for k in (
                        "step_index",
                        "error_type",
                        "error_type_name",
                        "original_step",
                        "n_steps",
                        "prompt_version",
                    )
                    if k in p
                }
                | {"attempt": attempt},
            )

    def _accepted(self, store: Store, run_id: int, *, original: bool = False) -> Iterator[Prefix]:
        """Valid perturbations not set aside, as prefixes (``original``: the untouched cut)."""
        problems = Problems(store)
        for s in self._valid_perturbations(store, run_id):
            p = s["payload"]
            problem = problems.get(s["problem_id"])
            common = PrefixPayload(
                step_index=p["step_index"],
                n_steps=p["n_steps"],
                error_type=p["error_type"],
                truncate_at=p["truncate_at"],
                original_step=p["original_step"],
                perturbed_step=p["perturbed_step"],
            )
            if original:
                steps = problem_steps(problem)
                text = build_prefix(steps[: int(p["truncate_at"])])
                yield Prefix(
                    problem,
                    s["id"],
                    text,
                    common | PrefixPayload(perturbed=False, prefix_kind="original"),
                )
            else:
                yield Prefix(
                    problem,
                    s["id"],
                    p["prefix"],
                    common | PrefixPayload(perturbed=True, prefix_kind="perturbed"),
                )

    def _valid_perturbations(self, store: Store, run_id: int) -> list[dict[str, Any]]:
        rows = []
        for a in range(1, self.config.max_attempts + 1):
            rows += [
                s
                for s in store.samples(run_id, attempt_stage(a), status=SampleStatus.DONE)
                if s["payload"].get("valid") and s["payload"].get("prefix") is not None
            ]
        return sorted(rows, key=lambda s: s["problem_id"])

    # -- post-processing ---------------------------------------------------

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        if stage == PERTURB or stage.startswith(RETRY_PREFIX):
            if stage == PERTURB:
                self._set_aside_unperturbable(store, run_id)
            self._validate(store, run_id, stage)
        elif stage == CHECK:
            self._too_easy(store, run_id)
        elif stage in (CONTINUE, CONTROL):
            grade_continuations(store, run_id, stage, self.config, detect=stage == CONTINUE)
        elif stage == JUDGE:
            read_judgements(store, run_id)

    def _validate(self, store: Store, run_id: int, stage: str) -> None:
        """Check each output; truncate the valid ones; set aside the last invalid attempt."""
        c = self.config
        problems = Problems(store)
        stamp = now_iso()
        with store.transaction() as conn:
            for s in store.samples(run_id, stage):
                if s["status"] not in (SampleStatus.DONE, SampleStatus.INVALID):
                    continue
                p = dict(s["payload"])
                problem = problems.get(s["problem_id"])
                steps = problem_steps(problem)
                check, fields = check_and_truncate(
                    s["output"] or "",
                    steps,
                    int(p["step_index"]),
                    answer=problem.answer,
                    strategy=c.truncation,
                    k=c.truncation_k,
                    seed=c.seed,
                    key=problem.id,
                    allow_final=c.allow_final,
                )
                p.update(fields)
                for key in ("set_aside", "set_aside_kind"):
                    p.pop(key, None)
                status = SampleStatus.DONE
                if not check.valid:
                    status = SampleStatus.INVALID
                    if int(p.get("attempt", 1)) >= c.max_attempts:
                        p["set_aside"] = (
                            f"failed validation after {c.max_attempts} attempt(s): "
                            + "; ".join(check.reasons)
                        )
                        p["set_aside_kind"] = "invalid"
                conn.execute(
                    "UPDATE samples SET status=?, payload=?, updated_at=? WHERE id=?",
                    (status, dumps(p), stamp, s["id"]),
                )

    def _set_aside_unperturbable(self, store: Store, run_id: int) -> None:
        """Problems with no step to perturb get a ``skipped`` sample that says so."""
        c = self.config
        stamp = now_iso()
        with store.transaction() as conn:
            for problem in selected_problems(store, c.problems):
                steps = problem_steps(problem)
                if eligible_steps(len(steps), allow_final=c.allow_final):
                    continue
                reason = f"no step to perturb: the solution has {len(steps)} step(s)"
                conn.execute(
                    "INSERT OR IGNORE INTO samples(run_id, stage, item_key, problem_id, role,"
                    " model, status, payload, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        PERTURB,
                        item_key(PERTURB, problem.id, 0),
                        problem.id,
                        "perturber",
                        c.perturber,
                        SampleStatus.SKIPPED,
                        dumps(
                            {
                                "set_aside": reason,
                                "set_aside_kind": "no_steps",
                                "n_steps": len(steps),
                            }
                        ),
                        stamp,
                        stamp,
                    ),
                )

    def _too_easy(self, store: Store, run_id: int) -> None:
        """Set aside perturbations whose own check still reaches the right answer."""
        graded = grade_stage(
            store, run_id, CHECK, Problems(store), timeout_s=self.config.grade_timeout_s
        )
        by_parent: dict[int, list[bool]] = {}
        for s, correct in graded:
            if s["parent_id"] is not None and correct is not None:
                by_parent.setdefault(s["parent_id"], []).append(correct)
        for parent, verdicts in by_parent.items():
            if sum(verdicts) / len(verdicts) >= 0.5:
                set_aside(
                    store,
                    parent,
                    SampleStatus.SKIPPED,
                    "too_easy",
                    f"too easy to perturb: the perturber's own check reached the right "
                    f"answer in {sum(verdicts)}/{len(verdicts)} continuation(s)",
                )

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "recovery": stage_rate(store, run_id, CONTINUE),
            "set_aside": store.scalar(
                "SELECT COUNT(*) FROM samples WHERE run_id=? AND json_extract(payload,"
                " '$.set_aside') IS NOT NULL",
                (run_id,),
            ),
            "perturbed": len(self._valid_perturbations(store, run_id)),
        }
        if self.config.control:
            summary["control"] = stage_rate(store, run_id, CONTROL)
        return summary
