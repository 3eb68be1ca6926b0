"""Pre-launch estimates: token counts, max_tokens bound, projection from history, unpriced."""

from __future__ import annotations

from pathlib import Path

from tests.trace_data import build_recovery_run
from workbench.core.engine import PriceTable, WorkItem
from workbench.core.experiments.estimate import estimate_items, output_history
from workbench.core.providers import Message, ModelRequest
from workbench.core.settings import Price, Settings
from workbench.core.store import Store

PRICES = PriceTable.load(Settings(pricing={"stub:completer": Price(input=1.0, output=4.0)}))


def items(n: int, model: str, stage: str = "continue", max_tokens: int = 100) -> list[WorkItem]:
    return [
        WorkItem(
            key=f"{stage}/p{i}/0",
            stage=stage,
            role="completer",
            model_ref=model,
            request=ModelRequest(
                model=model.split(":")[1],
                messages=(Message("user", "x" * 400),),
                max_tokens=max_tokens,
            ),
        )
        for i in range(n)
    ]


def test_without_history_the_range_runs_from_input_only_to_max_tokens(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    est = estimate_items(store, PRICES, items(10, "stub:completer"))
    assert est.n_requests == 10
    assert est.input_tokens == 10 * 101  # 400 chars ~ 100 tokens (+1)
    assert est.max_output_tokens == 1000
    (stage,) = est.stages
    assert stage.projected_output_tokens is None
    assert est.cost_low == 1010 / 1e6
    assert est.cost_high == (1010 + 4 * 1000) / 1e6
    assert est.cost_text().startswith("$0.00")


def test_history_projects_output(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    build_recovery_run(store, n_problems=3, k=4)  # continue calls: 40-42 output tokens each
    mean, n = output_history(store, "stub:completer", "continue")
    assert n >= 3 and mean is not None and 40 <= mean <= 42
    est = estimate_items(store, PRICES, items(10, "stub:completer"))
    (stage,) = est.stages
    assert stage.projected_output_tokens == round(mean * 10)
    assert stage.cost_low is not None and stage.cost_high is not None
    assert stage.cost_low < stage.cost_high


def test_unpriced_is_never_zero(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    est = estimate_items(store, PRICES, items(2, "nowhere:mystery-model"))
    assert est.cost_low is None and est.cost_high is None
    assert est.cost_text() == "unpriced"
    mixed = estimate_items(
        store, PRICES, items(2, "nowhere:mystery-model") + items(2, "stub:completer", "solve")
    )
    assert "unpriced (nowhere:mystery-model)" in mixed.cost_text()
    assert est.unpriced_models == ("nowhere:mystery-model",)
    assert (
        estimate_items(store, PRICES, [], pending_stages=["continue"])
        .summary()
        .endswith("continue")
    )


def test_follow_on_stages_are_projected_from_the_first() -> None:
    from workbench.core.experiments import load_experiment_config
    from workbench.core.experiments.estimate import project_pending

    # a real config (a stand-in object kept the pre-rename field name ``k`` and hid that the
    # projection read a field the config no longer has: every continuation stage counted once)
    config = load_experiment_config(
        {"kind": "recovery", "perturber": "p:q", "completer": "stub:completer", "samples": 3,
         "max_tokens": 50}
    )  # fmt: skip
    first = items(4, "p:q", stage="perturb", max_tokens=20)
    plans, pending = project_pending(config, first, ["perturb-retry-1", "check", "continue"])
    assert pending == ["perturb-retry-1"]
    by_stage = {p.stage: p for p in plans}
    assert (
        by_stage["continue"].n_requests == 12 and by_stage["continue"].model_ref == "stub:completer"
    )
    assert by_stage["continue"].max_output_tokens == 12 * 50
    assert by_stage["continue"].input_tokens == 3 * 4 * (101 + 20)
    assert by_stage["check"].model_ref == "p:q" and by_stage["check"].n_requests == 4
