"""Tables: the table list with profile and paged rows, questions with pass rates, and the
conversation stepper, over a real csv_agent run against the loopback stub; keys only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from tests.csv_stub import SUNDAY, SUNDAY_TIP, TIPS, build_csv_run
from tests.stub_server import StubServer
from workbench.core.csv_agent.recorded import load_recording, read_recording
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.core.views import tables as views
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.tables import PAGE_ROWS, Level, TablesScreen


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_csv_run(tmp_path_factory.mktemp("csv-run"))


@pytest.fixture
def db(recorded: Path, tmp_path: Path) -> Path:
    for part in recorded.parent.glob("wb.db*"):  # the WAL too: it may hold the last writes
        shutil.copy(part, tmp_path / part.name)
    return tmp_path / "wb.db"


def app_for(db: Path) -> WorkbenchApp:
    settings = Settings()
    return make_app(Store(db), ProviderRegistry(settings), settings)


def detail(app: WorkbenchApp) -> str:
    return str(app.screen.query_one("#tables-detail", Static).render())


def test_read_models_give_questions_pass_rates_and_folded_calls(db: Path) -> None:
    store = Store(db)
    [summary] = views.table_summaries(store)
    assert (summary.table.name, summary.questions, summary.rejected) == ("tips", 2, 3)
    page = views.frame_page(store, summary.table.id, 240, 10)
    assert page.total == len(TIPS) and len(page.rows) == len(TIPS) - 240  # the last page
    assert page.rows[0][0] == str(TIPS["total_bill"].iloc[240])
    questions = views.table_questions(store, summary.table.sha256)
    assert [q.accepted for q in questions] == [True, True, False, False, False]
    sunday = questions[0]
    assert sunday.question == SUNDAY["question"] and sunday.hint == SUNDAY["hint"]
    assert sunday.pass_rate is not None and (sunday.pass_rate.n, sunday.pass_rate.correct) == (3, 3)
    assert sunday.pass_rate.low < 1.0 == sunday.pass_rate.high  # Wilson, not 3/3 = [1, 1]
    assert [(s.tool, s.depth) for s in sunday.dag] == [("filter", 0), ("compute", 1)]
    mismatch = next(q for q in questions if q.status == "dag_answer_mismatch")
    assert "the DAG gives" in (mismatch.reason or "") and mismatch.recomputed

    refs = views.question_conversations(store, sunday.question_id)
    assert [r.label for r in refs] == ["hint 0", "attempt 0", "attempt 1", "attempt 2"]
    assert all(r.subs == (("mean_tip", "correct"),) for r in refs)
    conv = views.conversation(store, refs[1])
    folded = [c.folded for t in conv.turns for c in t.calls]
    assert folded == [
        "describe(column=Tip) -> error (invalid_args)",
        'filter(conditions=[{"column":"day","op":"==","value":"Sun"}], save_as=sun) -> 76 rows',
        f"compute(expression=mean(tip), frame=sun) -> {TIPS[TIPS.day == 'Sun'].tip.mean()}",
    ]
    assert f"@mean_tip[{SUNDAY_TIP:.2f}]" in conv.turns[-1].text
    filtered = conv.turns[1].calls[0]
    assert (
        "[truncated: 20 of 76 rows shown]" in filtered.shown and "rows: 76" in filtered.raw
    )  # raw keeps every row
    assert len(filtered.raw.splitlines()) > len(filtered.shown.splitlines())


async def test_tables_questions_and_stepper_by_keys(db: Path) -> None:
    app = app_for(db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, TablesScreen) and screen.level == Level.TABLES
        text = detail(app)
        assert "244 rows × 7 columns" in text and "rows 1–15 of 244" in text
        await pilot.press("full_stop")
        assert f"rows {PAGE_ROWS + 1}–{2 * PAGE_ROWS} of 244" in detail(app)
        await pilot.press("comma", "comma")
        assert "rows 1–15 of 244" in detail(app)

        await pilot.press("enter")  # the table's questions
        assert screen.level == Level.QUESTIONS
        text = detail(app)
        assert (
            SUNDAY["question"] in text
            and "pass rate 100.0% (3/3 attempts, 95% CI 43.9%–100.0%)" in text
        )
        assert "hint" in text and "    n2 compute(expression=mean(tip), frame=sun)" in text
        await pilot.press("j", "j")  # the rejected ones follow
        assert "dag_answer_mismatch" in detail(app) and "the DAG gives" in detail(app)
        await pilot.press("k", "k", "enter")  # the Sunday question's conversations
        assert screen.level == Level.CONVERSATIONS
        table = screen.query_one("#tables-list", DataTable)
        assert table.row_count == 1 + 4  # the teacher's, the hinted answer, three attempts
        await pilot.press("down", "down")  # attempt 0
        text = detail(app)
        assert "attempt 0" in text and "✓ mean_tip" in text
        assert "describe(column=Tip) -> error (invalid_args)" in text
        assert "did you mean" not in text  # folded until expanded
        await pilot.press("enter")
        assert "did you mean 'tip'?" in detail(app)
        await pilot.press("j", "enter")  # turn 2: the filter, shown output
        assert screen.turn == 1 and "[truncated: 20 of 76 rows shown]" in detail(app)
        await pilot.press("W")  # raw
        assert "rows: 76" in detail(app) and "[raw output]" in detail(app)
        await pilot.press("W")
        assert "rows: 76" not in detail(app)

        await pilot.press("escape")
        assert screen.level == Level.QUESTIONS
        await pilot.press("escape")
        assert screen.level == Level.TABLES


async def test_new_run_opens_the_builder_on_the_table(db: Path) -> None:
    from workbench.tui.screens.run_builder import RunBuilderScreen

    app = app_for(db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6", "n")
        await pilot.pause()
        builder = app.screen
        assert isinstance(builder, RunBuilderScreen)
        assert builder.form()["kind"] == "csv_agent"
        assert builder.initial["tables"] == ["tips"]


async def test_an_empty_workspace_says_how_to_add_a_table(tmp_path: Path) -> None:
    app = app_for(tmp_path / "empty.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("6")
        assert "workbench import --table" in detail(app)
        await pilot.press("enter", "j", "escape", "full_stop", "W")  # nothing to open: no error
        assert isinstance(app.screen, TablesScreen)


async def test_the_palette_opens_tables_and_toggles_raw_output(db: Path) -> None:
    from textual.command import CommandPalette

    app = app_for(db)
    async with app.run_test(size=(160, 48)) as pilot:
        for title in ("tables: open", "tables: raw output"):
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert isinstance(app.screen, CommandPalette)
            await pilot.press(*title)
            await app.screen.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, TablesScreen) and screen.raw


def _content(data: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """A recording without ids, stamps and timings: what a run said and did."""
    return {
        "samples": sorted(
            (s["stage"], s["item_key"], s["status"], s["output"], s["payload"])
            for s in data["samples"]
        ),
        "tool_calls": sorted(
            (t["tool"], t["args"], t["shown"], t["error_kind"]) for t in data["tool_calls"]
        ),
        "calls": sorted((c["item_key"], c["model"], c["response"]) for c in data["calls"]),
    }


def test_the_shipped_recording_is_what_the_stub_run_makes_now() -> None:
    from tests.record_csv_demo import record

    shipped = read_recording()
    fresh = record()
    assert shipped["table_sha256"] == fresh["table_sha256"]
    assert _content(shipped) == _content(fresh), "re-record: python -m tests.record_csv_demo"


async def test_the_demo_run_is_shown_as_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path / "demo.db")
    first = load_recording(store)
    assert first.created and not load_recording(store).created  # once
    assert store.scalar("SELECT COUNT(*) FROM runs") == 1
    [summary] = views.table_summaries(store)
    questions = views.table_questions(store, summary.table.sha256)
    assert [q.accepted for q in questions] == [True, True, False, False, False]
    assert all(q.recorded for q in questions)
    refs = views.question_conversations(store, questions[0].question_id)
    conv = views.conversation(store, refs[1])
    assert [c.folded.split("(")[0] for t in conv.turns for c in t.calls] == [
        "describe",
        "filter",
        "compute",
    ]
    assert "rows: 76" in conv.turns[1].calls[0].raw  # the raw results came along
    store.close()

    settings = Settings()
    app = make_app(Store(tmp_path / "demo.db"), ProviderRegistry(settings), settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6", "enter")
        assert "run 1 (recorded)" in detail(app)
        await pilot.press("enter", "down")
        assert "hint 0 · run 1 (recorded) · answered" in detail(app)


async def test_a_run_launched_from_tables_runs_in_runs_and_shows_here(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """n on a table: the builder on csv_agent and that table; Runs launches and monitors it."""
    from textual.widgets import Input

    from tests.csv_stub import KEY_ENV, TIPS_PATH, csv_responder
    from workbench.core.csv_agent import import_table
    from workbench.core.settings import Price, ProviderSettings
    from workbench.tui.dialogs import ConfirmDialog
    from workbench.tui.screens.monitor import MonitorScreen
    from workbench.tui.screens.run_builder import RunBuilderScreen

    monkeypatch.setenv(KEY_ENV, "sk-csv-test-key-123456")
    stub_server.responder = csv_responder
    settings = Settings(
        providers={
            "stub": ProviderSettings(
                kind="openai",
                base_url=stub_server.openai_base_url,
                api_key_env=KEY_ENV,
                max_attempts=2,
                timeout_s=10.0,
            )
        },
        pricing={m: Price(input=1.0, output=2.0) for m in ("stub:teacher-1", "stub:student-1")},
    )
    store = Store(tmp_path / "wb.db")
    import_table(store, TIPS_PATH)
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6", "n")
        builder = app.screen
        assert isinstance(builder, RunBuilderScreen)
        await pilot.pause()
        assert builder.query_one("#bs-tables", Input).value == '["tips"]'
        for name, value in (("teacher", "stub:teacher-1"), ("student", "stub:student-1"),
                            ("samples", "2"), ("questions_per_table", "4")):  # fmt: skip
            box = builder.query_one(f"#bs-{name}" if name != "samples" else "#b-samples", Input)
            box.value = value
        await pilot.pause()
        if builder._debounce is not None:
            builder._debounce.stop()
        builder._replan()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+l")
        if isinstance(app.screen, ConfirmDialog):
            await pilot.press("y")
        await pilot.pause()
        assert app.current_mode == "runs"
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert monitor.status == "done", monitor.live and monitor.live.error
        run = store.get_run(monitor.run_id)
        assert run["kind"] == "csv_agent" and run["config"]["tables"] == ["tips"]
        await pilot.press("escape", "6", "r", "enter")
        assert "pass rate 100.0% (2/2 attempts" in detail(app)
