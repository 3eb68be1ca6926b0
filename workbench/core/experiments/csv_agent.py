"""The CSV agent experiment: generate questions, answer with hint, best-of-n, verify.

The stages' work lives in ``core/csv_agent`` (``pipeline.Pipeline``); this module is
the config and the ``Experiment`` face the runner drives.  Each stage runs as rounds
of one turn per conversation (``csv_answer_hint#3`` is its third turn).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from workbench.core.engine import WorkItem
from workbench.core.experiments.base import Experiment, ExperimentConfig, renamed
from workbench.core.settings import Settings
from workbench.core.store import Store

if TYPE_CHECKING:  # the pipeline imports pandas: loaded when a CSV run is made, not at start-up
    from workbench.core.csv_agent.pipeline import Pipeline, PipelineOptions

StageName = Literal["csv_generate", "csv_answer_hint", "csv_best_of_n"]


class CsvAgentConfig(ExperimentConfig):
    kind: Literal["csv_agent"] = "csv_agent"
    tables: tuple[str, ...] = ()  # stored tables to generate on: name, id or sha256 prefix
    teacher: str
    answerer: str | None = None  # default: the teacher
    student: str | None = Field(default=None, validation_alias=renamed("student", "solver"))
    # which of the pipeline's stages run (``stages`` is every kind's per-stage options)
    run_stages: tuple[StageName, ...] = ("csv_generate", "csv_answer_hint", "csv_best_of_n")
    questions_per_table: int = Field(default=5, ge=1, le=50)
    explore_turns: int = Field(default=8, ge=0, le=50)
    generate_samples: int = Field(default=1, ge=1, le=20)
    hint_samples: int = Field(default=1, ge=1, le=20)
    samples: int = Field(default=8, ge=1, le=256)  # best-of-n attempts per question
    teacher_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_turns: int = Field(default=12, ge=1, le=100)
    tool_error_limit: int = Field(default=5, ge=1, le=100)
    max_rows: int = Field(default=20, ge=1, le=1000)
    max_chars: int = Field(default=4000, ge=100, le=200_000)
    max_tokens: int = Field(default=2048, ge=16)
    check_fragile: bool = True
    max_retries: int = Field(default=1, ge=0, le=5)  # rejected questions back to the teacher
    min_overlap: float = Field(default=0.5, ge=0.0, le=1.0)
    max_table_workers: int = Field(default=4, ge=1, le=64)
    questions_run: int | None = Field(default=None, ge=1)  # answer that run's questions
    tool_wall_s: float = Field(default=5.0, gt=0, le=120)
    tool_cpu_s: float = Field(default=5.0, gt=0, le=120)
    tool_memory_mb: int = Field(default=2048, ge=256)
    frame_mb: float = Field(default=256, gt=0)

    @field_validator("teacher", "answerer", "student")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        if v is not None:
            provider, _, model = v.partition(":")
            if not provider or not model:
                raise ValueError(f"'{v}' must be written provider:model")
        return v

    @model_validator(mode="after")
    def _source(self) -> CsvAgentConfig:
        if "csv_generate" in self.run_stages and not self.tables:
            raise ValueError("tables: csv_generate needs at least one table")
        if self.questions_run is not None and "csv_generate" in self.run_stages:
            raise ValueError("questions_run: answers another run's questions; drop csv_generate")
        return self

    def options(self) -> PipelineOptions:
        from workbench.core.csv_agent.pipeline import PipelineOptions
        from workbench.core.csv_agent.worker import WorkerLimits

        return PipelineOptions(
            tables=self.tables,
            teacher=self.teacher,
            answerer=self.answerer or self.teacher,
            student=self.student or self.answerer or self.teacher,
            stages=tuple(self.run_stages),
            questions_per_table=self.questions_per_table,
            explore_turns=self.explore_turns,
            generate_samples=self.generate_samples,
            hint_samples=self.hint_samples,
            samples=self.samples,
            teacher_temperature=self.teacher_temperature,
            temperature=self.temperature,
            max_turns=self.max_turns,
            tool_error_limit=self.tool_error_limit,
            max_rows=self.max_rows,
            max_chars=self.max_chars,
            max_tokens=self.max_tokens,
            seed=self.seed,
            check_fragile=self.check_fragile,
            max_retries=self.max_retries,
            min_overlap=self.min_overlap,
            max_table_workers=self.max_table_workers,
            questions_run=self.questions_run,
            worker=WorkerLimits(
                wall_s=self.tool_wall_s,
                cpu_s=self.tool_cpu_s,
                memory_mb=self.tool_memory_mb,
                frame_mb=self.frame_mb,
            ),
        )


class CsvAgentExperiment(Experiment):
    kind: ClassVar[str] = "csv_agent"
    config_model: ClassVar[type[ExperimentConfig]] = CsvAgentConfig
    config: CsvAgentConfig

    def __init__(self, config: ExperimentConfig) -> None:
        from workbench.core.csv_agent.pipeline import Pipeline

        super().__init__(config)
        self.pipeline: Pipeline = Pipeline(self.config.options())

    def use_settings(self, settings: Settings) -> None:
        """Refuse models that cannot call tools before anything is sent."""
        self.pipeline.check_models({n: p.kind for n, p in settings.providers.items()})

    def stages(self) -> list[str]:
        return self.pipeline.rounds()

    def items(self, stage: str, store: Store, run_id: int) -> Iterator[WorkItem]:
        return self.pipeline.items(store, run_id, self.pipeline.base_stage(stage))

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        self.pipeline.after_round(store, run_id, stage)
        if stage == self.stages()[-1]:
            self.pipeline.close()  # no worker outlives the run

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        from workbench.core.csv_agent.pipeline import (
            ANSWER_HINT,
            BEST_OF_N,
            question_rows,
            stage_scores,
        )

        rows = question_rows(store, run_id)
        reasons: dict[str, int] = {}
        for r in rows:
            status = str(r["payload"].get("status"))
            reasons[status] = reasons.get(status, 0) + 1
        out: dict[str, Any] = {"questions": reasons}
        for stage in (ANSWER_HINT, BEST_OF_N):
            s = stage_scores(store, run_id, stage, ks=(1, self.config.samples))
            out[stage] = {
                "conversations": s.conversations,
                "kept": s.kept,
                "abq": s.scores.abq,
                "pasq": s.scores.pasq,
                "uasq": s.scores.uasq,
                "parse_rate": s.scores.parse_rate,
                "stop_reasons": s.stop_reasons,
            }
        return out
