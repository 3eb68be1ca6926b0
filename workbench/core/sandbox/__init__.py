"""Model-written code run in a jailed, limited subprocess (``child.py`` runs inside it)."""

from workbench.core.sandbox.jail import Isolation, JailStatus, jail_status
from workbench.core.sandbox.supervisor import (
    Limits,
    SandboxResult,
    ScriptLaunch,
    isolation_for,
    kill_process_group,
    run_code,
    run_many,
    script_launch,
)

__all__ = [
    "Isolation",
    "JailStatus",
    "Limits",
    "SandboxResult",
    "ScriptLaunch",
    "isolation_for",
    "jail_status",
    "kill_process_group",
    "run_code",
    "run_many",
    "script_launch",
]
