"""Experiments: a TOML config -> stages -> work items -> post-processing, and the runner.

Kinds live in ``kinds.KINDS``; ``runner`` loads configs, pins prompts and runs
stages through the engine.
"""

from workbench.core.experiments.base import Experiment, ExperimentConfig
from workbench.core.experiments.kinds import KINDS, experiment_kinds
from workbench.core.experiments.runner import (
    RunSettings,
    create_checked_run,
    load_experiment_config,
    make_experiment,
    run_experiment,
)

__all__ = [
    "KINDS",
    "Experiment",
    "ExperimentConfig",
    "RunSettings",
    "create_checked_run",
    "experiment_kinds",
    "load_experiment_config",
    "make_experiment",
    "run_experiment",
]
