"""Straight-shot calibration: N seeded samples per problem per model, graded, binned.

One stage, ``solve``.  Post-processing grades every sample that has no grade
from the current grader yet (so a new grader re-grades without model calls),
then recomputes each (problem, model) solve rate and writes its difficulty bin
to the ``difficulty`` table, where problem filters and later experiments read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from workbench.core.analysis import queries
from workbench.core.analysis import rates as analysis
from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import Experiment, ExperimentConfig, renamed
from workbench.core.grading import GRADER_NAME, grade_many, store_grades
from workbench.core.library.problems import selected_problems
from workbench.core.payloads import SolvePayload
from workbench.core.prompts import PromptTemplate, resolve_version
from workbench.core.providers import split_model_ref
from workbench.core.settings import BinSettings, Settings
from workbench.core.store import Store

SOLVE = "solve"
SOLVER_ROLE = analysis.SOLVER_ROLE


class CalibrationConfig(ExperimentConfig):
    kind: Literal["calibration"] = "calibration"
    solvers: tuple[str, ...] = Field(min_length=1, validation_alias=renamed("solvers", "models"))
    samples: int = Field(default=5, ge=1, le=1000)  # N per problem per model
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)  # None: the prompt's default
    prompt: str | None = None  # None: solve-math for MATH-style problems, else solve-gsm8k
    bins: BinSettings | None = None  # None: the workspace's [bins]
    grade_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("solvers")
    @classmethod
    def _refs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for ref in v:
            provider, _, model = ref.partition(":")
            if not provider or not model:
                raise ValueError(f"'{ref}' must be written provider:model")
        if len(set(v)) != len(v):
            raise ValueError("a model is listed twice")
        return v


class CalibrationExperiment(Experiment):
    kind: ClassVar[str] = "calibration"
    config_model: ClassVar[type[ExperimentConfig]] = CalibrationConfig
    config: CalibrationConfig

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.bins = BinSettings()

    def use_settings(self, settings: Settings) -> None:
        """The runner passes the workspace settings (for the default bins)."""
        self.bins = self.config.bins or settings.bins

    def stages(self) -> list[str]:
        return [SOLVE]

    def items(self, stage: str, store: Store, run_id: int) -> Iterator[WorkItem]:
        c = self.config
        problems = selected_problems(store, c.problems)
        templates: dict[str, tuple[int, PromptTemplate]] = {}
        overrides: dict[str, Any] = {"temperature": c.temperature}
        if c.max_tokens is not None:
            overrides["max_tokens"] = c.max_tokens
        models = [(ref, split_model_ref(ref)[1]) for ref in c.solvers]
        for problem in problems:
            name = c.prompt or problem.solve_prompt
            if name not in templates:
                version = resolve_version(store, name)
                templates[name] = (version.id, version.template)
            version_id, template = templates[name]
            rendered = template.render(question=problem.question)
            for ref, model in models:
                for i in range(c.samples):
                    request = rendered.request(
                        model, template.defaults, seed=c.seed + i, **overrides
                    )
                    yield WorkItem(
                        key=item_key(SOLVE, problem.id, i, ref),
                        stage=SOLVE,
                        role=SOLVER_ROLE,
                        model_ref=ref,
                        request=request,
                        problem_id=problem.id,
                        sample_index=i,
                        payload=SolvePayload(prompt_version=version_id),
                    )

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        rows = store.query(
            """
            SELECT s.id, s.output, p.answer
            FROM samples s JOIN problems p ON p.id = s.problem_id
            LEFT JOIN grades g ON g.sample_id = s.id AND g.grader = ?
            WHERE s.run_id = ? AND s.stage = ? AND s.status = 'done' AND g.id IS NULL
            ORDER BY s.id
            """,
            (GRADER_NAME, run_id, SOLVE),
        )
        if rows:
            grades = grade_many(
                [(r["output"] or "", r["answer"]) for r in rows],
                timeout_s=self.config.grade_timeout_s,
            )
            store_grades(
                store, [(r["id"], r["answer"], g) for r, g in zip(rows, grades, strict=True)]
            )
        outcomes = queries.load_outcomes(store, run_id, stage=SOLVE, grader=GRADER_NAME)
        rates = analysis.solve_rates(outcomes)
        queries.write_difficulty(store, analysis.difficulty_rows(rates, self.bins), run_id=run_id)

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        outcomes = queries.load_outcomes(store, run_id, stage=SOLVE, grader=GRADER_NAME)
        rates = analysis.solve_rates(outcomes)
        bins: dict[str, dict[str, int]] = {}
        for row in analysis.difficulty_rows(rates, self.bins):
            per = bins.setdefault(row.model, {name: 0 for name in self.bins.names})
            per[row.bin] += 1
        summary: dict[str, Any] = {}
        for acc in analysis.model_accuracy(outcomes):
            r = acc.accuracy
            summary[acc.model] = {
                "accuracy": r.rate,
                "interval": (r.low, r.high),
                "correct": r.k,
                "graded": r.n,
                "ungraded": acc.n_ungraded,
                "problems": acc.n_problems,
                "bins": bins.get(acc.model, {}),
            }
        return {"models": summary}
