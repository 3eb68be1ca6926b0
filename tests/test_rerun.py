"""Re-run an edited copy of a run (keys only); every setting is a visible, validated field;
the builder remembers the last launch."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Select, TabbedContent

from tests.stub_server import StubServer
from tests.test_runs_screen import KEY_ENV, app_for, settings_for
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.run_builder import RunBuilderScreen, setting_fields
from workbench.tui.screens.runs import RunsScreen

BASE = {
    "kind": "calibration",
    "name": "base",
    "solvers": ["stub:stub-model"],
    "samples": 2,
    "temperature": 0.3,
    "max_tokens": 64,
    "problems": {
        "limit": 3,
        "seed": 4,
        "ids": ["gsm8k/000000", "gsm8k/000001", "math/000002", "x, y"],
    },
}


async def settle(app: WorkbenchApp, pilot: object) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)  # type: ignore[attr-defined]


def value(builder: RunBuilderScreen, selector: str) -> str:
    return builder.query_one(selector, Input).value


async def test_rerun_an_edited_copy_then_the_form_remembers(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-rerun")
    app = app_for(tmp_path, settings_for(stub_server))
    base = app.store.create_run("base", "calibration", BASE)
    app.store.set_run_status(base, "done")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("e")
        await settle(app, pilot)
        builder = app.screen
        assert isinstance(builder, RunBuilderScreen)
        assert builder.query_one("#b-kind", Select).value == "calibration"
        assert value(builder, "#b-solver") == "stub:stub-model"  # not reset to the local model
        assert (value(builder, "#b-samples"), value(builder, "#b-limit")) == ("2", "3")
        assert "seed = 4}" in str(builder.query_one("#b-problems-extra").render())
        # every other config field of calibration is its own visible field
        await pilot.press("ctrl+t")
        assert builder.query_one("#builder-tabs", TabbedContent).active == "tab-settings"
        for name in setting_fields(builder.kinds["calibration"]):
            assert builder.query_one(f"#bs-{name}", Input).display
        assert value(builder, "#bs-temperature") == "0.3"
        assert value(builder, "#bs-max_tokens") == "64"
        temperature = builder.query_one("#bs-temperature", Input)
        temperature.focus()
        await pilot.press("ctrl+u", *"hot")
        await settle(app, pilot)
        assert builder.plan is None
        assert "temperature" in str(builder.query_one("#builder-problems").render())
        assert temperature.parent is not None and temperature.parent.has_class("-invalid")
        await pilot.press("ctrl+u", *"0.2")
        await settle(app, pilot)
        assert builder.plan is not None and not temperature.parent.has_class("-invalid")
        await pilot.press("ctrl+l")
        await settle(app, pilot)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.status == "done"
        config = app.store.get_run(monitor.run_id)["config"]
        assert monitor.run_id != base
        assert config["temperature"] == 0.2 and config["max_tokens"] == 64
        assert config["samples"] == 2 and config["solvers"] == ["stub:stub-model"]
        assert config["problems"]["limit"] == 3 and config["problems"]["seed"] == 4
        assert config["problems"]["ids"] == BASE["problems"]["ids"]  # type: ignore[index]
        assert stub_server.paid == 6  # 3 problems (of the 3 ids that exist) x 2 samples
        await pilot.press("escape", "n")  # a new run starts from the last launch
        await settle(app, pilot)
        builder = app.screen
        assert isinstance(builder, RunBuilderScreen)
        assert value(builder, "#b-solver") == "stub:stub-model"
        assert value(builder, "#bs-temperature") == "0.2"
        await pilot.press("escape")


def test_every_setting_round_trips_through_its_text() -> None:
    """Each launchable kind's settings: the text shown for a value parses back to that value."""
    from workbench.core.experiments import experiment_kinds
    from workbench.tui.screens.run_builder import default_text, parse_setting

    for kind, cls in experiment_kinds(launchable=True).items():
        for name in setting_fields(cls):
            info = cls.config_model.model_fields[name]
            text = default_text(cls, name)
            if info.is_required() or not text:
                continue
            default = info.get_default(call_default_factory=True)
            parsed = parse_setting(cls, name, text)
            expected = list(default) if isinstance(default, tuple) else default
            if isinstance(default, tuple) and default and isinstance(default[0], tuple):
                expected = [list(x) for x in default]
            assert parsed == expected, (kind, name, text)
