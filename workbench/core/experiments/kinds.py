"""Every experiment kind by its config ``kind`` name (a static table, so tools see each edge)."""

from __future__ import annotations

from workbench.core.experiments.base import Experiment
from workbench.core.experiments.calibration import CalibrationExperiment
from workbench.core.experiments.csv_agent import CsvAgentExperiment
from workbench.core.experiments.methods.experiment import MethodsExperiment
from workbench.core.experiments.mistakes.backtrack import BacktrackExperiment
from workbench.core.experiments.mistakes.finding import MistakeFindingExperiment
from workbench.core.experiments.playground import PerturbPreview
from workbench.core.experiments.recovery.off_policy import RecoveryExperiment
from workbench.core.experiments.recovery.on_policy import OnPolicyExperiment
from workbench.core.experiments.recovery.weak_prefix import WeakPrefixExperiment

_ALL: tuple[type[Experiment], ...] = (
    CalibrationExperiment,
    RecoveryExperiment,
    WeakPrefixExperiment,
    OnPolicyExperiment,
    MethodsExperiment,
    MistakeFindingExperiment,
    BacktrackExperiment,
    PerturbPreview,
    CsvAgentExperiment,
)

KINDS: dict[str, type[Experiment]] = {cls.kind: cls for cls in _ALL}


def experiment_kinds(*, launchable: bool = False) -> dict[str, type[Experiment]]:
    """Kinds by name; ``launchable`` leaves out internal ones (the prompt preview)."""
    if not launchable:
        return dict(KINDS)
    return {k: v for k, v in KINDS.items() if not k.endswith("preview")}
