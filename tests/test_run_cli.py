"""``workbench run`` / ``runs`` / ``cache explain`` against the loopback stub, SIGKILL included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.engine_fakes import add_toy_problems
from tests.stub_server import StubServer
from workbench.cli.main import main
from workbench.core.store import Store

REPO = Path(__file__).resolve().parents[1]


def workspace(tmp_path: Path, stub: StubServer, *, samples: int = 2, extra: str = "") -> Path:
    """A db with toy problems, a settings file pointing at the stub, and a config."""
    with Store(tmp_path / "wb.db") as store:
        add_toy_problems(store, 6)
    (tmp_path / "workbench.toml").write_text(
        f"""
[providers.stub]
kind = "openai-compatible"
base_url = "{stub.openai_base_url}"
max_concurrency = 4
timeout_s = 10

[pricing."stub:m"]
input = 1.0
output = 2.0
"""
    )
    config = tmp_path / "cal.toml"
    config.write_text(
        f"""kind = "calibration"
name = "cli"
models = ["stub:m"]
samples = {samples}
{extra}
[problems]
dataset = "toy"
"""
    )
    return config


def cli(tmp_path: Path, *args: str) -> int:
    return main(
        ["--db", str(tmp_path / "wb.db"), "--config", str(tmp_path / "workbench.toml"), *args]
    )


def test_run_prints_summary_and_lists_runs(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server)
    assert cli(tmp_path, "run", str(config)) == 0
    out = capsys.readouterr().out
    assert "run 1 (calibration 'cli'): done" in out and "12 done" in out
    assert "accuracy" in out and "cost: $" in out
    assert stub_server.paid == 12
    assert cli(tmp_path, "runs") == 0
    listing = capsys.readouterr().out
    assert "cli" in listing and "done" in listing
    # the same config again: all cache hits, and cache explain says so
    assert cli(tmp_path, "run", str(config)) == 0
    capsys.readouterr()
    assert stub_server.paid == 12
    assert cli(tmp_path, "cache", "explain", "2", "solve/toy/0/0/stub:m") == 0
    assert "HIT: reused call" in capsys.readouterr().out


def test_cache_explain_names_the_differing_part(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server, samples=1)
    assert cli(tmp_path, "run", str(config)) == 0
    config.write_text(config.read_text().replace("samples = 1", "samples = 1\ntemperature = 0.9"))
    assert cli(tmp_path, "run", str(config)) == 0
    capsys.readouterr()
    assert cli(tmp_path, "cache", "explain", "2", "solve/toy/0/0/stub:m") == 0
    out = capsys.readouterr().out
    assert "MISS" in out and "request.temperature: here 0.9, there 0.7" in out


def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server, extra="samplez = 3")
    assert cli(tmp_path, "run", str(config)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cal.toml: samplez: Extra inputs are not permitted" in err
    assert stub_server.total == 0


def test_retry_failed_reruns_only_errored_items(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server)
    stub_server.fail_when(
        lambda path, body: "2 + 3?" in json.dumps(body), "status", status=400, message="nope"
    )
    assert cli(tmp_path, "run", str(config)) == 1
    assert "failed" in capsys.readouterr().out
    stub_server.clear_faults()
    stub_server.reset()
    assert cli(tmp_path, "run", "--retry-failed", "1") == 0
    bodies = [json.dumps(r.body) for r in stub_server.requests]
    assert len(bodies) == 2 and all("2 + 3?" in b for b in bodies)


def test_budget_cap_stops_the_run(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # worst case per item ~ (prompt/4 + 768 max tokens * $2/M) ~ $0.0016 and a real call
    # ~ $0.00008: a $0.0019 cap leaves room for a few calls, not for the 30 items
    config = workspace(tmp_path, stub_server, samples=5, extra="budget_usd = 0.0019")
    assert cli(tmp_path, "run", str(config)) == 1
    out = capsys.readouterr().out
    assert "stopped: budget" in out
    with Store(tmp_path / "wb.db") as store:
        assert store.run_totals(1).cost_usd <= 0.0019
    assert 0 < stub_server.paid < 30


def test_capped_run_with_unpriced_model_refuses(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server, extra="budget_usd = 1.0")
    config.write_text(config.read_text().replace('"stub:m"', '"stub:unpriced"'))
    assert cli(tmp_path, "run", str(config)) == 2
    assert "stub:unpriced: no known price" in capsys.readouterr().err
    assert stub_server.total == 0


def _request_key(body: dict[str, object]) -> tuple[str, object]:
    """The user turn and seed: the same for a stored neutral request and its wire form."""
    messages = body.get("messages") or []
    return (str(messages[-1].get("content")), body.get("seed"))  # type: ignore[index]


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_pays_once(
    tmp_path: Path, stub_server: StubServer
) -> None:
    stub_server.latency = 0.05
    config = workspace(tmp_path, stub_server, samples=10)  # 60 items, 4 at a time
    cmd = [
        sys.executable, "-m", "workbench", "--db", str(tmp_path / "wb.db"),
        "--config", str(tmp_path / "workbench.toml"), "run", str(config),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert stub_server.wait_for(lambda s: s.paid >= 24, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Store(tmp_path / "wb.db") as store:
        committed = store.query("SELECT request FROM calls WHERE status='ok'")
        assert store.get_run(1)["status"] == "running"  # killed mid-run
    assert 0 < len(committed) < 60
    before = {_request_key(json.loads(c["request"])) for c in committed}

    resume = subprocess.run(
        [*cmd[:-2], "run", "--resume", "1"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert resume.returncode == 0, resume.stderr
    with Store(tmp_path / "wb.db") as store:
        assert store.scalar("SELECT COUNT(*) FROM runs") == 1  # the same run record
        assert store.get_run(1)["status"] == "done"
        done = store.samples(1, status="done")
        assert len(done) == 60  # no lost results
        totals = store.run_totals(1)
        assert totals.n_ok == 60  # includes the calls from before the kill
    # count at the stub: a call committed before the kill was never sent again
    paid = Counter(_request_key(r.body) for r in stub_server.requests if r.outcome == "ok")
    assert all(paid[key] == 1 for key in before)
    assert len(before) == len(committed)
    assert "60 done" in resume.stdout


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_resume_finishes(
    tmp_path: Path, stub_server: StubServer
) -> None:
    stub_server.latency = 0.05
    config = workspace(tmp_path, stub_server, samples=10)
    base = [
        sys.executable, "-m", "workbench", "--db", str(tmp_path / "wb.db"),
        "--config", str(tmp_path / "workbench.toml"), "run",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*base, str(config)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    assert stub_server.wait_for(lambda s: s.paid >= 8, timeout=60)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "cancelled" in out
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(1)["status"] == "cancelled"
        finished = len(store.samples(1, status="done"))
    assert 0 < finished < 60
    done = subprocess.run([*base, "--resume", "1"], cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == 0
    with Store(tmp_path / "wb.db") as store:
        assert len(store.samples(1, status="done")) == 60
