"""Export a run from Runs, Traces and the palette, keys only, in every format the CLI writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.trace_data import build_recovery_run
from workbench.core.analysis import export
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.export_dialog import ExportDialog
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.traces import TracesScreen

SIZE = (100, 30)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "wb.db"
    with Store(db) as store:
        run_id = build_recovery_run(store, n_problems=4, k=2)
    return db, run_id


def build(db: Path) -> WorkbenchApp:
    settings = Settings()
    return make_app(Store(db), ProviderRegistry(settings), settings)


async def settle(app: WorkbenchApp, pilot: object) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


def report(app: WorkbenchApp) -> str:
    return str(app.screen.query_one("#export-report", Static).render())


async def choose(pilot: object, widget: str, downs: int) -> None:
    """Open a Select (focused by ``widget`` focus order) and move ``downs`` options down."""
    await pilot.press("enter", *["down"] * downs, "enter")  # type: ignore[attr-defined]


async def test_export_samples_from_runs_as_csv(run: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = run
    app = build(db)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("runs")
        await settle(app, pilot)
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        full = dialog.query_one("#export-full-path", Static)
        assert str(tmp_path / "exports" / f"run-{run_id}-samples.jsonl") in str(full.render())
        await pilot.press("shift+tab", "shift+tab")  # path -> stage -> format
        await choose(pilot, "format", 1)  # csv: the path follows the format
        assert dialog.query_one("#export-path", Input).value == f"exports/run-{run_id}-samples.csv"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        out = tmp_path / "exports" / f"run-{run_id}-samples.csv"
        with Store(db) as store:
            n = sum(1 for _ in export.iter_sample_rows(store, run_id))
        assert f"wrote {n:,} samples rows of run {run_id} to {out}" in report(app)
        with out.open(newline="") as fh:
            assert len(list(csv.DictReader(fh))) == n
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_export_tables_from_traces_to_an_edited_path(
    run: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = run
    app = build(db)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("traces")
        await settle(app, pilot)
        assert isinstance(app.screen, TracesScreen) and app.screen.run_id == run_id
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        await pilot.press("shift+tab", "shift+tab", "shift+tab")  # to "what"
        await choose(pilot, "what", 1)  # tables
        await pilot.press("tab", "tab")  # format -> (stage is disabled) path
        path = dialog.query_one("#export-path", Input)
        assert path.value == f"exports/run-{run_id}-tables.jsonl"
        await pilot.press("ctrl+u", *"out/t.jsonl", "enter")
        await settle(app, pilot)
        out = tmp_path / "out" / "t.jsonl"
        assert f"to {out}" in report(app)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert any(r["table"] == "metrics" for r in rows)
        # tables in parquet is refused in one line, before anything is written
        await pilot.press("shift+tab")
        await choose(pilot, "format", 2)
        await pilot.press("ctrl+s")
        assert "analysis tables export as jsonl or csv" in report(app)


async def test_export_every_format_from_the_palette(run: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = run
    app = build(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"runs: export", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ExportDialog)
        for downs, fmt in enumerate(("jsonl", "csv", "parquet", "dataset")):
            await pilot.press("shift+tab", "shift+tab")
            await choose(pilot, "format", downs if downs == 0 else 1)
            await pilot.press("tab", "tab", "enter")
            await settle(app, pilot)
            assert f"to {tmp_path / 'exports'}" in report(app), (fmt, report(app))
        assert (tmp_path / "exports" / f"run-{run_id}-samples.parquet").is_file()
        assert (tmp_path / "exports" / f"run-{run_id}-samples").is_dir()
