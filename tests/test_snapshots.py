"""Screenshots of key screens (pytest-textual-snapshot); ``--snapshot-update`` to accept changes.

Deterministic: a relative database path (so no tmp folder name shows), a
fixed dataset, workers awaited before the screenshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.problem_fixtures import fill_library
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store, open_store
from workbench.tui.app import WorkbenchApp, make_app

SIZE = (120, 40)
SnapCompare = Callable[..., bool]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.chdir(tmp_path)
    with open_store("workbench.db") as store:
        yield store


def build(store: Store) -> WorkbenchApp:
    settings = Settings()
    return make_app(store, ProviderRegistry(settings), settings)


def after(*keys: str) -> Callable[[Pilot[Any]], Any]:
    """Press ``keys``, letting workers finish after each one."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    # a blinking cursor is captured on or off by chance: hold it still
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_home_empty_state(snap_compare: SnapCompare, workspace: Store) -> None:
    assert snap_compare(build(workspace), terminal_size=SIZE, run_before=after())


def test_problems_table_with_details(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 24)
    app = build(workspace)
    assert snap_compare(
        app, terminal_size=SIZE, run_before=after("1", "slash", *"Find", "enter", "down", "enter")
    )


def test_problems_help(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 5)
    app = build(workspace)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("1", "question_mark"))


def test_run_builder_shows_the_focused_field(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 6)
    app = build(workspace)

    async def run_before(pilot: Pilot[Any]) -> None:
        from workbench.tui.screens.run_builder import RunBuilderScreen

        await settle(pilot)
        for key in ("3", "n", "tab", "tab", "tab", "2"):  # onto "limit", typing 2
            await pilot.press(key)
        builder = pilot.app.screen
        assert isinstance(builder, RunBuilderScreen)
        if builder._debounce is not None:  # plan now, not after the typing pause
            builder._debounce.stop()
        builder._replan()
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


#: the two sizes every changed screen is drawn at: usable at 100x30, good at 160x48
SIZES = [pytest.param((100, 30), id="100x30"), pytest.param((160, 48), id="160x48")]


@pytest.mark.parametrize("size", SIZES)
def test_compare_two_runs(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    from tests.trace_data import build_calibration_run, build_recovery_run

    build_recovery_run(workspace, n_problems=6, k=1)
    a = build_calibration_run(workspace, n_problems=6, samples=3)
    b = build_calibration_run(workspace, n_problems=6, samples=3)
    with workspace.transaction() as conn:
        conn.execute(
            "UPDATE grades SET correct = 1 - correct WHERE sample_id IN (SELECT id FROM samples"
            " WHERE run_id = ? AND problem_id = 'syn/000002')",
            (b,),
        )
    app = build(workspace)

    async def run_before(pilot: Pilot[Any]) -> None:
        from workbench.tui.messages import OpenCompare

        await settle(pilot)
        pilot.app.post_message(OpenCompare(a, b))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_import_dialog_report(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    Path("data").mkdir()
    rows = ['{"question": "1+1?", "answer": "2\\n#### 2"}', "{broken", '{"question": "x"}']
    Path("data/mine.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    app = build(workspace)

    async def run_before(pilot: Pilot[Any]) -> None:
        from workbench.tui.import_dialog import ImportDialog

        await settle(pilot)
        pilot.app.push_screen(ImportDialog("data/m"))
        await settle(pilot)
        await pilot.press("end", "i")  # "data/mi" -> the suggestion "data/mine.jsonl"
        await settle(pilot)
        await pilot.press("right", "enter")  # accept it, import
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_run_builder_settings_tab(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    fill_library(workspace, 6)
    app = build(workspace)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("3", "n")
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_plots_chosen_bar(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    """Recovery by bin with the second bar chosen: its numbers and its traces key."""
    from tests.trace_data import build_calibration_run, build_recovery_run

    build_recovery_run(workspace, n_problems=9, k=4)
    build_calibration_run(workspace, n_problems=9, samples=4)
    app = build(workspace)
    keys = ("5", "R", "down", "enter", "b", "right_square_bracket")  # run 1, not the latest
    assert snap_compare(app, terminal_size=size, run_before=after(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_traces_request_dialog(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    import json

    from tests.trace_data import build_recovery_run
    from workbench.core.providers.base import Message, ModelRequest

    build_recovery_run(workspace, n_problems=3, k=1)
    request = ModelRequest(
        model="completer",
        messages=(Message("user", "Continue the solution. [pricing] stays as typed."),),
        system="You are careful.",
        prefix="Step 1: 3 + 4 = 8.",
        temperature=0.7,
        max_tokens=256,
    )
    with workspace.transaction() as conn:
        conn.execute("UPDATE calls SET request=?", (json.dumps(request.to_json()),))
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("4", "d"))


@pytest.mark.parametrize("size", SIZES)
def test_problems_screen_sizes(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    fill_library(workspace, 24)
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("1"))


@pytest.mark.parametrize("size", SIZES)
def test_runs_with_a_failed_run(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    from tests.trace_data import build_calibration_run, build_recovery_run
    from workbench.core.status import RunStatus

    build_recovery_run(workspace, n_problems=6, k=2)
    build_calibration_run(workspace, n_problems=6, samples=3)
    run = workspace.create_run("[pricing] check of a very long run name indeed", "recovery", {})
    workspace.set_run_status(run, RunStatus.FAILED, error="no price for stub:new in [pricing]")
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("3"))


@pytest.mark.parametrize("size", SIZES)
def test_monitor_of_a_failed_run(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    from tests.trace_data import build_recovery_run
    from workbench.core.status import RunStatus

    run = build_recovery_run(workspace, n_problems=4, k=2)
    workspace.set_run_status(run, RunStatus.FAILED, error="no price for stub:new in [pricing]")
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("3", "enter"))


def _methods_run(store: Store) -> int:
    """A small methods run written directly: three methods on one problem and its vote."""
    import json

    from tests.trace_data import build_recovery_run
    from workbench.core.store import now_iso

    build_recovery_run(store, n_problems=2, k=1)  # the problems
    run = store.create_run("methods toy", "methods", {})
    pid, ts = "syn/000001", now_iso()
    answers = {"cot": ("4", True), "pal": ("5", False), "plan": ("4", True)}
    ids = {}
    with store.transaction():
        for i, (method, (answer, _)) in enumerate(answers.items()):
            ids[method] = store.insert(
                "samples",
                {
                    "run_id": run, "stage": "solve", "item_key": f"solve/{pid}/0/{method}",
                    "problem_id": pid, "sample_index": i, "role": "solver", "model": "stub:m",
                    "status": "done", "output": f"... so the answer is {answer}.",
                    "payload": json.dumps({"method": method, "answer": answer}),
                    "created_at": ts, "updated_at": ts,
                },
            )  # fmt: skip
        per_method = {
            m: {"answer": a, "count": 1, "total": 1, "correct": ok, "sample_id": ids[m]}
            for m, (a, ok) in answers.items()
        }
        vote = {"status": "majority", "methods": per_method, "answer": "4", "correct": True}
        vote |= {"resolution": {"how": "vote"}}
        store.insert(
            "samples",
            {
                "run_id": run, "stage": "vote", "item_key": f"vote/{pid}", "problem_id": pid,
                "sample_index": 0, "role": "vote", "status": "done", "output": "4",
                "payload": json.dumps(vote), "created_at": ts, "updated_at": ts,
            },
        )  # fmt: skip
    return run


@pytest.mark.parametrize("size", SIZES)
def test_traces_methods_view(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    _methods_run(workspace)
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("4"))


def _fixed_prompts(store: Store) -> None:
    """The default prompts, stamped with one time (the list shows when each was saved)."""
    from workbench.core.prompts.versions import seed_defaults

    seed_defaults(store)
    with store.transaction() as conn:
        conn.execute("UPDATE prompt_versions SET created_at='2026-01-01T09:00:00.000+00:00'")


@pytest.mark.parametrize("size", SIZES)
def test_prompts_editor(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    fill_library(workspace, 4)
    _fixed_prompts(workspace)
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("2"))


@pytest.mark.parametrize("size", SIZES)
def test_prompts_try_tab(snap_compare: SnapCompare, workspace: Store, size: Any) -> None:
    fill_library(workspace, 4)
    _fixed_prompts(workspace)
    app = build(workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("2", "ctrl+t"))


@pytest.fixture
def csv_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A finished csv_agent run on tips, recorded against the stub (``wb.db``, relative)."""
    from tests.csv_stub import build_csv_run

    build_csv_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    with open_store("wb.db") as store:
        yield store


@pytest.mark.parametrize("size", SIZES)
def test_tables_profile_and_rows(
    snap_compare: SnapCompare, csv_workspace: Store, size: Any
) -> None:
    app = build(csv_workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("6", "full_stop"))


@pytest.mark.parametrize("size", SIZES)
def test_tables_question(snap_compare: SnapCompare, csv_workspace: Store, size: Any) -> None:
    app = build(csv_workspace)
    assert snap_compare(app, terminal_size=size, run_before=after("6", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_tables_conversation_stepper(
    snap_compare: SnapCompare, csv_workspace: Store, size: Any
) -> None:
    app = build(csv_workspace)
    keys = ("6", "enter", "enter", "down", "down", "enter", "j")
    assert snap_compare(app, terminal_size=size, run_before=after(*keys))
