"""Start-up weight: what a user waits for before anything happens.

Each measure runs in a fresh process (best of 5 wall times, peak RSS of that run), next to a
baseline measured the same way in the same run:

- ``workbench --help`` against ``import textual`` (target < 0.2 s, < 60 MiB);
- ``workbench runs`` on an empty workspace;
- the TUI from process start to its first paint against a minimal Textual app (target < 0.4 s).

Run: .venv/bin/python bench/startup.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
REPEATS = 5

# The app runs headless and prints the wall clock at its first refresh after the home screen
# mounted (the time a user waits until the first screen is drawn), then exits.
FIRST_PAINT_WORKBENCH = """
import sys, time
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import open_store
from workbench.tui.app import make_app

settings = Settings()
app = make_app(open_store(sys.argv[1]), ProviderRegistry(settings), settings)
app.call_after_refresh(lambda: (print(time.time(), flush=True), app.exit()))
app.run(headless=True, size=(160, 48))
"""

FIRST_PAINT_MINIMAL = """
import time
from textual.app import App
from textual.widgets import Footer, Header, Static

class Minimal(App[None]):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

app = Minimal()
app.call_after_refresh(lambda: (print(time.time(), flush=True), app.exit()))
app.run(headless=True, size=(160, 48))
"""


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, from wait4) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{argv} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def first_paint(argv: list[str]) -> tuple[float, float]:
    """Best seconds from spawn to the first paint the child reports, with its peak RSS."""
    best = (float("inf"), 0.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(REPEATS):
        t0 = time.time()
        proc = subprocess.run(argv, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
        painted = float(proc.stdout.split()[-1])
        best = min(best, (painted - t0, run_once(argv)[1]))
    return best


def measure(argv: list[str]) -> tuple[float, float]:
    """Best wall seconds over REPEATS fresh processes, with that run's peak RSS."""
    return min(run_once(argv) for _ in range(REPEATS))


def row(
    label: str,
    argv: list[str],
    base_label: str,
    base_argv: list[str],
    target: str,
    how: Callable[[list[str]], tuple[float, float]] = measure,
) -> None:
    wall, rss = how(argv)
    base_wall, base_rss = how(base_argv)
    print(
        f"{label:<34} {wall:6.3f} s {rss:6.1f} MiB | {base_label:<22} {base_wall:6.3f} s "
        f"{base_rss:6.1f} MiB | ratio {wall / base_wall:4.2f}x | target {target}"
    )


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; best of {REPEATS} fresh processes")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "empty.db")
        make_empty = (
            "import sys; from workbench.core.store import open_store; open_store(sys.argv[1])"
        )
        run_once([PY, "-c", make_empty, db])
        row(
            "workbench --help",
            [PY, "-m", "workbench", "--help"],
            "import textual",
            [PY, "-c", "import textual.app"],
            "< 0.2 s, < 60 MiB",
        )
        row(
            "workbench runs (empty workspace)",
            [PY, "-m", "workbench", "--db", db, "runs"],
            "import textual",
            [PY, "-c", "import textual.app"],
            "-",
        )
        row(
            "TUI start to first paint",
            [PY, "-c", FIRST_PAINT_WORKBENCH, db],
            "minimal Textual app",
            [PY, "-c", FIRST_PAINT_MINIMAL],
            "< 0.4 s",
            how=first_paint,
        )


if __name__ == "__main__":
    main()
