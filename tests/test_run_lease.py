"""The run lease: one executor per run, a heartbeat, and ``interrupted`` for a dead one.

Real processes (``python -m workbench run``) against the loopback stub, counted at the stub.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.stub_server import StubServer
from tests.test_run_cli import REPO, _request_key, workspace
from workbench.core.engine.lease import RunLease
from workbench.core.errors import RunBusyError
from workbench.core.status import RunStatus
from workbench.core.store import Store, shown_run_status
from workbench.core.views.runs import list_runs


def _cmd(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "workbench", "--db", str(tmp_path / "wb.db"),
        "--config", str(tmp_path / "workbench.toml"), *args,
    ]  # fmt: skip


ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_live_lease_refuses_a_second_executor_and_a_stale_one_is_taken_over(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "wb.db") as store:
        run_id = store.create_run("r", "calibration", {})
        store.set_run_status(run_id, RunStatus.RUNNING)
        assert shown_run_status(store.get_run(run_id)) is RunStatus.INTERRUPTED  # no lease
        with RunLease(store, run_id, interval=0.05):
            assert shown_run_status(store.get_run(run_id)) is RunStatus.RUNNING
            with pytest.raises(RunBusyError) as err, RunLease(store.reopen(), run_id):
                pass
            message = str(err.value)
            assert f"run {run_id} is already running (pid {os.getpid()}" in message
            assert "\n" not in message
            beat = store.get_run(run_id)["heartbeat_at"]
            time.sleep(0.3)
            assert store.get_run(run_id)["heartbeat_at"] > beat  # the heartbeat thread beats
        assert store.get_run(run_id)["owner_token"] is None  # released on exit
        # an owner on another host whose heartbeat stopped long ago: taken over
        store.update(
            "runs",
            run_id,
            {"owner_pid": 1, "owner_host": "elsewhere", "owner_token": "x", "heartbeat_at": 1.0},
        )
        assert shown_run_status(store.get_run(run_id)) is RunStatus.INTERRUPTED
        with RunLease(store, run_id):
            assert store.get_run(run_id)["owner_host"] != "elsewhere"


def test_a_lost_lease_cancels_the_run(tmp_path: Path) -> None:
    lost: list[bool] = []
    with Store(tmp_path / "wb.db") as store:
        run_id = store.create_run("r", "calibration", {})
        with RunLease(store, run_id, interval=0.05, on_lost=lambda: lost.append(True)):
            store.update("runs", run_id, {"owner_token": "someone-else"})
            deadline = time.monotonic() + 5
            while not lost and time.monotonic() < deadline:
                time.sleep(0.02)
        assert lost == [True]
        assert store.get_run(run_id)["owner_token"] == "someone-else"  # theirs, untouched


@pytest.mark.slow
def test_killed_run_shows_interrupted_then_resumes_cleanly(
    tmp_path: Path, stub_server: StubServer
) -> None:
    stub_server.latency = 0.05
    config = workspace(tmp_path, stub_server, samples=10)  # 60 items, 4 at a time
    proc = subprocess.Popen(
        _cmd(tmp_path, "run", str(config)), cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL
    )
    try:
        assert stub_server.wait_for(lambda s: s.paid >= 12, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(1)["status"] == "running"  # what the killed process left
        assert [r.status for r in list_runs(store)] == [RunStatus.INTERRUPTED]
        assert [r.id for r in list_runs(store, status=RunStatus.INTERRUPTED)] == [1]
        assert list_runs(store, status=RunStatus.RUNNING) == []
    listing = subprocess.run(
        _cmd(tmp_path, "runs"), cwd=tmp_path, env={**ENV, "COLUMNS": "200"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert "interrupted" in listing.stdout
    resume = subprocess.run(
        _cmd(tmp_path, "run", "--resume", "1"), cwd=tmp_path, env=ENV, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert resume.returncode == 0, resume.stderr
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(1)["status"] == "done"
        assert len(store.samples(1, status="done")) == 60
        assert list_runs(store)[0].status is RunStatus.DONE


@pytest.mark.slow
def test_two_concurrent_resumes_pay_nothing_twice(tmp_path: Path, stub_server: StubServer) -> None:
    stub_server.latency = 0.05
    config = workspace(tmp_path, stub_server, samples=10)
    first = subprocess.Popen(
        _cmd(tmp_path, "run", str(config)), cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL
    )
    assert stub_server.wait_for(lambda s: s.paid >= 8, timeout=60)
    first.send_signal(signal.SIGINT)  # a clean stop: nothing in flight is lost
    first.wait(60)
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(1)["status"] == "cancelled"
        committed = store.query("SELECT request FROM calls WHERE status='ok'")
    before = {_request_key(json.loads(c["request"])) for c in committed}
    stub_server.reset()  # calls abandoned in flight by the cancel are paid again: not ours
    # two shells resume the same run at once
    resumes = [
        subprocess.Popen(
            _cmd(tmp_path, "run", "--resume", "1", "--no-live"),
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [p.communicate(timeout=120) for p in resumes]
    codes = sorted(p.returncode for p in resumes)
    assert codes == [0, 2], outcomes
    refused = next(err for p, (_, err) in zip(resumes, outcomes, strict=True) if p.returncode)
    assert "run 1 is already running (pid" in refused and refused.strip().count("\n") == 0
    with Store(tmp_path / "wb.db") as store:
        assert len(store.samples(1, status="done")) == 60
    paid = Counter(
        _request_key(r.body) for r in stub_server.requests if r.outcome == "ok"
    )  # counted at the stub
    assert max(paid.values()) == 1, [k for k, n in paid.items() if n > 1]
    assert not set(paid) & before and len(paid) + len(before) == 60
