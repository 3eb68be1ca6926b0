"""The CSV stages end to end against the loopback stub, in each provider's wire format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.csv_stub import SUNDAY, SUNDAY_TIP, TIPS_PATH, csv_responder
from tests.stub_server import StubServer
from workbench.core.csv_agent import import_table
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
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store

KEY_ENV = "WB_CSV_TEST_KEY"

CONFIG: dict[str, Any] = {
    "kind": "csv_agent",
    "name": "csv toy",
    "tables": ["tips"],
    "teacher": "stub:teacher-1",
    "student": "stub:student-1",
    "questions_per_table": 4,
    "explore_turns": 3,
    "samples": 3,
    "max_turns": 6,
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-csv-test-key-123456")


def setup(
    tmp_path: Path, stub: StubServer, kind: str
) -> tuple[Engine, Store, Settings, ProviderRegistry]:
    stub.responder = csv_responder
    base = {
        "openai-compatible": stub.openai_base_url,
        "openai": stub.openai_base_url,
        "anthropic": stub.anthropic_base_url,
        "cohere": stub.cohere_base_url,
    }[kind]
    settings = Settings(
        providers={
            "stub": ProviderSettings(
                kind=kind, base_url=base, api_key_env=KEY_ENV, max_attempts=2, timeout_s=10.0
            )
        }
    )
    registry = ProviderRegistry(settings)
    store = Store(tmp_path / "wb.db")
    import_table(store, TIPS_PATH)
    engine = Engine(store, registry, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    return engine, store, settings, registry


@pytest.mark.parametrize("kind", ["openai", "anthropic", "cohere"])
async def test_generate_validate_answer_best_of_n_verify(
    tmp_path: Path, stub_server: StubServer, kind: str
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, kind)
    config = load_experiment_config(CONFIG)
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "done"
    # 3 teacher turns, 3 hinted turns, 3 attempts x 4 turns
    assert stub_server.paid == 3 + 3 + 3 * 4

    statuses = {r["payload"]["status"]: r for r in question_rows(store, run_id)}
    assert set(statuses) == {"accepted", "dag_answer_mismatch", "not_multi_step", "duplicate"}
    mismatch = statuses["dag_answer_mismatch"]["payload"]
    assert "the DAG gives" in mismatch["reason"] and mismatch["recomputed"]["max_bill"] > 0
    assert statuses["accepted"]["payload"]["question"]["question"] == SUNDAY["question"]

    hint = verified(store, run_id, ANSWER_HINT)
    assert len(hint) == 1 and hint[0]["keep"] and hint[0]["stop_reason"] == "answered"
    assert hint[0]["subs"][0]["predicted"] == f"{SUNDAY_TIP:.2f}"
    attempts = verified(store, run_id, BEST_OF_N)
    assert len(attempts) == 3 and all(a["correct"] for a in attempts)
    assert all(a["turns"] == 4 and a["tool_calls"] == 3 and a["tool_errors"] == 1 for a in attempts)
    assert all(a["overlap"]["jaccard"] == 1.0 for a in attempts)

    # tools ran once per distinct call: the attempts' repeats came from the cache
    rows = store.query("SELECT tool, cache_hit, error_kind, shown FROM tool_calls ORDER BY id")
    assert len(rows) == 2 + 2 + 3 * 3
    assert sum(r["cache_hit"] for r in rows) >= 4
    assert any("did you mean 'tip'?" in r["shown"] for r in rows)
    scores = stage_scores(store, run_id, BEST_OF_N, ks=(1, 3))
    assert scores.scores.abq == 1.0 and scores.pass_rates[attempts[0]["question_id"]].rate == 1.0

    # a resume finds nothing left to pay for
    paid = stub_server.paid
    await run_experiment(store, registry, settings, config, run_id=run_id, engine=engine)
    assert stub_server.paid == paid
    assert len(store.samples(run_id, GENERATE)) == 3
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
