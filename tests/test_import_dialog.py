"""Import your own file from the TUI, keys only: path completion, adapter, the CLI's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.import_dialog import ImportDialog, path_candidates
from workbench.tui.screens.home import HomeScreen

SIZE = (100, 30)


def gsm8k_row(i: int) -> dict[str, str]:
    return {
        "question": f"Tom has {i} apples and buys 2. How many?",
        "answer": f"{i}+2\n#### {i + 2}",
    }


def write_jsonl(path: Path, good: int, *, bad_line: bool = True) -> None:
    lines = [json.dumps(gsm8k_row(i)) for i in range(good)]
    if bad_line:
        lines.insert(1, "{not json")
        lines.append(json.dumps({"question": "no final line", "answer": "42"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(tmp_path: Path) -> tuple[WorkbenchApp, Store]:
    store = Store(tmp_path / "wb.db")
    settings = Settings()
    return make_app(store, ProviderRegistry(settings), settings), store


async def settle(app: WorkbenchApp, pilot: object) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


def report(app: WorkbenchApp) -> str:
    return str(app.screen.query_one("#import-report", Static).render())


async def test_import_a_file_with_completion_and_row_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "mine.jsonl", 4)
    monkeypatch.chdir(tmp_path)
    app, store = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("I")
        assert isinstance(app.screen, ImportDialog)
        assert app.screen.query_one("#import-path", Input).value == f"{tmp_path}/"
        # "da" completes to the folder, "m" to the file: right accepts each suggestion
        await pilot.press("d", "a")
        await settle(app, pilot)
        await pilot.press("right", "m")
        await settle(app, pilot)
        await pilot.press("right")
        assert app.screen.query_one("#import-path", Input).value == f"{data}/mine.jsonl"
        await pilot.press("enter")
        await settle(app, pilot)
        text = report(app)
        # the CLI's lines: each bad row by file and line, then the summary
        assert f"skipped {data}/mine.jsonl:line 2: row: not valid JSON" in text
        assert f"{data}/mine.jsonl:line 6: answer: no '#### N' final answer line" in text
        assert "mine: 4 added, 0 already present, 2 bad rows skipped" in text
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.summary is not None and app.screen.summary.n_problems == 4
    assert store.scalar("SELECT COUNT(*) FROM problems WHERE dataset_id='mine'") == 4


async def test_import_a_folder_with_a_chosen_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sets"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", 3, bad_line=False)
    (folder / "b.csv").write_text(
        'question,answer\n"What is 1+1?","1+1\n#### 2"\n', encoding="utf-8"
    )
    (folder / "notes.txt").write_text("not data", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    app, store = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("I")
        await pilot.press(*"sets")
        await pilot.press("tab")  # to the adapter
        await pilot.press("enter", "down", "enter")  # gsm8k
        await pilot.press("tab", "tab")
        await pilot.press(*"2")  # keep 2 rows of each file
        await pilot.press("enter")
        await settle(app, pilot)
        text = report(app)
        assert "a: 2 added" in text and "format gsm8k" in text
        assert "b: 1 added" in text
        await pilot.press("escape")
    assert store.scalar("SELECT COUNT(*) FROM datasets") == 2


async def test_a_missing_path_is_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app, store = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("I", *"nope.jsonl", "enter")
        await settle(app, pilot)
        assert "import failed:" in report(app) and "no such file" in report(app)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
    assert store.scalar("SELECT COUNT(*) FROM problems") == 0


async def test_a_half_typed_local_path_is_not_sent_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a probe would be refused
    app, _ = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("I", "ctrl+u", *"data/mi", "enter")
        await settle(app, pilot)
        assert "data/mi: no such file or folder" in report(app)
        assert "huggingface" not in report(app) and "127.0.0.1" not in report(app)


def test_path_candidates_list_folders_and_data_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "s.parquet").write_bytes(b"")
    (tmp_path / "s.txt").write_text("")
    (tmp_path / ".secret").mkdir()
    assert path_candidates(f"{tmp_path}/s") == [f"{tmp_path}/s.parquet", f"{tmp_path}/sub/"]
    assert path_candidates(f"{tmp_path}/") == [f"{tmp_path}/s.parquet", f"{tmp_path}/sub/"]
    assert path_candidates(f"{tmp_path}/.") == [f"{tmp_path}/.secret/"]
    assert path_candidates(f"{tmp_path}/missing/x") == []
