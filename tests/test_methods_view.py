"""Methods view in Traces: per problem CoT | PAL | plan-then-code | the vote, and the method
named on every methods trace (a real methods run over the loopback stub and the sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stub_server import StubServer
from tests.test_methods import CONFIG, KEY_ENV, QUESTIONS, add_problems, scripted, setup
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.views.methods import methods_row
from workbench.tui.app import make_app
from workbench.tui.screens.traces import TracesScreen


@pytest.fixture
async def methods_db(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, int]:
    monkeypatch.setenv(KEY_ENV, "sk-methods-test-key-123456")
    engine, store, settings, registry = setup(tmp_path, stub_server, scripted)
    add_problems(store, QUESTIONS)
    run_id = await run_experiment(
        store, registry, settings, load_experiment_config(CONFIG), engine=engine
    )
    store.close()
    return tmp_path / "wb.db", run_id


def test_the_methods_row_is_the_vote_row(methods_db: tuple[Path, int]) -> None:
    from workbench.core.store import Store

    path, run_id = methods_db
    with Store(path) as store:
        row = methods_row(store, run_id, "q2")
        assert methods_row(store, run_id, "no-such") is None
    assert row is not None
    assert [m.label for m in row.methods] == ["CoT", "PAL", "plan-then-code"]
    pal = next(m for m in row.methods if m.method == "pal")
    assert pal.answer is None and pal.correct is False and pal.errors == ("exception 1",)
    cot = next(m for m in row.methods if m.method == "cot")
    assert cot.answer == "20" and cot.correct is True and cot.sample_id is not None
    assert row.vote_answer == "20" and row.vote_correct is True


async def test_keys_show_each_method_and_the_vote_per_problem(
    methods_db: tuple[Path, int],
) -> None:
    """Keys only: Traces on the methods run; every solve trace names its method and shows
    the problem's CoT | PAL | plan-then-code | vote line; J moves to the next problem."""
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import Settings
    from workbench.core.store import Store

    path, run_id = methods_db
    settings = Settings()
    app = make_app(Store(path), ProviderRegistry(settings), settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TracesScreen) and screen.run_id == run_id
        seen_methods: set[str] = set()
        problems: set[str] = set()
        for _ in range(len(screen.index)):
            view = screen.view
            assert view is not None
            head = str(screen.query_one("#trace-head").render())
            block = screen.query_one("#trace-methods")
            if view.method is not None:
                seen_methods.add(view.method)
                assert "method: " in head
                shown = str(block.render())
                assert block.display and "CoT" in shown and "PAL" in shown
                assert "plan-then-code" in shown and "vote" in shown
            problems.add(view.problem_id or "")
            await pilot.press("j")
        assert seen_methods == {"cot", "pal", "plan"}
        assert problems == set(QUESTIONS)
        await pilot.press("g", "J")
        assert screen.view is not None and screen.view.problem_id != "q1"
