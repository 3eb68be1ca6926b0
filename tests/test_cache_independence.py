"""Stages whose samples must be independent draws never share a cache key.

The rule (``experiments.base.SEED_STREAMS``): two work items share a cache key only
when they are meant to be the same draw.  Each pair the issue names is checked on a
real run through the real engine and store: check vs continue (one model perturbs,
checks and completes), control vs continue, calibration vs the on-policy source, and
methods samples vs the vote / resolve stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_recovery_truth import (
    TRUTH,
    Script,
    ScriptedProvider,
    bonferroni,
    run,
    seed_problems,
)
from workbench.core.analysis import queries
from workbench.core.analysis import rates as an
from workbench.core.experiments.base import SEED_STREAMS, draw_seed
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store


@pytest.fixture
def world(tmp_path: Path) -> tuple[Store, ProviderRegistry, Settings, ScriptedProvider]:
    store = Store(tmp_path / "draws.db")
    seed_problems(store)
    provider = ScriptedProvider()
    settings = Settings()
    return store, ProviderRegistry(settings, {"scripted": provider}), settings, provider


class OneModelScript(Script):
    """One model (``completer``) perturbs, checks and completes, as a user's config may ask."""

    def reply(self, model: str, prompt: str, prefix: str | None, retried: bool, blob: str) -> str:
        if prefix is None and "Rewrite step" in prompt:
            truth = next(t for t in TRUTH if t.question in prompt)
            return self.perturb(truth, prompt, retried)
        return super().reply(model, prompt, prefix, retried, blob)


def _hashes(store: Store, run_id: int, stage: str) -> set[str]:
    return {
        r["request_hash"]
        for r in store.query(
            "SELECT c.request_hash FROM samples s JOIN calls c ON c.id = s.call_id"
            " WHERE s.run_id=? AND s.stage=?",
            (run_id, stage),
        )
    }


def _hits(store: Store, run_id: int, stage: str) -> int:
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM samples s JOIN calls c ON c.id = s.call_id"
            " WHERE s.run_id=? AND s.stage=? AND c.cache_hit=1",
            (run_id, stage),
        )
    )


def test_seed_streams_are_disjoint() -> None:
    seeds = {stream: {draw_seed(7, i, stream) for i in range(10_000)} for stream in SEED_STREAMS}
    main = {draw_seed(7, i) for i in range(10_000)}
    assert draw_seed(7, 3) == 10  # the measured draws keep their seeds (old caches still hit)
    for stream, values in seeds.items():
        assert values.isdisjoint(main), stream
        assert max(values) < 2**31


def test_check_and_continue_are_independent_draws_when_one_model_does_both(
    world: Any,
) -> None:
    """Regression: continuation 0 was a cache hit of the check (always wrong by selection)."""
    store, providers, settings, provider = world
    provider.script = OneModelScript()
    run_id = run(
        store,
        providers,
        settings,
        {
            "kind": "recovery",
            "name": "one-model",
            "problems": {"dataset": "truth", "ids": ["t1", "t2", "t3", "t4"]},
            "perturber": "scripted:completer",
            "completer": "scripted:completer",
            "samples": 12,
            "continuation": "prefill",
            "max_attempts": 2,
            "seed": 5,
        },
    )
    assert store.get_run(run_id)["status"] == "done"
    checks = _hashes(store, run_id, "check")
    assert checks, "the too-easy check ran"
    assert checks.isdisjoint(_hashes(store, run_id, "continue"))
    assert _hits(store, run_id, "continue") == 0
    cont = queries.load_outcomes(store, run_id, stage="continue")
    kept = {o.problem_id for o in cont}
    truth = sum(next(t for t in TRUTH if t.id == pid).perturbed for pid in kept) / len(kept)
    (pooled,) = an.recovery_table(cont, "model", confidence=bonferroni(1, 0.01))
    assert pooled.rate.contains(truth), (pooled.rate, truth)
    # sample 0 is a fresh draw, not a copy of a check that had to be wrong
    first = [o for o in cont if o.sample_index == 0]
    assert any(o.correct for o in first), [o.correct for o in first]


def test_control_and_continue_never_share_a_key(world: Any) -> None:
    store, providers, settings, _ = world
    run_id = run(
        store,
        providers,
        settings,
        {
            "kind": "recovery",
            "name": "control",
            "problems": {"dataset": "truth", "ids": ["t1", "t2"]},
            "perturber": "scripted:perturber",
            "completer": "scripted:completer",
            "samples": 3,
            "continuation": "prefill",
            "control": True,
            "check_too_easy": False,
        },
    )
    cont, control = _hashes(store, run_id, "continue"), _hashes(store, run_id, "control")
    assert cont and control and cont.isdisjoint(control)
    assert _hits(store, run_id, "control") == 0
    seeds = store.query(
        "SELECT json_extract(c.request, '$.seed') AS seed FROM samples s"
        " JOIN calls c ON c.id = s.call_id WHERE s.run_id=? AND s.stage='control'",
        (run_id,),
    )
    assert {r["seed"] for r in seeds} == {draw_seed(0, i, "control") for i in range(3)}


def test_on_policy_continuations_are_not_calibration_draws(world: Any) -> None:
    store, providers, settings, _ = world
    calib = run(
        store,
        providers,
        settings,
        {
            "kind": "calibration",
            "name": "calib",
            "problems": {"dataset": "truth", "ids": ["t2", "t4", "t5"]},
            "solvers": ["scripted:completer"],
            "samples": 6,
        },
    )
    on = run(
        store,
        providers,
        settings,
        {
            "kind": "on-policy",
            "name": "on",
            "completer": "scripted:completer",
            "calibration_run": calib,
            "samples": 6,
            "band": [0.0, 1.0],
            "min_samples": 1,
        },
    )
    source = _hashes(store, calib, "solve")
    cont = _hashes(store, on, "continue")
    assert cont and source.isdisjoint(cont)
    assert _hits(store, on, "continue") == 0


@pytest.mark.parametrize("disagreement", ["reflect"])
def test_methods_samples_and_the_resolve_stage_are_distinct_draws(
    world: Any, disagreement: str
) -> None:
    """Self-consistency samples are distinct keys; the vote makes no call; a reflect
    re-attempt is a request of its own, never a cached solve sample."""
    store, providers, settings, _ = world
    run_id = run(
        store,
        providers,
        settings,
        {
            "kind": "methods",
            "name": "methods",
            "problems": {"dataset": "truth", "ids": ["t1", "t2"]},
            "solver": "scripted:completer",
            "methods": ["cot"],
            "samples": 4,
            "disagreement": disagreement,
        },
    )
    rows = store.query(
        "SELECT c.request_hash, c.cache_hit FROM samples s JOIN calls c ON c.id = s.call_id"
        " WHERE s.run_id=? AND s.stage='solve'",
        (run_id,),
    )
    assert len(rows) == 8 and len({r["request_hash"] for r in rows}) == 8
    assert not any(r["cache_hit"] for r in rows)
    votes = store.samples(run_id, "vote")
    assert votes and all(v["call_id"] is None for v in votes)
    assert _hashes(store, run_id, "resolve").isdisjoint(_hashes(store, run_id, "solve"))
