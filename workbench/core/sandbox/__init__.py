"""Model-written code run in a limited subprocess (``child.py`` runs inside it)."""

from workbench.core.sandbox.supervisor import Limits, SandboxResult, run_code, run_many

__all__ = ["Limits", "SandboxResult", "run_code", "run_many"]
