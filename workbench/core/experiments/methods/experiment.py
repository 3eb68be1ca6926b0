"""The methods experiment: chain of thought, program-aided, plan-then-code, votes.

Stages, in order (each stored before the next is built):

- ``plan`` (when ``plan`` is a method): a numbered plan per sample, or one
  plan shared by all codes (``plan_mode``).
- ``solve``: ``samples`` outputs per problem and method.  Post-processing
  parses answer lines, runs programs in the sandbox, grades every sample,
  votes within each method (self-consistency) and across methods (two of
  three), and writes one ``vote`` row per problem (stage ``vote``, no call).
- ``resolve`` (unless ``disagreement = "first"``): for problems where no two
  methods agree, a selector picks (A)/(B)/(C) at temperature 0, or the solver
  re-attempts after seeing the conflicting answers (``reflect``).

All post-processing reads only the store (``methods.post``), so it can be
re-run after changing the grader or the sandbox without new model calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import Experiment, ExperimentConfig, renamed
from workbench.core.experiments.methods.parse import extract_plan
from workbench.core.experiments.methods.post import (
    PLAN,
    RESOLVE,
    SOLVE,
    PostOptions,
    process_resolutions,
    process_solutions,
    resolve_inputs,
)
from workbench.core.experiments.methods.prompts import (
    ANSWER_LINES,
    ROLES,
    default_ref,
    example_questions,
    normalise_question,
    resolve,
)
from workbench.core.experiments.methods.report import summarise_run
from workbench.core.library import Problem, select_problems
from workbench.core.payloads import MethodSolvePayload
from workbench.core.prompts import PromptVersion
from workbench.core.providers import ModelRequest, split_model_ref
from workbench.core.sandbox import Limits
from workbench.core.status import SampleStatus
from workbench.core.store import Store

MethodName = Literal["cot", "pal", "plan"]
METHOD_ROLES = {"cot": "cot", "pal": "pal", "plan": "plan_code"}


class MethodsConfig(ExperimentConfig):
    kind: Literal["methods"] = "methods"
    # "provider:model" that solves (formerly ``model``)
    solver: str = Field(validation_alias=renamed("solver", "model"))
    methods: tuple[MethodName, ...] = Field(default=("cot", "pal", "plan"), min_length=1)
    samples: int = Field(default=1, ge=1, le=200)  # per method; > 1 = self-consistency
    cot_temperature: float = Field(default=0.5, ge=0, le=2)
    pal_temperature: float = Field(default=0.8, ge=0, le=2)
    plan_temperature: float = Field(default=0.8, ge=0, le=2)
    greedy_single_sample: bool = True  # samples = 1 runs at temperature 0
    plan_mode: Literal["plan-per-code", "shared-plan"] = "plan-per-code"
    disagreement: Literal["select", "reflect", "first"] = "select"
    selector: str | None = None  # model for select / reflect; default: ``solver``
    selector_temperature: float = Field(default=0.0, ge=0, le=2)
    style: Literal["auto", "gsm8k", "math"] = "auto"  # answer format; auto: by problem source
    prompts: dict[str, str] = Field(default_factory=dict)  # role -> prompt ref (override)
    max_tokens: int | None = Field(default=None, ge=1)  # None: each template's default
    exclude_few_shot: bool = True  # leave out problems used as worked examples
    numeric_tolerance: float = Field(default=1e-6, ge=0)  # GSM8K vote equivalence
    sandbox_wall_s: float = Field(default=10.0, gt=0)
    sandbox_cpu_s: int = Field(default=5, ge=1)
    sandbox_memory_mb: int = Field(default=1024, ge=64)
    grade_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("methods")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each method may appear once")
        return value

    @field_validator("prompts")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown prompt role '{unknown[0]}' (roles: {', '.join(ROLES)})")
        return value


def problem_style(problem: Problem, config: MethodsConfig) -> str:
    """``gsm8k`` (numeric answer line) or ``math`` (LaTeX final-answer line)."""
    if config.style != "auto":
        return config.style
    return problem.answer_style


class MethodsExperiment(Experiment):
    kind: ClassVar[str] = "methods"
    config_model: ClassVar[type[ExperimentConfig]] = MethodsConfig
    config: MethodsConfig

    def __init__(self, config: ExperimentConfig) -> None:
        if not isinstance(config, MethodsConfig):
            config = MethodsConfig.model_validate(config.model_dump())
        super().__init__(config)
        self._versions: dict[str, PromptVersion] = {}

    # -- configuration helpers --------------------------------------------------------

    def stages(self) -> list[str]:
        first = [PLAN] if "plan" in self.config.methods else []
        last = [] if self.config.disagreement == "first" else [RESOLVE]
        return [*first, SOLVE, *last]

    def options(self) -> PostOptions:
        c = self.config
        return PostOptions(
            methods=tuple(c.methods),
            disagreement=c.disagreement,
            numeric_tolerance=c.numeric_tolerance,
            grade_timeout_s=c.grade_timeout_s,
            limits=Limits(
                wall_s=c.sandbox_wall_s, cpu_s=c.sandbox_cpu_s, memory_mb=c.sandbox_memory_mb
            ),
        )

    def prompt(self, store: Store, role: str, style: str) -> PromptVersion:
        ref = self.config.prompts.get(role) or default_ref(role, style)
        if ref not in self._versions:
            self._versions[ref] = resolve(store, ref)
        return self._versions[ref]

    def problems(self, store: Store) -> list[Problem]:
        """The selected problems, minus those used as worked examples in the prompts."""
        chosen = select_problems(store, self.config.problems)
        if not self.config.exclude_few_shot:
            return chosen
        styles = {problem_style(p, self.config) for p in chosen}
        roles = [METHOD_ROLES[m] for m in self.config.methods] + (
            ["plan"] if "plan" in self.config.methods else []
        )
        examples = example_questions(
            self.prompt(store, r, s).template for r in roles for s in styles
        )
        return [p for p in chosen if normalise_question(p.question) not in examples]

    def temperature(self, method: str) -> float:
        if self.config.samples == 1 and self.config.greedy_single_sample:
            return 0.0
        return float(getattr(self.config, f"{method}_temperature"))

    def _request(
        self,
        version: PromptVersion,
        model_ref: str,
        variables: dict[str, Any],
        temperature: float,
        sample_index: int = 0,
    ) -> ModelRequest:
        # seeded per sample: reproducible where the provider honours seeds
        overrides: dict[str, Any] = {
            "temperature": temperature,
            "seed": self.config.seed + sample_index,
        }
        if self.config.max_tokens is not None:
            overrides["max_tokens"] = self.config.max_tokens
        return version.template.request(split_model_ref(model_ref)[1], variables, **overrides)

    # -- stages --------------------------------------------------------------------------

    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        problems = self.problems(store)
        if stage == PLAN:
            return list(self._plan_items(store, problems))
        if stage == SOLVE:
            return list(self._solve_items(store, run_id, problems))
        if stage == RESOLVE:
            return list(self._resolve_items(store, run_id, problems))
        return []

    def _plan_count(self) -> int:
        return self.config.samples if self.config.plan_mode == "plan-per-code" else 1

    def _plan_items(self, store: Store, problems: list[Problem]) -> Iterator[WorkItem]:
        temperature = self.temperature("plan")
        for p in problems:
            style = problem_style(p, self.config)
            version = self.prompt(store, "plan", style)
            for i in range(self._plan_count()):
                yield WorkItem(
                    key=item_key(PLAN, p.id, i),
                    stage=PLAN,
                    role="planner",
                    model_ref=self.config.solver,
                    request=self._request(
                        version, self.config.solver, {"question": p.question}, temperature, i
                    ),
                    problem_id=p.id,
                    sample_index=i,
                    payload=MethodSolvePayload(
                        method="plan",
                        style=style,
                        prompt=version.label,
                        temperature=temperature,
                        plan_mode=self.config.plan_mode,
                    ),
                )

    def _solve_items(
        self, store: Store, run_id: int, problems: list[Problem]
    ) -> Iterator[WorkItem]:
        plans = {
            (s["problem_id"], s["sample_index"]): s
            for s in store.samples(run_id, PLAN, status=SampleStatus.DONE)
        }
        for p in problems:
            style = problem_style(p, self.config)
            for method in self.config.methods:
                version = self.prompt(store, METHOD_ROLES[method], style)
                temperature = self.temperature(method)
                for i in range(self.config.samples):
                    variables: dict[str, Any] = {"question": p.question}
                    payload = MethodSolvePayload(
                        method=method, style=style, prompt=version.label, temperature=temperature
                    )
                    parent = None
                    if method == "plan":
                        plan_index = i if self.config.plan_mode == "plan-per-code" else 0
                        plan_row = plans.get((p.id, plan_index))
                        plan = extract_plan(plan_row["output"] or "") if plan_row else None
                        if plan_row is None or plan is None:
                            continue  # no usable plan (yet): the vote row says so
                        variables["plan"] = plan
                        parent = int(plan_row["id"])
                        payload["plan_index"] = plan_index
                        payload["plan_mode"] = self.config.plan_mode
                    yield WorkItem(
                        key=item_key(SOLVE, p.id, i, method),
                        stage=SOLVE,
                        role="solver",
                        model_ref=self.config.solver,
                        request=self._request(
                            version, self.config.solver, variables, temperature, i
                        ),
                        problem_id=p.id,
                        sample_index=i,
                        parent_id=parent,
                        payload=payload,
                    )

    def _resolve_items(
        self, store: Store, run_id: int, problems: list[Problem]
    ) -> Iterator[WorkItem]:
        mode = self.config.disagreement
        model_ref = self.config.selector or self.config.solver
        by_id = {p.id: p for p in problems}
        for row, candidates in resolve_inputs(store, run_id):
            problem = by_id.get(row["problem_id"])
            if problem is None:
                continue
            style = problem_style(problem, self.config)
            version = self.prompt(store, mode, style)
            variables: dict[str, Any] = {"question": problem.question, "candidates": candidates}
            if mode == "reflect":
                variables["answer_line"] = ANSWER_LINES[style]
            yield WorkItem(
                key=item_key(RESOLVE, problem.id, 0, mode),
                stage=RESOLVE,
                role="selector" if mode == "select" else "solver",
                model_ref=model_ref,
                request=self._request(
                    version, model_ref, variables, self.config.selector_temperature
                ),
                problem_id=problem.id,
                parent_id=int(row["id"]),
                payload={
                    "method": mode,
                    "style": style,
                    "prompt": version.label,
                    "candidates": [
                        {k: c[k] for k in ("label", "method", "answer", "sample_id")}
                        for c in candidates
                    ],
                },
            )

    # -- post-processing ------------------------------------------------------------------

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        if stage not in (SOLVE, RESOLVE):
            return
        problems = {p.id: p for p in self.problems(store)}
        if stage == SOLVE:
            process_solutions(store, run_id, problems, self.options())
        else:
            process_resolutions(store, run_id, problems, self.options())

    def reprocess(self, store: Store, run_id: int, *, rerun_programs: bool = False) -> None:
        """Parse, execute, grade and vote again from the stored outputs (no model calls).

        Programs are re-run only when their code changed, unless ``rerun_programs``
        (e.g. after changing sandbox limits).
        """
        problems = {p.id: p for p in self.problems(store)}
        process_solutions(store, run_id, problems, self.options(), force=rerun_programs)

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        return summarise_run(store, run_id, self.options())
