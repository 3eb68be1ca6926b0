"""Compare two runs side by side from Runs, keys only, and open a disagreement's traces."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static

from tests.trace_data import build_calibration_run, build_recovery_run
from workbench.core.analysis import load_outcomes, paired_comparison, run_metrics
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.core.views.compare import compare_runs
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.traces import TracesScreen

SIZE = (100, 30)


def two_runs(db: Path) -> tuple[int, int]:
    """Two calibration runs on the same problems; run B flips the first problems' grades."""
    with Store(db) as store:
        build_recovery_run(store, n_problems=6, k=1)  # the problems
        a = build_calibration_run(store, n_problems=6, samples=3)
        b = build_calibration_run(store, n_problems=6, samples=3)
        with store.transaction() as conn:
            conn.execute(
                "UPDATE grades SET correct = 1 - correct WHERE sample_id IN (SELECT id FROM"
                " samples WHERE run_id = ? AND problem_id IN ('syn/000001', 'syn/000002'))",
                (b,),
            )
    return a, b


def build(db: Path) -> WorkbenchApp:
    settings = Settings()
    return make_app(Store(db), ProviderRegistry(settings), settings)


async def settle(app: WorkbenchApp, pilot: object) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


def test_the_read_model_matches_the_metrics_layer_and_the_cli_test(tmp_path: Path) -> None:
    a, b = two_runs(tmp_path / "wb.db")
    with Store(tmp_path / "wb.db") as store:
        c = compare_runs(store, a, b)
        ma, mb = run_metrics(store, a), run_metrics(store, b)
        cli = paired_comparison(load_outcomes(store, a), load_outcomes(store, b))
    assert c.paired is not None and c.paired.p_value == cli.p_value
    assert (c.paired.a_only, c.paired.b_only) == (cli.a_only, cli.b_only)
    assert len(c.disagreements) == cli.a_only + cli.b_only == 6
    for m in c.metrics:
        assert m.a == ma.get(m.name, m.key).rate  # type: ignore[union-attr]
        assert m.b == mb.get(m.name, m.key).rate  # type: ignore[union-attr]
        assert m.a is not None and m.b is not None
        assert m.difference == (m.a.k / m.a.n) - (m.b.k / m.b.n)


async def test_compare_two_runs_and_open_a_disagreement(tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    a, b = two_runs(db)
    app = build(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        keys = [k.value for k in runs.query_one("#runs-table", DataTable).rows]
        await pilot.press(*["down"] * keys.index(str(a)))
        assert runs.selected_run_id() == a
        await pilot.press("v")  # B from the other runs
        await pilot.press(*["down"] * [k for k in keys if k != str(a)].index(str(b)), "enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.comparison is not None
        title = str(screen.query_one("#compare-title", Static).render())
        assert f"A = #{a} calib" in title and f"B = #{b} calib" in title
        metrics = screen.query_one("#compare-metrics", DataTable)
        first = [str(cell) for cell in metrics.get_row_at(0)]
        m = screen.comparison.metrics[0]
        assert first[0] == m.label and "[" in first[1] and first[3].endswith("%")
        paired = str(screen.query_one("#compare-paired", Static).render())
        assert "McNemar exact p" in paired and "A only" in paired
        table = screen.query_one("#compare-disagreements", DataTable)
        assert table.row_count == 6 and table.has_focus
        await pilot.press("down", "enter")  # the second disagreement, run A's side
        await settle(app, pilot)
        traces = app.screen
        assert isinstance(traces, TracesScreen)
        d = screen.comparison.disagreements[1]
        assert traces.run_id == a and traces.view is not None
        assert traces.view.sample_id == d.a_sample_id
        # back in Runs the comparison is still there; B opens run B's sample
        await pilot.press("3")
        await settle(app, pilot)
        assert app.screen is screen
        await pilot.press("B")
        await settle(app, pilot)
        assert isinstance(app.screen, TracesScreen) and app.screen.run_id == b
        assert app.screen.view is not None and app.screen.view.sample_id == d.b_sample_id
