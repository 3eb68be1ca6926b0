"""The live projected cost counts the stages still to come (issue 11): early in a two-stage
run it used to be the first stage's alone ($0.0029 projected, $0.1556 final)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.engine_fakes import add_toy_problems
from tests.stub_server import StubServer
from tests.stub_wire import StubReply, default_responder, last_user_text
from workbench.core.engine import Event, RunStats
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store


def responder(path: str, body: dict[str, Any]) -> StubReply:
    """Wrong, multi-step solves (so each is cut into a prefix); continuations just finish."""
    reply = default_responder(path, body)
    if reply.text.startswith("You asked"):
        n = len(last_user_text(body)) % 3 + 3  # 3-5 steps, so the cost varies by problem
        steps = "\n\n".join(f"Step {i}: add {i} and carry on." for i in range(1, n + 1))
        return StubReply(text=f"{steps}\n\nThe answer is 42.")
    return reply


def test_the_first_snapshot_projects_the_later_stage(
    tmp_path: Path, stub_server: StubServer
) -> None:
    stub_server.responder = responder
    stub_server.latency = 0.08  # several snapshots within the first stage
    store = Store(tmp_path / "wb.db")
    add_toy_problems(store, 6)
    settings = Settings(
        providers={
            "stub": ProviderSettings(kind="openai-compatible", base_url=stub_server.openai_base_url)
        },
        pricing={"stub:m": Price(input=1.0, output=2.0)},
    )
    config = load_experiment_config(
        {
            "kind": "weak-prefix",
            "solver": "stub:m",
            "completer": "stub:m",
            "solver_samples": 1,
            "samples": 4,
            "max_tokens": 64,
            "solver_max_tokens": 128,
            "concurrency": 1,
            "problems": {"dataset": "toy"},
        }
    )
    seen: list[RunStats] = []

    def on_event(event: Event) -> None:
        if isinstance(event, RunStats):
            seen.append(event)

    async def main() -> int:
        providers = ProviderRegistry(settings)
        try:
            return await run_experiment(store, providers, settings, config, on_event=on_event)
        finally:
            await providers.aclose()

    run_id = asyncio.run(main())
    stages = {
        s["stage"] for s in store.query("SELECT stage FROM samples WHERE run_id=?", (run_id,))
    }
    assert stages == {"weak-solve", "continue"}  # both stages ran and were paid
    final = store.run_totals(run_id).cost_usd
    first_stage = store.scalar(
        "SELECT SUM(c.cost_usd) FROM samples s JOIN calls c ON c.id=s.call_id"
        " WHERE s.run_id=? AND s.stage='weak-solve'",
        (run_id,),
    )
    early = next(s for s in seen if s.projected_usd is not None)
    assert early.stages["weak-solve"].done < 6  # a snapshot from inside the first stage
    assert early.projected_usd is not None and early.projected_high_usd is not None
    assert early.projected_low_usd is not None
    # the later stage is in it: more than the whole first stage costs
    assert early.projected_usd > 2 * first_stage
    assert early.projected_low_usd <= final <= early.projected_high_usd
    store.close()
