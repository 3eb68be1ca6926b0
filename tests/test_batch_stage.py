"""``mode = "batch"`` per stage in experiment configs, run by ``workbench run``'s runner:
provider batches replace phase 2; unbatchable stages fail before spend; sync fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine_fakes import add_toy_problems
from tests.stub_batch import BatchAPIStub
from workbench.core.batch import stage as batch_stage
from workbench.core.engine import Engine, ItemFinished, RunStats
from workbench.core.errors import ConfigError
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store

KEY = "WB_BATCH_STAGE_KEY"


@pytest.fixture
def stub() -> Iterator[BatchAPIStub]:
    s = BatchAPIStub().start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY, "sk-batch-stage")
    monkeypatch.setattr(batch_stage, "FIRST_POLL_S", 0.0)
    monkeypatch.setattr(batch_stage, "POLL_CAP_S", 0.0)


def setup(tmp_path: Path, stub: BatchAPIStub) -> tuple[Engine, Store]:
    settings = Settings(
        providers={
            "oa": ProviderSettings(kind="openai", base_url=f"{stub.url}/v1", api_key_env=KEY),
            "gpu": ProviderSettings(kind="openai-compatible", base_url=f"{stub.url}/v1"),
        },
        pricing={"oa:gpt-4o-mini": Price(input=1.0, output=2.0)},
    )
    store = Store(tmp_path / "wb.db")
    add_toy_problems(store, 3)
    return Engine(store, ProviderRegistry(settings), settings), store


def config(**extra: Any) -> Any:
    return load_experiment_config(
        {
            "kind": "calibration",
            "models": ["oa:gpt-4o-mini"],
            "samples": 2,
            "problems": {"dataset": "toy"},
            "stages": {"solve": {"mode": "batch"}},
            **extra,
        }
    )


async def run(engine: Engine, store: Store, cfg: Any) -> int:
    return await run_experiment(store, engine.providers, engine.settings, cfg, engine=engine)


async def test_a_batch_stage_goes_out_as_provider_batches(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    events: list[Any] = []
    engine.on_event = events.append
    run_id = await run(engine, store, config())
    assert store.get_run(run_id)["status"] == "done"
    assert stub.sync_calls == 0 and stub.creates >= 1
    # progress while the batches are out, as for a sync stage: stats and item events
    last = [e for e in events if isinstance(e, RunStats)][-1]
    assert last.stages["solve"].done == 6 and last.spent_usd > 0
    assert sum(isinstance(e, ItemFinished) for e in events) == 6
    assert len(stub.billed) == 6 and set(stub.billed.values()) == {1}
    calls = store.query("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert len(calls) == 6
    for c in calls:  # the batch price: half of the list price
        full = (c["input_tokens"] * 1.0 + c["output_tokens"] * 2.0) / 1e6
        assert c["cost_usd"] == pytest.approx(full / 2)
    # phase 3 as for sync: post-processing graded what the batch returned
    graded = store.scalar(
        "SELECT COUNT(*) FROM grades g JOIN samples s ON s.id = g.sample_id WHERE s.run_id=?",
        (run_id,),
    )
    assert graded == 6
    await engine.providers.aclose()


async def test_a_stage_that_cannot_batch_fails_before_spend(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    with pytest.raises(ConfigError) as err:
        await run(engine, store, config(models=["gpu:llama"]))
    assert "stage solve" in str(err.value) and "no batch API" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"stages\.nope: no such stage"):
        await run(engine, store, config(stages={"nope": {"mode": "batch"}}))
    assert store.query("SELECT id FROM runs") == []
    assert stub.creates == 0 and stub.sync_calls == 0 and not stub.files
    await engine.providers.aclose()


async def test_items_failing_every_batch_fall_back_to_sync(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    stub.fail_all = True
    engine, store = setup(tmp_path, stub)
    run_id = await run(engine, store, config(batch_fallback="sync"))
    assert store.get_run(run_id)["status"] == "done"
    assert stub.creates == 3  # one batch per batch attempt, then the rest went sync
    assert stub.sync_calls == 6
    done = store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=? AND status='done'", (run_id,))
    assert done == 6
    await engine.providers.aclose()


async def test_without_fallback_the_stage_fails_naming_it(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    stub.fail_all = True
    engine, store = setup(tmp_path, stub)
    run_id = await run(engine, store, config())
    run_row = store.get_run(run_id)
    assert run_row["status"] == "failed"
    assert "stage solve: 6 item(s) not finished in batch mode" in run_row["error"]
    assert stub.sync_calls == 0
    await engine.providers.aclose()


async def test_cancelling_the_run_cancels_its_batches(tmp_path: Path) -> None:
    import threading

    from workbench.core.engine import Event, StageStarted

    slow = BatchAPIStub(steps=100_000).start()  # its batches never end by themselves
    try:
        engine, store = setup(tmp_path, slow)

        def listener(event: Event) -> None:
            if isinstance(event, StageStarted):
                threading.Timer(0.3, engine.cancel).start()

        engine.on_event = listener
        run_id = await run(engine, store, config())
        run_row = store.get_run(run_id)
        assert run_row["status"] == "cancelled"
        assert "asked to stop" in run_row["error"]
        assert slow.batches and all(b.get("_cancel") for b in slow.batches.values())
        # the next poll records what the cancelled batch returned, and settles it
        from workbench.core.batch import remote

        report = await remote.poll_once(engine, store, run_id)
        assert report.open == 0
        await engine.providers.aclose()
    finally:
        slow.stop()


def test_workbench_run_sends_a_batch_stage_as_batches(
    tmp_path: Path, stub: BatchAPIStub, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli.main import main

    with Store(tmp_path / "wb.db") as store:
        add_toy_problems(store, 3)
    (tmp_path / "workbench.toml").write_text(
        f"""
[providers.oa]
kind = "openai"
base_url = "{stub.url}/v1"
api_key_env = "{KEY}"

[pricing."oa:gpt-4o-mini"]
input = 1.0
output = 2.0
"""
    )
    config = tmp_path / "cal.toml"
    config.write_text(
        """kind = "calibration"
name = "batched"
models = ["oa:gpt-4o-mini"]
samples = 2

[stages.solve]
mode = "batch"

[problems]
dataset = "toy"
"""
    )
    db, settings = str(tmp_path / "wb.db"), str(tmp_path / "workbench.toml")
    assert main(["--db", db, "--config", settings, "run", str(config)]) == 0
    assert "done" in capsys.readouterr().out
    assert len(stub.billed) == 6 and stub.sync_calls == 0
    with Store(tmp_path / "wb.db") as store:
        assert store.scalar("SELECT COUNT(*) FROM batches WHERE status='ingested'") >= 1


async def test_a_recovery_run_batches_its_continuations_with_a_self_hosted_perturber(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    """Each stage is checked against its own models: a batch continue stage with a
    batchable completer passes, a batch perturb stage on a self-hosted model does not."""
    from workbench.core.experiments import make_experiment
    from workbench.core.experiments.preflight import call_plans
    from workbench.core.experiments.runner import _stage_plans

    engine, _ = setup(tmp_path, stub)

    def check(stages: dict[str, Any]) -> None:
        cfg = load_experiment_config(
            {
                "kind": "recovery",
                "perturber": "gpu:llama",
                "completer": "oa:gpt-4o-mini",
                "check_too_easy": False,
                "control": True,
                "stages": stages,
            }
        )
        experiment = make_experiment(cfg, engine.settings)
        plans = call_plans(cfg)
        batch_stage.check_stages(
            engine,
            {k: v["mode"] for k, v in stages.items()},
            experiment.stages(),
            lambda s: _stage_plans(experiment, s, plans),
        )

    check({"continue": {"mode": "batch"}, "control": {"mode": "batch"}})
    with pytest.raises(ConfigError, match=r"stage perturb: .*gpu:llama \(perturber\)"):
        check({"perturb": {"mode": "batch"}})
    await engine.providers.aclose()
