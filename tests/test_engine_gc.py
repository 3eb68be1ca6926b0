"""The engine freezes the collector's view of its prepared items while a run sends, and
gives it back at the end, however the run ends."""

from __future__ import annotations

import gc
from pathlib import Path

from tests.engine_fakes import FakeProvider, make_engine
from workbench.core.engine import WorkItem, item_key
from workbench.core.providers import Message, ModelRequest


def work(n: int) -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key("solve", f"p{i}"),
            stage="solve",
            role="solver",
            model_ref="fake:m",
            request=ModelRequest(model="m", messages=(Message("user", f"q {i}"),)),
        )
        for i in range(n)
    ]


async def test_frozen_while_sending_and_unfrozen_after(tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    seen: list[int] = []

    def script(request: ModelRequest, attempt: int) -> str:
        seen.append(gc.get_freeze_count())
        return "ok"

    engine, store = make_engine(tmp_path, FakeProvider(script=script))
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(5))).status == "done"
    assert seen and min(seen) > 0  # the prepared items were out of the collector's way
    assert gc.get_freeze_count() == 0


async def test_unfrozen_when_the_run_fails(tmp_path: Path) -> None:
    def script(request: ModelRequest, attempt: int) -> str:
        raise RuntimeError("adapter bug")

    engine, store = make_engine(tmp_path, FakeProvider(script=script))
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(2))).status == "failed"
    assert gc.get_freeze_count() == 0
