"""Mistake finding: a critic reads a labelled trace and names its first wrong step (or none).

Two variants, as in the BIG-Bench Mistake paper: ``direct`` asks once per trace which step
is the first mistake (stage ``locate``); ``step`` asks of every step whether it is correct
(stage ``step-check``) and takes the first "no" as the pick, written as a ``locate`` row
without a call.  Each ``locate`` row is graded against the label (right when it names the
labelled step, or "none" for a trace labelled free of mistakes); the metrics layer turns
them into ``mistake_location`` and ``no_mistake_accuracy`` per task, and ProcessBench's F1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, cast

from pydantic import Field, field_validator

from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import Experiment, ExperimentConfig
from workbench.core.experiments.mistakes.labelled import LabelledTrace, labelled, pick_grade
from workbench.core.experiments.mistakes.parse import parse_mistake_pick, parse_step_verdict
from workbench.core.grading import store_grades
from workbench.core.library.problems import selected_problems
from workbench.core.payloads import CritiquePayload
from workbench.core.prompts import resolve_version
from workbench.core.providers import split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store, dumps, now_iso

LOCATE = "locate"
STEP_CHECK = "step-check"
CRITIC = "critic"


class MistakeFindingConfig(ExperimentConfig):
    kind: Literal["mistake-finding"] = "mistake-finding"
    critic: str  # "provider:model"
    variant: Literal["direct", "step"] = "direct"
    samples: int = Field(default=1, ge=1, le=100)  # critiques per trace
    prompt: str = "find-mistake"  # the direct variant's prompt
    step_prompt: str = "find-mistake-step"  # the step variant's prompt
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)  # None: the prompt's default

    @field_validator("critic")
    @classmethod
    def _ref(cls, v: str) -> str:
        provider, _, model = v.partition(":")
        if not provider or not model:
            raise ValueError(f"'{v}' must be written provider:model")
        return v


def _critique(trace: LabelledTrace, **extra: Any) -> CritiquePayload:
    """The trace's label fields and ``extra`` (CritiquePayload keys) in one payload."""
    return cast(CritiquePayload, {**trace.fields, **extra})


class MistakeFindingExperiment(Experiment):
    kind: ClassVar[str] = "mistake-finding"
    config_model: ClassVar[type[ExperimentConfig]] = MistakeFindingConfig
    config: MistakeFindingConfig

    def stages(self) -> list[str]:
        return [LOCATE] if self.config.variant == "direct" else [STEP_CHECK]

    def traces(self, store: Store) -> list[LabelledTrace]:
        """The selected problems that carry a step label (others are left out)."""
        found = (labelled(p) for p in selected_problems(store, self.config.problems))
        return [t for t in found if t is not None]

    def _settings(self, seed: int) -> dict[str, Any]:
        c = self.config
        settings: dict[str, Any] = {"temperature": c.temperature, "seed": seed}
        if c.max_tokens is not None:
            settings["max_tokens"] = c.max_tokens
        return settings

    def items(self, stage: str, store: Store, run_id: int) -> Iterator[WorkItem]:
        c = self.config
        _, model = split_model_ref(c.critic)
        name = c.prompt if stage == LOCATE else c.step_prompt
        version = resolve_version(store, name)
        for trace in self.traces(store):
            pid = trace.problem.id
            for i in range(c.samples):
                settings = self._settings(c.seed + i)
                if stage == LOCATE:
                    asked: dict[str, Any] = {
                        "question": trace.problem.question,
                        "steps": list(trace.steps),
                    }
                    yield WorkItem(
                        key=item_key(LOCATE, pid, i, c.critic),
                        stage=LOCATE,
                        role=CRITIC,
                        model_ref=c.critic,
                        request=version.template.request(model, asked, **settings),
                        problem_id=pid,
                        sample_index=i,
                        payload=_critique(trace, prompt_version=version.id, variant="direct"),
                    )
                    continue
                for j, step in enumerate(trace.steps):
                    variables: dict[str, Any] = {
                        "question": trace.problem.question,
                        "previous": list(trace.steps[:j]),
                        "step": step,
                        "number": j + 1,
                    }
                    yield WorkItem(
                        key=item_key(STEP_CHECK, pid, i, j),
                        stage=STEP_CHECK,
                        role=CRITIC,
                        model_ref=c.critic,
                        request=version.template.request(model, variables, **settings),
                        problem_id=pid,
                        sample_index=i,
                        payload=_critique(
                            trace, prompt_version=version.id, variant="step", step_index=j
                        ),
                    )

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        if stage == STEP_CHECK:
            self._picks_from_steps(store, run_id)
        self._grade_picks(store, run_id)

    def _grade_picks(self, store: Store, run_id: int) -> None:
        """Parse each ``locate`` reply (direct) and grade every pick against its label."""
        rows = store.samples(run_id, LOCATE, status=SampleStatus.DONE)
        grades = []
        with store.transaction():
            for s in rows:
                p = s["payload"]
                label = p.get("mistake_index")
                if p.get("variant") == "direct":
                    pick = parse_mistake_pick(s["output"] or "", int(p.get("n_steps") or 0))
                    predicted, readable = pick.index, pick.readable
                    store.update_sample_payload(
                        s["id"], CritiquePayload(predicted_index=predicted, readable=readable)
                    )
                else:
                    predicted, readable = p.get("predicted_index"), bool(p.get("readable"))
                gold = "none" if label is None else f"step {label + 1}"
                how = f"mistake-pick-{p.get('variant', 'direct')}"
                grades.append((s["id"], gold, pick_grade(predicted, readable, label, how)))
        store_grades(store, grades)

    def _picks_from_steps(self, store: Store, run_id: int) -> None:
        """Step variant: the first step judged wrong is the pick; all correct is "none"."""
        verdicts: dict[tuple[str, int], dict[int, bool | None]] = defaultdict(dict)
        first: dict[tuple[str, int], dict[str, Any]] = {}
        expected: dict[tuple[str, int], int] = {}
        for s in store.samples(run_id, STEP_CHECK, status=SampleStatus.DONE):
            p = s["payload"]
            key = (s["problem_id"], int(s["sample_index"]))
            verdict = parse_step_verdict(s["output"] or "")
            verdicts[key][int(p["step_index"])] = verdict
            first.setdefault(key, p)
            expected[key] = int(p.get("n_steps") or 0)
        now = now_iso()
        with store.transaction() as conn:
            for key, by_step in verdicts.items():
                n = expected[key]
                if len(by_step) < n:  # some step still unanswered (an error): no pick yet
                    continue
                predicted, readable = None, True
                for j in range(n):
                    if by_step[j] is None:
                        readable = False
                        break
                    if by_step[j] is False:
                        predicted = j
                        break
                p = first[key]
                payload = CritiquePayload(
                    task=p.get("task"),
                    mistake_index=p.get("mistake_index"),
                    n_steps=n,
                    prompt_version=int(p.get("prompt_version") or 0),
                    variant="step",
                    predicted_index=predicted,
                    readable=readable,
                )
                if "answer_kind" in p:
                    payload["answer_kind"] = p["answer_kind"]
                output = (
                    "unreadable"
                    if not readable
                    else ("none" if predicted is None else f"step {predicted + 1}")
                )
                problem_id, index = key
                conn.execute(
                    """
                    INSERT INTO samples (run_id, stage, item_key, problem_id, sample_index, role,
                                         model, status, output, payload, created_at, updated_at)
                    VALUES (?,?,?,?,?,?,?,'done',?,?,?,?)
                    ON CONFLICT(run_id, item_key) DO UPDATE SET output=excluded.output,
                        payload=excluded.payload, updated_at=excluded.updated_at
                    """,
                    (
                        run_id,
                        LOCATE,
                        item_key(LOCATE, problem_id, index, self.config.critic),
                        problem_id,
                        index,
                        CRITIC,
                        self.config.critic,
                        output,
                        dumps(payload),
                        now,
                        now,
                    ),
                )
