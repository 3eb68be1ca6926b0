"""Re-record ``workbench/data/recorded/csv-tips.json.gz`` from the stub conversations.

Run it when the CSV stages or the stub conversations change:
``.venv/bin/python -m tests.record_csv_demo``; ``tests/test_tables_screen.py`` checks the
shipped recording still matches what a fresh run produces.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.csv_stub import build_csv_run
from workbench.core.csv_agent.recorded import dump_run, write_recording
from workbench.core.store import Store


def record() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(build_csv_run(Path(folder)))
        try:
            return dump_run(store, 1)
        finally:
            store.close()


if __name__ == "__main__":
    write_recording(record())
