"""Backtracking at the labelled mistake (BIG-Bench Mistake's backtracking experiment).

For each labelled trace with a gold answer, two arms cut the trace before one step: arm
``mistake`` before the labelled first mistake (traces labelled free of mistakes are left
as they are), arm ``random`` before a step drawn uniformly (seeded per trace), the
control.  Stage ``resample`` redraws that step ``samples`` times at ``resample_temperature``
(the first line of each reply is the new step); stage ``backtrack`` continues each redrawn
step to a final answer at ``temperature`` through the completer's continuation method,
and grades it with the task's rule.  The metrics layer reports, per arm and task, the
accuracy gained on traces that were wrong (``backtrack_fixed``) and kept on traces that
were right (``backtrack_kept``); the report adds a paired test against the original traces.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, cast

from pydantic import Field, field_validator

from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import (
    ContinuationChoice,
    Experiment,
    ExperimentConfig,
    draw_seed,
)
from workbench.core.experiments.mistakes.labelled import LabelledTrace, labelled, task_grade
from workbench.core.grading import store_grades
from workbench.core.library import join_steps
from workbench.core.library.problems import selected_problems
from workbench.core.payloads import BacktrackPayload
from workbench.core.prompts import resolve_version
from workbench.core.providers import Continuation, split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store

RESAMPLE = "resample"
BACKTRACK = "backtrack"
COMPLETER = "completer"
Arm = Literal["mistake", "random"]
#: how a BIG-Bench Hard trace ends, asked of every continuation
ANSWER_FORMAT = 'as a last sentence "So the answer is <answer>."'


class BacktrackConfig(ExperimentConfig):
    kind: Literal["backtrack"] = "backtrack"
    completer: str  # "provider:model": redraws the step and continues
    arms: tuple[Arm, ...] = Field(default=("mistake", "random"), min_length=1)
    samples: int = Field(default=1, ge=1, le=100)  # redraws per trace and arm
    resample_temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)  # the continuation's
    step_max_tokens: int = Field(default=128, ge=1)
    max_tokens: int = Field(default=512, ge=1)
    continuation: ContinuationChoice = "auto"
    continue_prompt: str = "continue"

    @field_validator("completer")
    @classmethod
    def _ref(cls, v: str) -> str:
        provider, _, model = v.partition(":")
        if not provider or not model:
            raise ValueError(f"'{v}' must be written provider:model")
        return v

    @field_validator("arms")
    @classmethod
    def _distinct(cls, v: tuple[Arm, ...]) -> tuple[Arm, ...]:
        if len(set(v)) != len(v):
            raise ValueError("an arm is listed twice")
        return v


def cut_for(trace: LabelledTrace, arm: Arm, seed: int) -> int | None:
    """The step an arm redraws: the labelled mistake, or one drawn per trace; None: none."""
    if arm == "mistake":
        return trace.mistake_index
    return random.Random(f"{seed}/{trace.problem.id}").randrange(len(trace.steps))


def _prefix(steps: list[str]) -> str | None:
    return join_steps(steps) + "\n" if steps else None


def _backtrack_payload(base: Any, **extra: Any) -> BacktrackPayload:
    return cast(BacktrackPayload, {**base, **extra})


class BacktrackExperiment(Experiment):
    kind: ClassVar[str] = "backtrack"
    config_model: ClassVar[type[ExperimentConfig]] = BacktrackConfig
    config: BacktrackConfig

    def stages(self) -> list[str]:
        return [RESAMPLE, BACKTRACK]

    def traces(self, store: Store) -> list[LabelledTrace]:
        """Selected labelled traces with a gold answer (a final answer can be graded)."""
        found = (labelled(p) for p in selected_problems(store, self.config.problems))
        return [t for t in found if t is not None and t.answer_kind and t.problem.answer]

    def items(self, stage: str, store: Store, run_id: int) -> Iterator[WorkItem]:
        c = self.config
        _, model = split_model_ref(c.completer)
        version = resolve_version(store, c.continue_prompt)
        continuation = None if c.continuation == "auto" else Continuation(c.continuation)
        if stage == RESAMPLE:
            for trace in self.traces(store):
                original_correct = trace.original_correct()
                for arm in c.arms:
                    cut = cut_for(trace, arm, c.seed)
                    if cut is None:
                        continue
                    payload = _backtrack_payload(
                        trace.fields,
                        prompt_version=version.id,
                        continuation_requested=c.continuation,
                        arm=arm,
                        cut=cut,
                        original_step=trace.steps[cut],
                        original_correct=bool(original_correct),
                    )
                    for i in range(c.samples):
                        request = version.template.request(
                            model,
                            {"question": trace.problem.question, "answer_format": ANSWER_FORMAT},
                            prefix=_prefix(list(trace.steps[:cut])),
                            continuation=continuation,
                            temperature=c.resample_temperature,
                            max_tokens=c.step_max_tokens,
                            seed=draw_seed(c.seed, i, RESAMPLE),
                        )
                        yield WorkItem(
                            key=item_key(RESAMPLE, trace.problem.id, i, arm),
                            stage=RESAMPLE,
                            role=COMPLETER,
                            model_ref=c.completer,
                            request=request,
                            problem_id=trace.problem.id,
                            sample_index=i,
                            payload=payload,
                        )
            return
        traces = {t.problem.id: t for t in self.traces(store)}
        for s in store.samples(run_id, RESAMPLE, status=SampleStatus.DONE):
            p = s["payload"]
            source = traces.get(s["problem_id"])
            if source is None or not p.get("new_step"):
                continue
            kept = [*source.steps[: int(p["cut"])], str(p["new_step"])]
            request = version.template.request(
                model,
                {"question": source.problem.question, "answer_format": ANSWER_FORMAT},
                prefix=_prefix(kept),
                continuation=continuation,
                temperature=c.temperature,
                max_tokens=c.max_tokens,
                seed=draw_seed(c.seed, int(s["sample_index"]), BACKTRACK),
            )
            yield WorkItem(
                key=item_key(BACKTRACK, source.problem.id, s["sample_index"], p["arm"]),
                stage=BACKTRACK,
                role=COMPLETER,
                model_ref=c.completer,
                request=request,
                problem_id=source.problem.id,
                sample_index=int(s["sample_index"]),
                parent_id=int(s["id"]),
                payload=_backtrack_payload(p),
            )

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        if stage == RESAMPLE:
            with store.transaction():
                for s in store.samples(run_id, RESAMPLE, status=SampleStatus.DONE):
                    lines = [line.strip() for line in (s["output"] or "").splitlines()]
                    new_step = next((line for line in lines if line), None)
                    original = " ".join(str(s["payload"].get("original_step", "")).split())
                    same = new_step is not None and " ".join(new_step.split()) == original
                    store.update_sample_payload(
                        s["id"], BacktrackPayload(new_step=new_step, same_step=same)
                    )
            return
        grades = []
        for s in store.samples(run_id, BACKTRACK, status=SampleStatus.DONE):
            p = s["payload"]
            target = self._target(store, s["problem_id"])
            # the redrawn step may itself be the last one, holding the final answer
            text = f"{p.get('new_step') or ''}\n{s['output'] or ''}"
            grades.append((s["id"], target, task_grade(str(p["answer_kind"]), text, target)))
        store_grades(store, grades)

    def _target(self, store: Store, problem_id: str) -> str:
        row = store.query("SELECT answer FROM problems WHERE id=?", (problem_id,))
        return str(row[0]["answer"]) if row else ""
