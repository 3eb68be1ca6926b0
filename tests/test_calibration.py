"""Calibration end to end with a scripted solver of known per-problem solve rates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.engine_fakes import FakeProvider, add_toy_problems, make_engine
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.grading import GRADER_NAME
from workbench.core.providers import ModelRequest

SAMPLES = 5


def solver(req: ModelRequest, attempt: int) -> str:
    """Problem i ("What is 2 + i?") is solved by samples with seed < i: solve rate i/5."""
    i = int(re.search(r"2 \+ (\d+)", req.messages[-1].content).group(1))  # type: ignore[union-attr]
    seed = req.seed or 0
    answer = 2 + i if seed < i else 999
    return f"2 + {i} is {answer}.\n#### {answer}"


async def test_calibration_rates_bins_and_summary(tmp_path: Path) -> None:
    provider = FakeProvider(script=solver)
    engine, store = make_engine(tmp_path, provider)
    add_toy_problems(store, 6)
    config = load_experiment_config(
        {
            "kind": "calibration",
            "name": "toy",
            "models": ["fake:m1"],
            "samples": SAMPLES,
            "problems": {"dataset": "toy"},
        }
    )
    run_id = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "done"
    assert provider.calls == 6 * SAMPLES
    seeds = sorted({r.seed for r in provider.requests})
    assert seeds == list(range(SAMPLES))  # seeded per sample index
    assert all(r.temperature == 0.7 for r in provider.requests)

    rows = store.query("SELECT problem_id, solve_rate, bin, n FROM difficulty ORDER BY problem_id")
    assert [(r["solve_rate"], r["bin"]) for r in rows] == [
        (0.0, "hard"),
        (0.2, "medium"),
        (0.4, "medium"),
        (0.6, "medium"),
        (0.8, "easy"),
        (1.0, "easy"),
    ]
    assert all(r["n"] == SAMPLES for r in rows)
    assert store.scalar("SELECT COUNT(*) FROM grades WHERE grader=?", (GRADER_NAME,)) == 30

    from workbench.core.experiments import make_experiment

    summary = make_experiment(config, engine.settings).summarise(store, run_id)["models"]["fake:m1"]
    assert summary["correct"] == 15 and summary["graded"] == 30
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["bins"] == {"hard": 1, "medium": 3, "easy": 2}

    # re-running the same config costs nothing: every sample comes from the cache
    again = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    assert provider.calls == 6 * SAMPLES
    assert store.run_totals(again).n_cache_hits == 30


async def test_calibration_configured_bins(tmp_path: Path) -> None:
    engine, store = make_engine(tmp_path, FakeProvider(script=solver))
    add_toy_problems(store, 6)
    config = load_experiment_config(
        {
            "kind": "calibration",
            "models": ["fake:m1"],
            "samples": SAMPLES,
            "bins": {"edges": [0.5, 0.9], "names": ["low", "mid", "high"]},
        }
    )
    await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    bins = [r["bin"] for r in store.query("SELECT bin FROM difficulty ORDER BY problem_id")]
    assert bins == ["low", "low", "low", "mid", "mid", "high"]


def test_calibration_config_is_strict() -> None:
    from workbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"config: models: .*provider:model"):
        load_experiment_config({"kind": "calibration", "models": ["gpt-4o"]})
    with pytest.raises(ConfigError, match="samplez"):
        load_experiment_config({"kind": "calibration", "models": ["a:b"], "samplez": 3})
