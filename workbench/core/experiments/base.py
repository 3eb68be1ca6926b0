"""The experiment contract: config -> stages -> work items -> post-processing.

An experiment is a declarative TOML config.  Its class lists stages; for each
stage it yields every work item (the engine skips those already finished, so
the same call serves a fresh run and a resume), then post-processes the
stored outputs (parse, validate, grade).  Post-processing reads only the store
and never calls a model, so it can be re-run after changing a grader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from workbench.core.engine import WorkItem
from workbench.core.library import ProblemSelection
from workbench.core.store import Store


def renamed(name: str, *old: str) -> AliasChoices:
    """A field's validation alias: its canonical ``name``, or an ``old`` name it had.

    Configs written before the rename keep loading; a config that gives two of the
    names is an error (``ExperimentConfig`` checks).
    """
    return AliasChoices(name, *old)


def former_names(config_model: type[BaseModel], name: str) -> list[str]:
    """The old names a config field also answers to (``renamed``); [] for none."""
    info = config_model.model_fields.get(name)
    alias = info.validation_alias if info is not None else None
    if not isinstance(alias, AliasChoices):
        return []
    return [a for a in alias.choices if isinstance(a, str) and a != name]


class StageOptions(BaseModel):
    """Per-stage options (``[stages.NAME]`` in a config): how the stage is sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "batch": the stage's requests go out as provider batches (half price, up to 24 h)
    mode: Literal["sync", "batch"] = "sync"


class ExperimentConfig(BaseModel):
    """Fields shared by every experiment kind; each kind subclasses with its own.

    One name per role across kinds: the model that solves is ``solver`` (``solvers``
    when there are several), the number of samples per item is ``samples``.  Older
    names (``model``, ``weak``, ``k``, ``n_weak``, ...) are accepted as aliases.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
    # per stage: [stages.continue] mode = "batch" (docs/scale.md); stage names are checked
    # against the experiment's stages before any spend
    stages: dict[str, StageOptions] = Field(default_factory=dict)
    # items a batch stage could not finish (errors after their batch attempts): "sync"
    # sends them again as ordinary requests; "none" leaves them failed
    batch_fallback: Literal["none", "sync"] = "none"

    def batch_stages(self) -> list[str]:
        return [name for name, opts in self.stages.items() if opts.mode == "batch"]

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_field(cls, data: Any) -> Any:
        """Reject a config that names one field twice (new name and old, or two old)."""
        if isinstance(data, Mapping):
            for name in cls.model_fields:
                given = [a for a in (name, *former_names(cls, name)) if a in data]
                if len(given) > 1:
                    raise ValueError(
                        f"{name}: given as {' and '.join(given)}; give it once, as {name}"
                    )
        return data


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

    def stage_roles(self, stage: str) -> tuple[str, ...] | None:
        """The roles (``CallPlan.role``) whose models ``stage`` calls; None: not known, so
        a batch-mode stage is checked against every model the config names."""
        return None

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


# -- draws and the cache ---------------------------------------------------------------
#
# The rule: two work items share a cache key only when they are meant to be the same
# draw.  The key covers the full request (seed included) and the sample index, so two
# stages that send the same prompt to the same model (the too-easy check and the
# continuations when the perturber is also the completer) would otherwise reuse each
# other's answers: a continuation would be a copy of a check that selection already
# required to be wrong.  Each such stage therefore draws its seeds from its own stream.
# Stages whose requests differ anyway (control continues a different prefix, on-policy
# continues a calibration trace, judges and resolvers see new text, vote rows make no
# call) get a stream too where it is cheap, so the rule never rests on prompt wording.

#: seed streams of stages that must be independent of the measured draws
SEED_STREAMS: dict[str, int] = {"check": 1, "control": 2}
#: distance between streams: far above any sample count, well inside 32 bits
SEED_STRIDE = 1_000_000


def draw_seed(seed: int, index: int, stream: str = "") -> int:
    """The seed of draw ``index`` of a stage: ``seed + index`` in the main stream,
    offset by ``SEED_STRIDE`` per stream for stages listed in ``SEED_STREAMS``."""
    return seed + index + SEED_STREAMS.get(stream, 0) * SEED_STRIDE
