"""Weak-model prefix: a weaker model solves; its wrong traces become a stronger model's prefix.

Stages:

- ``weak-solve``: the weak model (``solver``) solves each problem ``solver_samples`` times
  (straight shot).
  Post-processing grades them; each wrong trace is stepified and cut at a chosen
  point (``cut``: a fraction of its steps, never the final-answer step); a trace
  too short to cut is set aside (status ``skipped``) with the reason.
- ``continue``: the completer continues each cut wrong trace ``samples`` times; graded,
  with recovery detection.
- ``judge`` (optional).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import Experiment, ExperimentConfig, renamed
from workbench.core.experiments.recovery.continue_stage import (
    JUDGE,
    Prefix,
    PrefixConfig,
    Problems,
    continue_items,
    cut_trace,
    grade_continuations,
    grade_stage,
    judge_items,
    read_judgements,
    set_aside,
    stage_rate,
    trace_prefix,
)
from workbench.core.library.problems import selected_problems
from workbench.core.payloads import PrefixPayload, SolvePayload
from workbench.core.prompts import resolve_version
from workbench.core.providers import split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store

WEAK_SOLVE = "weak-solve"
CONTINUE = "continue"


class WeakPrefixConfig(PrefixConfig):
    kind: Literal["weak-prefix"] = "weak-prefix"
    # the weaker model that solves, "provider:model" (formerly ``weak``)
    solver: str = Field(validation_alias=renamed("solver", "weak"))
    # its samples per problem (formerly ``n_weak``); ``samples`` is the completer's
    solver_samples: int = Field(
        default=4, ge=1, le=1000, validation_alias=renamed("solver_samples", "n_weak")
    )
    solve_prompt: str | None = None  # None: by problem source (solve-gsm8k / solve-math)
    solver_temperature: float = Field(
        default=0.7, ge=0, le=2, validation_alias=renamed("solver_temperature", "weak_temperature")
    )
    solver_max_tokens: int = Field(
        default=768, ge=1, validation_alias=renamed("solver_max_tokens", "weak_max_tokens")
    )
    traces_per_problem: int = Field(default=1, ge=1)  # wrong traces kept per problem
    cut: float = Field(default=0.5, gt=0, le=1)  # fraction of the trace's steps kept


class WeakPrefixExperiment(Experiment):
    kind: ClassVar[str] = "weak-prefix"
    config_model: ClassVar[type[ExperimentConfig]] = WeakPrefixConfig
    config: WeakPrefixConfig

    def stages(self) -> list[str]:
        return [WEAK_SOLVE, CONTINUE] + ([JUDGE] if self.config.judge else [])

    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        if stage == WEAK_SOLVE:
            return self._solve_items(store)
        if stage == CONTINUE:
            return continue_items(self.config, store, CONTINUE, self._prefixes(store, run_id))
        if stage == JUDGE:
            return judge_items(self.config, store, run_id, CONTINUE)
        return []

    def _solve_items(self, store: Store) -> Iterator[WorkItem]:
        c = self.config
        _, model = split_model_ref(c.solver)
        versions: dict[str, Any] = {}
        for problem in selected_problems(store, c.problems):
            name = c.solve_prompt or problem.solve_prompt
            if name not in versions:
                versions[name] = resolve_version(store, name)
            version = versions[name]
            for i in range(c.solver_samples):
                yield WorkItem(
                    key=item_key(WEAK_SOLVE, problem.id, i),
                    stage=WEAK_SOLVE,
                    role="solver",
                    model_ref=c.solver,
                    request=version.template.request(
                        model,
                        {"question": problem.question},
                        temperature=c.solver_temperature,
                        max_tokens=c.solver_max_tokens,
                        seed=c.seed + i,
                    ),
                    problem_id=problem.id,
                    sample_index=i,
                    payload=SolvePayload(prompt_version=version.id),
                )

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        problems = Problems(store)
        if stage == WEAK_SOLVE:
            graded = grade_stage(
                store, run_id, WEAK_SOLVE, problems, timeout_s=self.config.grade_timeout_s
            )
            for s, correct in graded:
                if correct is False and self._cut(s, problems) is None:
                    set_aside(
                        store, s["id"], SampleStatus.SKIPPED, "too_short",
                        "wrong trace too short to cut (fewer than two steps)",
                    )  # fmt: skip
        elif stage == CONTINUE:
            grade_continuations(store, run_id, CONTINUE, self.config)
        elif stage == JUDGE:
            read_judgements(store, run_id)

    def _cut(self, sample: dict[str, Any], problems: Problems) -> tuple[str, int, int] | None:
        source = problems.get(sample["problem_id"]).source
        return cut_trace(sample["output"] or "", self.config.cut, source=source)

    def _prefixes(self, store: Store, run_id: int) -> Iterator[Prefix]:
        """The first ``traces_per_problem`` graded-wrong weak traces of each problem, cut."""
        problems = Problems(store)
        wrong = store.query(
            "SELECT s.* FROM samples s JOIN grades g ON g.sample_id = s.id"
            " WHERE s.run_id=? AND s.stage=? AND s.status='done'"
            " AND (g.correct = 0 OR g.status = 'no_answer')"
            " ORDER BY s.problem_id, s.sample_index",
            (run_id, WEAK_SOLVE),
        )
        taken: dict[str, int] = {}
        for s in wrong:
            pid = s["problem_id"]
            if taken.get(pid, 0) >= self.config.traces_per_problem:
                continue
            prefix = trace_prefix(
                problems.get(pid),
                s["id"],
                s["output"] or "",
                self.config.cut,
                PrefixPayload(prefix_kind="weak", prefix_model=self.config.solver),
            )
            if prefix is None:
                continue
            taken[pid] = taken.get(pid, 0) + 1
            yield prefix

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        return {
            "weak_accuracy": stage_rate(store, run_id, WEAK_SOLVE),
            "recovery": stage_rate(store, run_id, CONTINUE),
        }
