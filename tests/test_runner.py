"""Experiment runner: strict config loading, run records, resume and retry-failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_fakes import FakeProvider, Recorder, add_toy_problems, make_engine
from workbench.core.engine import RunFinished
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.providers import ModelRequest

CONFIG = {
    "kind": "calibration",
    "models": ["fake:m1"],
    "samples": 2,
    "problems": {"dataset": "toy"},
}


def test_load_from_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text('kind = "calibration"\nmodels = ["fake:m1"]\nsamples = 3\n')
    config = load_experiment_config(path)
    assert config.kind == "calibration" and config.samples == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such experiment config"),
        ("kind = ", "invalid TOML"),
        ('name = "x"', "kind: missing"),
        ('kind = "nope"', "unknown experiment 'nope'"),
        ('kind = "calibration"\nmodels = ["a:b"]\nsamples = 0', "samples: Input should be"),
        ('kind = "calibration"\nmodels = ["a:b"]\n[problems]\nlimit = "x"', "problems.limit"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


async def test_run_record_status_and_events(tmp_path: Path) -> None:
    rec = Recorder()
    engine, store = make_engine(tmp_path, FakeProvider(), recorder=rec)
    add_toy_problems(store, 3)
    run_id = await run_experiment(
        store, engine.providers, engine.settings, load_experiment_config(CONFIG), engine=engine
    )
    run = store.get_run(run_id)
    assert run["status"] == "done" and run["started_at"] and run["finished_at"]
    assert run["config"]["samples"] == 2
    assert rec.of(RunFinished)[-1].status == "done"


async def test_preflight_config_error_leaves_no_run_and_no_spend(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider, prices={})
    add_toy_problems(store, 2)
    config = load_experiment_config({**CONFIG, "budget_usd": 1.0})
    with pytest.raises(ConfigError, match="no known price"):
        await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    # a config error is the config's, not a run's: no 'failed' row is left behind
    assert store.query("SELECT id FROM runs") == []
    assert provider.calls == 0


async def test_resume_reuses_the_run_and_kind_must_match(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider)
    add_toy_problems(store, 3)
    config = load_experiment_config(CONFIG)
    run_id = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    again = await run_experiment(
        store, engine.providers, engine.settings, config, engine=engine, run_id=run_id
    )
    assert again == run_id and provider.calls == 6
    assert store.scalar("SELECT COUNT(*) FROM runs") == 1
    other = store.create_run("x", "recovery", {})
    with pytest.raises(ConfigError, match="not calibration"):
        await run_experiment(
            store, engine.providers, engine.settings, config, engine=engine, run_id=other
        )


async def test_retry_failed_reruns_exactly_the_errored_items(tmp_path: Path) -> None:
    failing = {"on": True}

    def script(req: ModelRequest, n: int) -> str:
        if failing["on"] and "2 + 1?" in req.messages[-1].content:
            raise ProviderError(ErrorKind.BAD_REQUEST, "rejected", status=400)
        return "#### 3"

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider)
    add_toy_problems(store, 3)
    config = load_experiment_config(CONFIG)
    run_id = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "failed"
    errored = {s["item_key"] for s in store.samples(run_id, status="error")}
    assert len(errored) == 2
    # an item that never ran (no sample) must not be picked up by retry-failed
    store.conn.execute("DELETE FROM samples WHERE item_key='solve/toy/0/0/fake:m1'")
    failing["on"] = False
    provider.requests.clear()
    await run_experiment(
        store, engine.providers, engine.settings, config, engine=engine, run_id=run_id,
        retry_failed=True,
    )  # fmt: skip
    sent = {r.messages[-1].content for r in provider.requests}
    assert len(provider.requests) == 2 and all("2 + 1?" in s for s in sent)
    assert store.get_run(run_id)["status"] == "done"
    assert not store.samples(run_id, status="error")
    assert store.run_totals(run_id).n_errors == 2  # the old error calls stay on record


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "calibration-local.toml"
    config = load_experiment_config(example)
    assert config.kind == "calibration" and config.solvers == ("local:gemma-3-270m",)  # type: ignore[attr-defined]
