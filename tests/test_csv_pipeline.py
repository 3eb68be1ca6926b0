"""The CSV stages end to end against the loopback stub, in each provider's wire format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.csv_stub import CONFIG, KEY_ENV, SUNDAY, SUNDAY_TIP, setup
from tests.stub_server import StubServer
from workbench.core.csv_agent.pipeline import (
    ANSWER_HINT,
    BEST_OF_N,
    GENERATE,
    question_rows,
    stage_scores,
    verified,
)
from workbench.core.engine import Engine, RetryPolicy
from workbench.core.errors import ConfigError
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.settings import Settings


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-csv-test-key-123456")


@pytest.mark.parametrize("kind", ["openai", "anthropic", "cohere"])
async def test_generate_validate_answer_best_of_n_verify(
    tmp_path: Path, stub_server: StubServer, kind: str
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, kind)
    config = load_experiment_config(CONFIG)
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "done"
    # 4 teacher turns (the last answers the feedback), then for 2 questions:
    # 3 hinted turns, 3 attempts x 4 turns
    assert stub_server.paid == 4 + 2 * 3 + 2 * 3 * 4

    statuses = {r["payload"]["status"]: r for r in question_rows(store, run_id)}
    reasons = [r["payload"]["reason"] for r in question_rows(store, run_id)]
    assert set(statuses) == {"accepted", "dag_answer_mismatch", "not_multi_step", "duplicate"}, (
        reasons
    )
    mismatch = statuses["dag_answer_mismatch"]["payload"]
    assert "the DAG gives" in mismatch["reason"] and mismatch["recomputed"]["max_bill"] > 0
    accepted = [
        r["payload"]["question"]["question"]
        for r in question_rows(store, run_id)
        if r["status"] == "done"
    ]
    assert accepted == [SUNDAY["question"], "What is the largest dinner bill?"]  # fixed on retry
    assert len(question_rows(store, run_id)) == 5
    from tests.stub_wire import request_text

    retry = [
        r for r in stub_server.requests if "Some questions were rejected" in request_text(r.body)
    ]
    assert len(retry) == 1  # max_retries = 1: the reasons went back once
    assert "dag_answer_mismatch: max_bill: stated" in request_text(retry[0].body)

    hint = verified(store, run_id, ANSWER_HINT)
    assert len(hint) == 2 and all(h["keep"] and h["stop_reason"] == "answered" for h in hint)
    assert f"{SUNDAY_TIP:.2f}" in [h["subs"][0]["predicted"] for h in hint]
    attempts = verified(store, run_id, BEST_OF_N)
    assert len(attempts) == 6 and all(a["correct"] for a in attempts)
    assert all(a["turns"] == 4 and a["tool_calls"] == 3 and a["tool_errors"] == 1 for a in attempts)
    assert all(a["overlap"]["jaccard"] == 1.0 for a in attempts)

    # tools ran once per distinct call: the attempts' repeats came from the cache
    rows = store.query("SELECT tool, cache_hit, error_kind, shown FROM tool_calls ORDER BY id")
    assert len(rows) == 2 + 2 * 2 + 2 * 3 * 3
    assert sum(r["cache_hit"] for r in rows) >= 8
    assert any("did you mean 'tip'?" in r["shown"] for r in rows)
    scores = stage_scores(store, run_id, BEST_OF_N, ks=(1, 3))
    assert scores.scores.abq == 1.0 and scores.pass_rates[attempts[0]["question_id"]].rate == 1.0

    from tests.test_csv_worker import _descendants

    def is_worker(pid: int) -> bool:
        try:
            return b"worker_main.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    assert not [p for p in _descendants(os.getpid()) if is_worker(p)]  # no tool worker is left

    # a resume finds nothing left to pay for
    paid = stub_server.paid
    await run_experiment(store, registry, settings, config, run_id=run_id, engine=engine)
    assert stub_server.paid == paid
    assert len(store.samples(run_id, GENERATE)) == 4
    await registry.aclose()


async def test_a_model_that_cannot_call_tools_is_refused_before_any_spend(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, "openai")
    config = load_experiment_config({**CONFIG, "student": "local:gemma-3-270m"})
    with pytest.raises(ConfigError, match="cannot call tools"):
        await run_experiment(store, registry, settings, config, engine=engine)
    assert stub_server.paid == 0
    await registry.aclose()


async def test_a_budget_stop_leaves_conversations_counted_as_budget(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, "openai")
    settings = Settings(
        providers=settings.providers,
        pricing={
            "stub:teacher-1": {"input": 0.0, "output": 0.0},
            "stub:student-1": {"input": 100.0, "output": 100.0},  # a few turns fit in $1
        },
    )
    config = load_experiment_config({**CONFIG, "budget_usd": 1.0})
    engine = Engine(store, registry, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    await registry.aclose()
    assert store.get_run(run_id)["status"] == "stopped: budget"
    scores = stage_scores(store, run_id, BEST_OF_N)
    assert scores.stop_reasons.get("budget", 0) >= 1, scores.stop_reasons
    assert stage_scores(store, run_id, ANSWER_HINT).stop_reasons == {"answered": 2}


def test_experiment_kinds_load_without_pandas() -> None:
    """Start-up stays lean: the CSV pipeline (and pandas) load when a CSV run is made."""
    import subprocess
    import sys

    code = "import sys, workbench.core.experiments.kinds as k; assert 'csv_agent' in k.KINDS; "
    code += "assert 'pandas' not in sys.modules, 'pandas imported at start-up'"
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert out.returncode == 0, out.stderr
