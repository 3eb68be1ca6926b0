"""A CSV run killed mid-conversation resumes at the next turn; no turn is paid twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.csv_stub import TIPS_PATH, csv_responder
from tests.stub_server import StubServer
from workbench.core.csv_agent import import_table
from workbench.core.csv_agent.pipeline import BEST_OF_N, verified
from workbench.core.engine import request_sql
from workbench.core.store import Store

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "WB_CSV_RESUME_KEY"


def _jailed_processes(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (the table's private copy)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline and "worker_main.py" in cmdline:
            found.append(int(proc.name))
    return found


def _turn_key(body: dict[str, Any]) -> tuple[object, ...]:
    """(model, seed, turn, question): the same for a stored neutral request and its wire form."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user = next(str(m.get("content")) for m in messages if m.get("role") == "user")
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    return (body.get("model"), body.get("seed"), turn, user)


@pytest.mark.slow
def test_sigkill_mid_conversation_then_resume_pays_each_turn_once(
    tmp_path: Path, stub_server: StubServer
) -> None:
    stub_server.latency = 0.05
    stub_server.responder = csv_responder
    table = tmp_path / "tips.csv"
    shutil.copy(TIPS_PATH, table)
    with Store(tmp_path / "wb.db") as store:
        import_table(store, table)
    (tmp_path / "workbench.toml").write_text(
        f'[providers.stub]\nkind = "openai"\nbase_url = "{stub_server.openai_base_url}"\n'
        f'api_key_env = "{KEY_ENV}"\nmax_concurrency = 4\ntimeout_s = 10\n'
    )
    config = tmp_path / "csv.toml"
    config.write_text(
        'kind = "csv_agent"\nname = "resume"\ntables = ["tips"]\nteacher = "stub:t"\n'
        'student = "stub:s"\nquestions_per_table = 4\nexplore_turns = 3\nsamples = 8\n'
        "max_turns = 6\n"
    )
    cmd = [
        sys.executable, "-m", "workbench", "--db", str(tmp_path / "wb.db"),
        "--config", str(tmp_path / "workbench.toml"), "run", str(config),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), KEY_ENV: "sk-csv-resume-0001"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # generation (3) + hint (3) done, best-of-n under way
        assert stub_server.wait_for(lambda s: s.paid >= 24, timeout=90)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while _jailed_processes(str(table)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _jailed_processes(str(table)) == []  # the workers died with their parent
    with Store(tmp_path / "wb.db") as store:
        committed = store.query(  # long requests live in blobs: read them as every reader does
            f"SELECT {request_sql()} AS request FROM calls WHERE status = 'ok' AND cache_hit = 0"
        )
    before = {_turn_key(json.loads(c["request"])) for c in committed}
    assert 10 <= len(before) < 4 + 2 * 3 + 2 * 8 * 4  # killed mid-run

    resume = subprocess.run(
        [*cmd[:-2], "run", "--resume", "1"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert resume.returncode == 0, resume.stderr
    paid = Counter(_turn_key(r.body) for r in stub_server.requests if r.outcome == "ok")
    assert all(paid[key] == 1 for key in before)  # a turn stored before the kill: never re-sent
    assert len(paid) == 4 + 2 * 3 + 2 * 8 * 4  # every turn of every conversation, once each
    # only requests in flight at the kill (at most max_concurrency) were sent twice
    assert sum(paid.values()) - len(paid) <= 4
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(1)["status"] == "done"
        attempts = verified(store, 1, BEST_OF_N)
        assert len(attempts) == 16 and all(a["correct"] and a["turns"] == 4 for a in attempts)
        # every tool call of every turn is stored once
        dupes = store.scalar(
            "SELECT COUNT(*) FROM (SELECT sample_id, call_id FROM tool_calls"
            " GROUP BY sample_id, call_id HAVING COUNT(*) > 1)"
        )
        assert dupes == 0
