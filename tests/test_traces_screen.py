"""The trace stepper driven with Pilot: navigation, filters, search, labels, copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Select, Static

from tests.trace_data import build_recovery_run
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.core.views.traces import TraceFilter, labels_for, trace_ids
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.dialogs import TextInputDialog
from workbench.tui.screens.trace_dialogs import LabelDialog, TraceFilterDialog
from workbench.tui.screens.traces import TracesScreen


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wb.db"
    store = Store(path)
    build_recovery_run(store, n_problems=6, k=3)
    store.close()
    return path


def app_for(db: Path) -> WorkbenchApp:
    settings = Settings()
    return make_app(Store(db), ProviderRegistry(settings), settings)


async def open_traces(app: WorkbenchApp) -> TracesScreen:
    await app.switch_mode("traces")
    await app.workers.wait_for_complete()
    await app.workers.wait_for_complete()
    screen = app.screen
    assert isinstance(screen, TracesScreen)
    return screen


async def settle(app: WorkbenchApp) -> None:
    """Let the list worker finish and its message be handled."""
    from textual.pilot import Pilot

    await app.workers.wait_for_complete()
    await Pilot(app).pause()


async def test_navigation(db: Path) -> None:
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_traces(app)
        await pilot.pause()
        ids = trace_ids(app.store, 1)
        assert len(screen.index) == 18 and screen.view is not None
        assert screen.view.sample_id == ids[0]
        await pilot.press("j", "j")
        assert screen.position == 2 and screen.view.sample_id == ids[2]
        await pilot.press("k")
        assert screen.position == 1
        await pilot.press("J")
        assert screen.position == 3  # first sample of the second problem
        await pilot.press("J", "K")
        assert screen.position == 3
        await pilot.press("K")
        assert screen.position == 0
        await pilot.press("k")  # stays at the start
        assert screen.position == 0
        await pilot.press("end")
        assert screen.position == 17
        status = str(screen.query_one("#trace-status").render())
        assert "18/18" in status


async def test_filter_dialog_and_search(db: Path) -> None:
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_traces(app)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, TraceFilterDialog)
        dialog.query_one("#filter-outcome", Select).value = "recovered"
        await pilot.press("ctrl+s")
        await settle(app)
        expected = trace_ids(app.store, 1, TraceFilter(outcome="recovered"))
        assert screen.flt.outcome == "recovered"
        assert list(screen.index.ids) == list(expected)
        for _ in range(len(expected)):
            assert screen.view is not None and screen.view.outcome == "recovered"
            await pilot.press("j")
        await pilot.press("c")  # clear
        await settle(app)
        assert len(screen.index) == 18
        await pilot.press("slash")
        assert isinstance(app.screen, TextInputDialog)
        await pilot.press(*"Question 4:", "enter")
        await settle(app)
        assert len(screen.index) == 3
        assert screen.view is not None and screen.view.question.startswith("Question 4:")
        await pilot.press("slash")
        await pilot.press(*"no such text anywhere", "enter")
        await settle(app)
        assert len(screen.index) == 0
        assert screen.query_one("#trace-empty").display


async def test_labels_persist_and_filter(db: Path) -> None:
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_traces(app)
        await pilot.press("j")
        assert screen.view is not None
        labelled = screen.view.sample_id
        await pilot.press("l")
        assert isinstance(app.screen, LabelDialog)
        row = app.screen.query_one(".label-presets")
        for button in app.screen.query(Button):  # every preset's name shows in full
            assert button.region.right <= row.content_region.right, button.label
        await pilot.press("1")  # preset: material perturbation
        await pilot.pause()
        await pilot.press("j", "l")
        await pilot.press("tab", *"odd step", "tab", *"looks fine", "enter")
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard.startswith("sample ")
    again = Store(db)  # a fresh connection: the labels are in the file
    assert [lb.label for lb in labels_for(again, labelled)] == ["material perturbation"]
    assert trace_ids(again, 1, TraceFilter(label="odd step"))
    note = again.scalar("SELECT note FROM labels WHERE label='odd step'")
    assert note == "looks fine"
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_traces(app)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, TraceFilterDialog)
        dialog.query_one("#filter-label", Select).value = "material perturbation"
        await pilot.press("ctrl+s")
        await settle(app)
        assert list(screen.index.ids) == [labelled]
        assert screen.view is not None
        assert [lb.label for lb in screen.view.labels] == ["material perturbation"]


async def test_empty_workspace(tmp_path: Path) -> None:
    settings = Settings()
    app = make_app(Store(tmp_path / "empty.db"), ProviderRegistry(settings), settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("traces")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TracesScreen)
        await pilot.press("j", "f", "l", "y", "J", "d")
        assert screen.view is None
        assert "No runs yet" in str(screen.query_one("#trace-empty").render())


async def test_first_trace_shows_before_the_index_and_choices_wait_for_the_dialog(
    db: Path,
) -> None:
    """Opening a run shows its first sample from one index step, lists the rest after, and
    reads the filter dialog's choices only when the dialog is asked for."""
    from workbench.tui.screens.traces import FirstTraceLoaded, TraceIndexLoaded

    app = app_for(db)
    seen: list[str] = []

    def hook(message: object) -> None:
        if isinstance(message, FirstTraceLoaded | TraceIndexLoaded):
            seen.append(type(message).__name__)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        screen = await open_traces(app)
        await pilot.pause()
        assert seen == ["FirstTraceLoaded", "TraceIndexLoaded"]
        assert screen.view is not None and screen.view.sample_id == trace_ids(app.store, 1)[0]
        assert screen.choices_run is None  # not read yet: nobody asked
        await pilot.press("f")
        await settle(app)
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TraceFilterDialog)
        assert screen.choices_run == 1 and screen.choices.stages


def _store_requests(db: Path) -> None:
    """Give every call of the run a real stored request: chat messages for some, a raw
    prefix for others, with a key-shaped secret and bracketed text in the prompt."""
    import json

    from workbench.core.providers.base import Continuation, Message, ModelRequest

    chat = ModelRequest(
        model="completer",
        messages=(Message("user", "Solve [pricing] with key sk-abcdefghijklmnopqrstuvwx"),),
        system="You are careful.",
        temperature=0.7,
        max_tokens=256,
        stop=("###",),
    )
    raw = ModelRequest(
        model="completer",
        prompt="Q: 2+2?\nA: Step 1: 2+2=5.",
        prefix="Step 1: 2+2=5.",
        continuation=Continuation.RAW,
        seed=7,
    )
    with Store(db) as store, store.transaction() as conn:
        conn.execute(
            "UPDATE calls SET request=CASE WHEN id % 2 THEN ? ELSE ? END, sent_params=?",
            (
                json.dumps(chat.to_json()),
                json.dumps(raw.to_json()),
                json.dumps({"temperature": "sent as temperature"}),
            ),
        )


def test_the_request_read_model_is_the_stored_request_redacted(db: Path) -> None:
    from workbench.core.views.requests import load_request

    _store_requests(db)
    with Store(db) as store:
        ids = [r[0] for r in store.conn.execute("SELECT id FROM calls ORDER BY id LIMIT 2")]
        by_kind = {bool(i % 2): load_request(store, i) for i in ids}
        assert load_request(store, 10**9) is None
    chat, raw = by_kind[True], by_kind[False]
    assert chat is not None and raw is not None
    assert not chat.raw and chat.system == "You are careful."
    assert chat.messages[0].role == "user"
    assert "sk-abc" not in chat.as_text() and "[redacted]" in chat.messages[0].content
    assert ("temperature", "0.7") in chat.parameters and ("stop", "['###']") in chat.parameters
    assert ("temperature", "sent as temperature") in chat.sent_params
    assert raw.raw and raw.prefix == "Step 1: 2+2=5." and raw.continuation == "raw"
    assert ("seed", "7") in raw.parameters


async def test_keys_open_the_request_a_trace_sent(db: Path) -> None:
    """Keys only: Traces, d -> the request dialog for the sample on show (redacted, with
    bracketed prompt text shown as typed), y copies it, escape closes."""
    from workbench.tui.screens.trace_dialogs import RequestDialog

    _store_requests(db)
    app = app_for(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TracesScreen) and screen.view is not None
        seen = set()
        while len(seen) < 2:  # a chat request and a raw one
            await pilot.press("j")
            call = screen.view.call
            assert call is not None
            await pilot.press("d")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, RequestDialog)
            assert dialog.request.call_id == call.call_id
            shown = " ".join(str(s.render()) for s in dialog.query(Static))
            assert "continuation" in shown and "sk-abc" not in shown
            if call.call_id % 2:
                assert "[pricing]" in shown and "[redacted]" in shown  # markup never ate it
            else:
                assert "prefix continued" in shown and "seed=7" in shown
            seen.add(call.call_id % 2)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
