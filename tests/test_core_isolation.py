"""workbench.core must never pull in textual or rich (checked in a fresh interpreter)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import workbench.core

# Imports every core module with textual and rich made unimportable (as harlequin checks
# sys.modules).  Blocking, rather than only inspecting sys.modules afterwards, keeps
# third-party optional imports out of the verdict: httpx loads rich for its CLI only
# when rich happens to be installed, and copes without it.
CHECK = """
import importlib, importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('textual', 'rich'):
            raise ModuleNotFoundError(f'blocked: {name}', name=name)
        return None

sys.meta_path.insert(0, Block())
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(name, 'needs', exc.name or exc)
        break
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich'})
if loaded:
    print('loaded anyway:', loaded)
"""


def core_modules() -> list[str]:
    root = Path(workbench.core.__file__).parent
    found = ["workbench.core"]
    for info in pkgutil.walk_packages([str(root)], prefix="workbench.core."):
        found.append(info.name)
    return found


def test_core_modules_found() -> None:
    names = core_modules()
    assert "workbench.core.store" in names
    assert "workbench.core.text.latex" in names


def test_core_never_imports_textual_or_rich() -> None:
    names = core_modules()
    result = subprocess.run(
        [sys.executable, "-c", CHECK, *names],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", result.stdout.strip()
