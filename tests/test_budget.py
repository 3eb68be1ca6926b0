"""The budget cap against the loopback stub: approached, never passed, honestly reported,
and raised on resume (CLI) with the change kept in the run's history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.engine_fakes import add_toy_problems
from tests.stub_server import StubServer
from workbench.cli.main import main
from workbench.core.store import Store

#: one call's worst case: ~60 input tokens + 768 max output tokens at $2/M ~ $0.0016;
#: its real cost at the stub ~ $0.00008, so 300 items need ~$0.023
WORST = 0.0017
CAP = 0.01


def workspace(tmp_path: Path, stub: StubServer, *, cap: float = CAP, samples: int = 50) -> Path:
    with Store(tmp_path / "wb.db") as store:
        add_toy_problems(store, 6)
    (tmp_path / "workbench.toml").write_text(
        f"""
[providers.stub]
kind = "openai-compatible"
base_url = "{stub.openai_base_url}"
max_concurrency = 64
timeout_s = 10

[pricing."stub:m"]
input = 1.0
output = 2.0
"""
    )
    config = tmp_path / "cal.toml"
    config.write_text(
        f"""kind = "calibration"
name = "capped"
models = ["stub:m"]
samples = {samples}
budget_usd = {cap}
[problems]
dataset = "toy"
"""
    )
    return config


def cli(tmp_path: Path, *args: str) -> int:
    return main(
        ["--db", str(tmp_path / "wb.db"), "--config", str(tmp_path / "workbench.toml"), *args]
    )


def test_cap_is_approached_not_undershot_and_the_reason_names_the_real_spend(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_server.latency = 0.02  # so 64 calls are in flight at once
    config = workspace(tmp_path, stub_server)
    assert cli(tmp_path, "run", str(config), "--no-live") == 1
    out = capsys.readouterr().out
    with Store(tmp_path / "wb.db") as store:
        spent = store.run_totals(1).cost_usd
        run = store.get_run(1)
    assert run["status"] == "stopped: budget"
    assert 0.8 * CAP <= spent <= CAP + WORST  # approached, never passed
    reason = re.search(r"spent \$(\d+\.\d+)", run["error"])
    assert reason is not None and float(reason.group(1)) == pytest.approx(spent, abs=1e-4)
    assert f"reason: budget ${CAP:.2f} reached: spent ${spent:.4f}" in out
    assert "--resume 1 --budget" in out
    assert stub_server.paid == store_calls(tmp_path)  # every paid call is in the store


def store_calls(tmp_path: Path) -> int:
    with Store(tmp_path / "wb.db") as store:
        return int(store.scalar("SELECT COUNT(*) FROM calls WHERE status='ok'"))


def test_raise_the_budget_and_resume_finishes_the_run(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server, samples=20)  # 120 items ~ $0.0095 > $0.005
    config.write_text(config.read_text().replace(f"budget_usd = {CAP}", "budget_usd = 0.005"))
    assert cli(tmp_path, "run", str(config), "--no-live") == 1
    assert "stopped: budget" in capsys.readouterr().out
    # the same config file with only the cap raised is accepted as a settings change
    config.write_text(config.read_text().replace("budget_usd = 0.005", "budget_usd = 0.006"))
    assert cli(tmp_path, "run", str(config), "--resume", "1", "--no-live") == 1
    # ... and anything else changed is not
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace("samples = 20", "samples = 21"))
    assert cli(tmp_path, "run", str(other), "--resume", "1") == 2
    assert "differs from the config of run 1" in capsys.readouterr().err
    assert cli(tmp_path, "run", "--resume", "1", "--budget", "0.05", "--concurrency", "8") == 0
    with Store(tmp_path / "wb.db") as store:
        run = store.get_run(1)
        assert run["status"] == "done" and run["budget_usd"] == 0.05
        assert run["config"]["budget_usd"] == 0.05 and run["config"]["concurrency"] == 8
        assert len(store.samples(1, status="done")) == 120
        history = [
            (h["note"], h["budget_usd"], h["concurrency"]) for h in store.run_settings_history(1)
        ]
        assert history == [
            ("created", 0.005, None),
            ("resume", 0.006, None),
            ("resume", 0.05, 8),
        ]
        assert store.run_totals(1).cost_usd <= 0.05
    assert stub_server.paid == 120  # nothing paid twice across the three executions


def test_a_cap_below_one_calls_worst_case_sends_nothing(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server, cap=0.001)
    assert cli(tmp_path, "run", str(config), "--no-live") == 1
    out = capsys.readouterr().out
    assert (
        "budget $0.00 ($0.0010) reached: spent $0.0000, and the next call could cost up to" in out
    )
    assert stub_server.total == 0
