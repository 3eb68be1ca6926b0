"""Mistake finding and backtracking on labelled traces, against the loopback stub.

A synthetic BIG-Bench-Mistake-format set (two tasks, five steps a trace, some traces
labelled free of mistakes, some with a mistake that left the answer right) is run through
the real engine over HTTP (Anthropic wire format) by scripted models of known skill:

- a critic that names the labelled step with probability FOUND and leaves a clean trace
  alone with probability CLEAN (direct variant), or, step by step, says "No" at the
  labelled step with probability STEP_FOUND and "Yes" everywhere else;
- a continuer whose continuation after a redrawn step is right with a probability that
  depends on whether the redrawn step was the labelled mistake and on whether the trace
  was right to begin with.

The metrics layer must recover those probabilities within its intervals, and
``workbench analyse --json`` must show the same numbers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stub_server import StubReply, StubServer
from tests.test_recovery_truth import _unit
from workbench.cli.main import main
from workbench.core.analysis import run_metrics, wilson
from workbench.core.analysis.metrics import f1_scores
from workbench.core.engine import Engine, RetryPolicy
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.experiments.mistakes.parse import parse_mistake_pick, parse_step_verdict
from workbench.core.library import import_dataset
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store, dumps

N_TRACES = 120  # per task
N_STEPS = 5
FOUND, CLEAN, STEP_FOUND = 0.7, 0.6, 0.8
# the continuer: P(right) after redrawing the labelled mistake / another step, on traces
# that were wrong; and on traces that were right (whatever was redrawn)
FIX_AT_MISTAKE, FIX_ELSEWHERE, KEEP = 0.6, 0.2, 0.9
CONFIDENCE = 0.99


def traces() -> list[dict[str, Any]]:
    rows = []
    for task, target in (("multistep_arithmetic", "42"), ("word_sorting", "apple pear")):
        for i in range(N_TRACES):
            mistake = None if i % 3 == 0 else i % N_STEPS  # a third labelled clean
            wrong_answer = mistake is not None and i % 4 != 1  # some mistakes leave it right
            answer = (
                ("41" if task == "multistep_arithmetic" else "pear apple")
                if wrong_answer
                else target
            )
            question = (
                f"[{task} {i}] what is the answer?"
                if task != "word_sorting"
                else f"sortme{i} words"
            )
            steps = [f"step {k + 1} of trace {task}-{i}" for k in range(N_STEPS - 1)]
            steps.append(f"So the answer is {answer}")
            rows.append({"task": task, "input": question, "steps": steps, "answer": answer,
                         "target": target, "mistake_index": mistake})  # fmt: skip
    return rows


TRACES = traces()
BY_QUESTION = {r["input"]: r for r in TRACES}


def _flat(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def trace_in(prompt: str) -> dict[str, Any]:
    return next(r for q, r in BY_QUESTION.items() if q in prompt)


def critic(prompt: str, blob: str) -> str:
    row = trace_in(prompt)
    label = row["mistake_index"]
    u = _unit(blob)
    asked = re.search(r"Next, step (\d+):", prompt)
    if asked:  # the step variant: "No" only at the labelled step, with STEP_FOUND
        step = int(asked.group(1)) - 1
        return "No" if step == label and u < STEP_FOUND else "Yes"
    if label is None:
        return "Mistake: none" if u < CLEAN else "Mistake: Step 2"
    if u < FOUND:
        return f"Mistake: Step {label + 1}"
    return f"Mistake: Step {(label + 1) % N_STEPS + 1}"  # a wrong step


def continuer(prompt: str, prefix: str | None, blob: str, *, redraw: bool) -> str:
    row = trace_in(prompt)
    kept = [line for line in (prefix or "").splitlines() if line.strip()]
    if redraw:  # the resample stage: one new step
        return f"a fresh step {len(kept) + 1} ({_unit(blob):.6f})\nmore text"
    cut = len(kept) - 1  # the last prefix line is the redrawn step
    if row["answer"] == row["target"]:  # the trace was right to begin with
        p = KEEP
    elif cut == row["mistake_index"]:
        p = FIX_AT_MISTAKE
    else:
        p = FIX_ELSEWHERE
    answer = row["target"] if _unit(blob) < p else "nonsense"
    return f"then more reasoning.\nSo the answer is {answer}."


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    mp = pytest.MonkeyPatch()
    for var in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        mp.delenv(var, raising=False)
    mp.setenv("ANTHROPIC_API_KEY", "stub-key")
    tmp = tmp_path_factory.mktemp("steps")
    data = tmp / "labelled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in TRACES), encoding="utf-8")

    def responder(path: str, body: dict[str, Any]) -> StubReply:
        users = [_flat(m["content"]) for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = "\n".join([_flat(body.get("system")), *users])
        blob = dumps(body)
        if body["model"] == "critic":
            return StubReply(text=critic(prompt, blob))
        quoted = re.search(r"<partial_answer>\n(.*?)\n</partial_answer>", users[-1], re.S)
        prefix = quoted.group(1) if quoted else None
        redraw = int(body.get("max_tokens") or 0) <= 128
        return StubReply(text=continuer(prompt, prefix, blob, redraw=redraw))

    db = tmp / "steps.db"
    store = Store(db)
    assert import_dataset(store, data, name="labelled").n_added == len(TRACES)
    ids: dict[str, int] = {}
    with StubServer() as server:
        server.responder = responder
        settings = Settings(
            providers={"anthropic": ProviderSettings(kind="anthropic", base_url=server.url)}
        )
        providers = ProviderRegistry(settings)
        engine = Engine(store, providers, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
        configs: dict[str, dict[str, Any]] = {
            "direct": {"kind": "mistake-finding", "critic": "anthropic:critic", "samples": 2},
            "step": {"kind": "mistake-finding", "critic": "anthropic:critic", "variant": "step"},
            "backtrack": {
                "kind": "backtrack",
                "completer": "anthropic:completer",
                "samples": 3,
                "continuation": "emulate",
                "seed": 5,
            },
        }

        async def go() -> None:
            try:
                for name, config in configs.items():
                    cfg = load_experiment_config(
                        {"name": name, "problems": {"dataset": "labelled"}, **config}
                    )
                    ids[name] = await run_experiment(store, providers, settings, cfg, engine=engine)
            finally:
                await providers.aclose()

        asyncio.run(go())
    for name, run_id in ids.items():
        assert store.get_run(run_id)["status"] == "done", name
    store.close()
    yield db, ids
    mp.undo()


def covers(value: Any, truth: float) -> bool:
    interval = wilson(value.rate.k, value.rate.n, confidence=CONFIDENCE)
    return interval.low <= truth <= interval.high


def test_direct_critic_scores_recover_its_accuracy(workspace: tuple[Path, dict[str, int]]) -> None:
    db, ids = workspace
    store = Store(db)
    metrics = run_metrics(store, ids["direct"])
    store.close()
    found, clean = metrics.get("mistake_location"), metrics.get("no_mistake_accuracy")
    assert found is not None and clean is not None
    assert found.rate.n == 2 * 2 * (N_TRACES - N_TRACES // 3)  # 2 tasks, 2 critiques each
    assert clean.rate.n == 2 * 2 * (N_TRACES // 3)
    assert covers(found, FOUND) and covers(clean, CLEAN)
    for task in ("multistep_arithmetic", "word_sorting"):
        per_task = metrics.get("mistake_location", task)
        assert per_task is not None and covers(per_task, FOUND)
    f1 = f1_scores(metrics)[""]
    assert f1 is not None and abs(f1 - 2 * FOUND * CLEAN / (FOUND + CLEAN)) < 0.08
    assert metrics.headline_text().startswith("mistake found")


def test_step_level_critic_takes_the_first_no(workspace: tuple[Path, dict[str, int]]) -> None:
    db, ids = workspace
    store = Store(db)
    metrics = run_metrics(store, ids["step"])
    n_calls = store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=? AND stage='step-check'",
                           (ids["step"],))  # fmt: skip
    store.close()
    assert n_calls == 2 * N_TRACES * N_STEPS
    found, clean = metrics.get("mistake_location"), metrics.get("no_mistake_accuracy")
    assert found is not None and clean is not None
    assert covers(found, STEP_FOUND)
    assert (clean.rate.k, clean.rate.n) == (2 * (N_TRACES // 3),) * 2  # all "Yes": none


def test_backtracking_recovers_the_continuers_gain(workspace: tuple[Path, dict[str, int]]) -> None:
    db, ids = workspace
    store = Store(db)
    metrics = run_metrics(store, ids["backtrack"])
    store.close()
    fixed_at_mistake = metrics.get("backtrack_fixed", "mistake")
    fixed_at_random = metrics.get("backtrack_fixed", "random")
    kept_random = metrics.get("backtrack_kept", "random")
    assert fixed_at_mistake and fixed_at_random and kept_random
    assert covers(fixed_at_mistake, FIX_AT_MISTAKE)
    # a random cut lands on the labelled mistake one time in N_STEPS
    mixture = FIX_AT_MISTAKE / N_STEPS + FIX_ELSEWHERE * (N_STEPS - 1) / N_STEPS
    assert covers(fixed_at_random, mixture)
    assert covers(kept_random, KEEP)
    assert metrics.headline_text().startswith("mistake ")  # one value per arm


def test_analyse_json_shows_the_same_numbers(
    workspace: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, ids = workspace
    for name in ("direct", "backtrack"):
        assert main(["--db", str(db), "analyse", str(ids[name]), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        store = Store(db)
        metrics = run_metrics(store, ids[name])
        store.close()
        assert doc["metrics"] == [v.to_json() for v in metrics.values]
        if name == "direct":
            assert doc["f1"] == f1_scores(metrics)
    assert main(["--db", str(db), "analyse", str(ids["backtrack"])]) == 0
    text = capsys.readouterr().out
    assert "paired" in text and "mistake" in text


@pytest.mark.parametrize(
    ("reply", "n", "index", "readable"),
    [
        ("Mistake: Step 3", 5, 2, True),
        ("mistake: none", 5, None, True),
        ("The first mistake is in step 2.", 5, 1, True),
        ("No mistakes; every step is correct.", 5, None, True),
        ("Mistake: Step 9", 5, None, False),
        ("Steps 2 and 3 look odd", 5, None, False),
        ("", 5, None, False),
    ],
)
def test_parse_mistake_pick(reply: str, n: int, index: int | None, readable: bool) -> None:
    pick = parse_mistake_pick(reply, n)
    assert (pick.index, pick.readable) == (index, readable)


def test_parse_step_verdict() -> None:
    assert parse_step_verdict("Yes.") is True
    assert parse_step_verdict("No, it adds wrongly") is False
    assert parse_step_verdict("It is incorrect") is False
    assert parse_step_verdict("maybe") is None


def test_trace_labels_equal_the_export_outcomes(workspace: tuple[Path, dict[str, int]]) -> None:
    """The stepper's badge and the export's outcome column say the same for every sample
    (a reply with no answer is wrong on both, as the metrics count it)."""
    from workbench.core.analysis import iter_sample_rows
    from workbench.core.views.traces import load_trace

    db, ids = workspace
    store = Store(db)
    try:
        for name in ("direct", "step", "backtrack"):
            rows = [r for r in iter_sample_rows(store, ids[name]) if r["outcome"] is not None]
            assert rows, name
            for row in rows:
                assert load_trace(store, row["sample_id"]).label.text == row["outcome"], row
        texts = {
            load_trace(store, r["sample_id"]).label.text
            for r in iter_sample_rows(store, ids["direct"], stage="locate")
        }
    finally:
        store.close()
    assert "no mistake: agreed" in texts and "false alarm: step 2" in texts
    assert any(t.startswith("found step") for t in texts)
    assert any(t.startswith("wrong step") for t in texts)


@pytest.mark.parametrize(
    ("correct", "payload", "text"),
    [
        (True, {"mistake_index": None, "predicted_index": None}, "no mistake: agreed"),
        (True, {"mistake_index": 2, "predicted_index": 2}, "found step 3"),
        (False, {"mistake_index": None, "predicted_index": 0}, "false alarm: step 1"),
        (False, {"mistake_index": 3, "predicted_index": None}, "missed step 4: said none"),
        (False, {"mistake_index": 3, "predicted_index": 1}, "wrong step: step 2, label step 4"),
        (False, {"mistake_index": 3, "readable": False}, "no pick"),
    ],
)
def test_critique_labels(correct: bool, payload: dict[str, Any], text: str) -> None:
    from workbench.core.analysis.metrics import SampleKind, outcome_label

    assert outcome_label(SampleKind.CRITIQUE, correct, payload=payload).text == text


def test_the_per_task_plot_draws_the_metrics(workspace: tuple[Path, dict[str, int]]) -> None:
    from workbench.core.views.plots import by_task

    db, ids = workspace
    store = Store(db)
    try:
        found = by_task(store, ids["direct"])
        metrics = run_metrics(store, ids["direct"])
        moved = by_task(store, ids["backtrack"])
    finally:
        store.close()
    assert found.empty is None and found.labels == ("multistep_arithmetic", "word_sorting")
    assert [s.name for s in found.series] == ["mistake found", "no mistake"]
    for i, task in enumerate(found.labels):
        value = metrics.get("mistake_location", task)
        assert value is not None and found.series[0].values[i] == value.rate.rate
    assert [s.name for s in moved.series] == ["fixed, at the mistake", "fixed, at random"]
