"""Output into a pipe whose reader went away (``workbench run ... | head``)."""

from __future__ import annotations

import os
import sys


def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader closed the pipe, and Python would otherwise
    report the BrokenPipeError again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured): nothing to silence
        pass
