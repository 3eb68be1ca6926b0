"""Perturbation: choose a step and an error type (taxonomy), validate the rewrite, truncate."""

from workbench.core.perturb.plan import (
    build_prefix,
    check_and_truncate,
    perturb_variables,
    plan_perturbation,
)
from workbench.core.perturb.taxonomy import load_taxonomy
from workbench.core.perturb.typecheck import apparent_error_types, type_mismatch

__all__ = [
    "apparent_error_types",
    "build_prefix",
    "check_and_truncate",
    "load_taxonomy",
    "perturb_variables",
    "plan_perturbation",
    "type_mismatch",
]
