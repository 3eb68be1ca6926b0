"""A run launched from the TUI (and a new run from the CLI) is pre-flighted before its row
exists: a config error is one line and leaves no ``pending`` or ``failed`` run behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stub_server import StubServer
from tests.test_preflight import cli, workspace
from tests.test_runs_screen import KEY_ENV, app_for, settings_for
from workbench.core.experiments import load_experiment_config
from workbench.core.store import Store
from workbench.tui.live_runs import LaunchRequest, LaunchRun
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.runs import RunsScreen


def calibration(**problems: str) -> object:
    return load_experiment_config(
        {
            "kind": "calibration",
            "models": ["stub:stub-model"],
            "samples": 1,
            "problems": {"limit": 2, **problems},
        }
    )


async def launch(app: object, pilot: object, config: object) -> RunsScreen:
    await app.switch_mode("runs")  # type: ignore[attr-defined]
    runs = app.screen  # type: ignore[attr-defined]
    assert isinstance(runs, RunsScreen)
    runs.post_message(LaunchRun(LaunchRequest(config, ("stub:stub-model",), None)))
    await pilot.pause()  # type: ignore[attr-defined]
    await app.workers.wait_for_complete()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    return runs


@pytest.mark.parametrize(
    ("unset_key", "problems", "message"),
    [
        (True, {}, f"no API key found; set {KEY_ENV}"),  # the key went away after planning
        (False, {"dataset": "nope"}, "problems.dataset: no dataset 'nope'"),
    ],
)
async def test_a_config_error_launched_from_the_tui_leaves_no_row(
    tmp_path: Path,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    unset_key: bool,
    problems: dict[str, str],
    message: str,
) -> None:
    if unset_key:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, "sk-launch")
    app = app_for(tmp_path, settings_for(stub_server))
    shown: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await launch(app, pilot, calibration(**problems))
        shown = [n.message for n in app._notifications]
        assert app.screen is runs  # no monitor opened on a run that does not exist
        assert not runs.live
    assert stub_server.total == 0
    assert len(shown) == 1 and message in shown[0] and "\n" not in shown[0]
    with Store(tmp_path / "wb.db") as store:
        assert store.query("SELECT id FROM runs") == []


async def test_a_sound_launch_creates_the_row_pinned_and_runs(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same launch with its key set runs, under a pinned snapshot."""
    monkeypatch.setenv(KEY_ENV, "sk-launch")
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(100, 30)) as pilot:
        await launch(app, pilot, calibration())
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert monitor.status == "done"
    with Store(tmp_path / "wb.db") as store:
        (run,) = store.query("SELECT id FROM runs")
        assert store.get_run(run["id"])["config"]["prompt_pins"] is not None
    assert stub_server.paid == 2


def test_a_missing_dataset_leaves_no_failed_row_from_the_cli(
    tmp_path: Path,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WB_PREFLIGHT_TEST_KEY", "sk-preflight")
    config = workspace(tmp_path, stub_server)
    config.write_text(config.read_text().replace('dataset = "toy"', 'dataset = "gone"'))
    assert cli(tmp_path, "run", str(config), "--no-live") == 2
    err = capsys.readouterr().err.strip()
    assert "no dataset 'gone'" in err and "\n" not in err
    assert stub_server.total == 0
    with Store(tmp_path / "wb.db") as store:
        assert store.query("SELECT id FROM runs") == []
