"""Model-written code run in a jailed, limited subprocess (``child.py`` runs inside it)."""

from workbench.core.sandbox.jail import Isolation, JailStatus, jail_status
from workbench.core.sandbox.supervisor import (
    Limits,
    SandboxResult,
    isolation_for,
    run_code,
    run_many,
)

__all__ = [
    "Isolation",
    "JailStatus",
    "Limits",
    "SandboxResult",
    "isolation_for",
    "jail_status",
    "run_code",
    "run_many",
]
