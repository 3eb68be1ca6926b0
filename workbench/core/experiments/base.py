"""The experiment contract: config -> stages -> work items -> post-processing.

An experiment is a declarative TOML config.  Its class lists stages; for each
stage it yields every work item (the engine skips those already finished, so
the same call serves a fresh run and a resume), then post-processes the
stored outputs (parse, validate, grade).  Post-processing reads only the store
and never calls a model, so it can be re-run after changing a grader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.engine.items import WorkItem
from workbench.core.library.problems import ProblemSelection
from workbench.core.store import Store


class ExperimentConfig(BaseModel):
    """Fields shared by every experiment kind; each kind subclasses with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    name: str = ""
    problems: ProblemSelection = ProblemSelection()
    budget_usd: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)  # cap over provider settings
    seed: int = 0
    # Set when a run is created (None before): the newest version id of every prompt
    # then in the store, so names an experiment picks itself (e.g. solve-gsm8k by problem
    # source) resolve to the same version on a resume.  Prompt fields then hold name@ID.
    prompt_pins: dict[str, int] | None = None


def is_prompt_field(name: str) -> bool:
    """The convention for config fields that hold prompt references.

    ``prompt``, ``prompts`` (a mapping of role -> reference) and ``*_prompt`` hold a
    name (its newest version), ``name@ID`` or a version id; a run pins them to
    ``name@ID`` when it is created.
    """
    return name in ("prompt", "prompts") or name.endswith("_prompt")


def prompt_fields(config_model: type[ExperimentConfig]) -> list[str]:
    """Names of a config model's prompt-reference fields, in declaration order."""
    return [name for name in config_model.model_fields if is_prompt_field(name)]


class Experiment(ABC):
    """Base for every experiment kind."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ExperimentConfig]]

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def stages(self) -> list[str]:
        """Stage names in execution order."""

    @abstractmethod
    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        """Every work item of ``stage`` (done ones included; the engine skips them)."""

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:  # noqa: B027
        """Parse / validate / grade the stage's stored outputs.  Must be re-runnable."""

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        """Headline numbers for the run (accuracy, recovery rate, ...)."""
        return {}


ContinuationChoice = Literal["raw", "prefill", "emulate", "auto"]
