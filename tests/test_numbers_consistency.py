"""Every number right, and the same on every surface (issue 11).

One workspace, every example experiment (calibration; recovery with control and judge
on, perturber = completer and not; weak prefix; on-policy; methods with
self-consistency, vote and reflect), run through the real engine against the loopback
stub (the Anthropic wire format) by a scripted model of known per-problem
probabilities (``tests.test_recovery_truth.Script``).  Then:

(a) the truth falls inside the interval the metrics layer reports (Wilson, widened by
    Bonferroni over the checks, so the test is honest about running many of them);
(b) each metric is identical on every surface: ``workbench analyse --json``, the
    analysis-table export, ``workbench runs``, the Runs list and the monitor (read
    through Pilot), the Plots data and its CSV, and the trace outcome labels.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from tests.stub_server import StubReply, StubServer
from tests.test_recovery_truth import BY_ID, TRUTH, Script, seed_problems
from workbench.cli.main import main
from workbench.core.analysis import run_metrics, wilson
from workbench.core.analysis.metrics import SampleKind, result_lines
from workbench.core.engine import Engine, RetryPolicy
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store, dumps
from workbench.core.views import plots
from workbench.core.views.traces import load_trace, trace_ids

K = 20  # samples per condition: enough for the intervals to mean something, and quick
PAL_MARK, COT_MARK, REFLECT_MARK = "by writing Python", "Think through", "Earlier attempts disagree"


def _flat(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


class World(Script):
    """The recovery script, plus the one-model perturber and the methods solver."""

    def reply(self, model: str, prompt: str, prefix: str | None, retried: bool, blob: str) -> str:
        truth = next(t for t in TRUTH if t.question in prompt)
        if model == "solo" and prefix is None and "Rewrite step" in prompt:
            return self.perturb(truth, prompt, retried)
        if model == "methods":
            return self.method(truth, prompt, blob)
        return super().reply(model, prompt, prefix, retried, blob)

    def method(self, truth: Any, prompt: str, blob: str) -> str:
        self._seen[blob] += 1
        from tests.test_recovery_truth import _unit

        right = _unit(blob, self._seen[blob]) < truth.solve
        value = truth.answer if right else truth.answer + 5
        if PAL_MARK in prompt:
            return f"```python\ndef solution():\n    return {value}\n```\n"
        return f"Counting it up gives {value}.\nThe answer is {value}."


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    """Every example experiment in one store, over HTTP; run ids by name."""
    mp = pytest.MonkeyPatch()
    for var in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        mp.delenv(var, raising=False)
    mp.setenv("ANTHROPIC_API_KEY", "stub-key")
    script = World()

    def responder(path: str, body: dict[str, Any]) -> StubReply:
        users = [_flat(m["content"]) for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = "\n".join([_flat(body.get("system")), *users])
        quoted = re.search(r"<partial_answer>\n(.*?)\n</partial_answer>", users[-1], re.S)
        prefix = quoted.group(1) if quoted else None
        return StubReply(
            text=script.reply(body["model"], prompt, prefix, len(users) > 1, dumps(body))
        )

    db = tmp_path_factory.mktemp("numbers") / "numbers.db"
    store = Store(db)
    seed_problems(store)
    ids: dict[str, int] = {}
    with StubServer() as server:
        server.responder = responder
        settings = Settings(
            providers={"anthropic": ProviderSettings(kind="anthropic", base_url=server.url)}
        )
        providers = ProviderRegistry(settings)
        engine = Engine(store, providers, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
        configs: dict[str, dict[str, Any]] = {
            "calibration": {
                "kind": "calibration",
                "solvers": ["anthropic:completer"],
                "samples": K,
                "seed": 3,
            },
            "recovery": {
                "kind": "recovery",
                "perturber": "anthropic:perturber",
                "completer": "anthropic:completer",
                "samples": K,
                "continuation": "emulate",
                "control": True,
                "judge": "anthropic:judge",
                "max_attempts": 2,
                "seed": 7,
            },
            "one-model": {
                "kind": "recovery",
                "perturber": "anthropic:solo",
                "completer": "anthropic:solo",
                "samples": K,
                "continuation": "emulate",
                "max_attempts": 2,
                "seed": 11,
            },
            "weak-prefix": {
                "kind": "weak-prefix",
                "solver": "anthropic:weak",
                "completer": "anthropic:completer",
                "solver_samples": 4,
                "samples": K,
                "continuation": "emulate",
            },
            "on-policy": {
                "kind": "on-policy",
                "completer": "anthropic:completer",
                "samples": K,
                "continuation": "emulate",
                "band": [0.2, 0.8],
                "min_samples": 5,
            },
            "methods": {
                "kind": "methods",
                "solver": "anthropic:methods",
                "methods": ["cot", "pal"],
                "samples": 3,
                "disagreement": "reflect",
                "exclude_few_shot": False,
            },
        }

        async def go() -> None:
            try:
                for name, config in configs.items():
                    cfg = load_experiment_config(
                        {"name": name, "problems": {"dataset": "truth"}, **config}
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


def _metrics(ids: dict[str, int], db: Path, capsys: pytest.CaptureFixture[str]) -> dict[int, Any]:
    """``workbench analyse RUN --json`` for every run."""
    out = {}
    for run_id in ids.values():
        assert main(["--db", str(db), "analyse", str(run_id), "--json"]) == 0
        out[run_id] = json.loads(capsys.readouterr().out)
    return out


def _cells(m: dict[str, Any]) -> tuple[Any, ...]:
    return (m["metric"], m["key"], m["k"], m["n"], m["low"], m["high"])


# -- (a) the truth inside the reported intervals ---------------------------------------


def _maj3(p: float) -> float:
    return p**3 + 3 * p**2 * (1 - p)


def test_truth_inside_the_reported_intervals(workspace: tuple[Path, dict[str, int]]) -> None:
    db, ids = workspace
    store = Store(db)
    checks: list[tuple[str, int, int, float]] = []  # (what, k, n, truth)

    def add(name: str, metric: str, truth: float, key: str = "") -> None:
        value = run_metrics(store, ids[name]).get(metric, key)
        assert value is not None and value.rate.n, (name, metric)
        checks.append((f"{name} {metric} {key}", value.rate.k, value.rate.n, truth))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def kept(name: str) -> list[str]:
        return sorted(
            {s["problem_id"] for s in store.samples(ids[name], "continue") if s["status"] == "done"}
        )

    add("calibration", "accuracy", mean([t.solve for t in TRUTH]), "anthropic:completer")
    rec = kept("recovery")
    assert rec == ["t1", "t2", "t3", "t4"]  # t5 leaks, t6 is too easy: set aside
    add("recovery", "recovery", mean([BY_ID[p].perturbed for p in rec]))
    add("recovery", "control", mean([BY_ID[p].clean for p in rec]))
    # the scripted judge says "noticed" exactly when the continuation is right
    add("recovery", "judge_noticed", mean([BY_ID[p].perturbed for p in rec]))
    solo = kept("one-model")
    add("one-model", "recovery", mean([BY_ID[p].perturbed for p in solo]))
    add("weak-prefix", "recovery", mean([BY_ID[p].weak for p in kept("weak-prefix")]))
    add("weak-prefix", "solver_accuracy", 0.3)
    add("on-policy", "recovery", mean([BY_ID[p].own for p in kept("on-policy")]))
    for method in ("cot", "pal"):
        add("methods", "sample_accuracy", mean([t.solve for t in TRUTH]), method)
        add("methods", "method_accuracy", mean([_maj3(t.solve) for t in TRUTH]), method)
    store.close()
    confidence = 1 - 0.05 / len(checks)
    for what, k, n, truth in checks:
        interval = wilson(k, n, confidence=confidence)
        assert interval.contains(truth), f"{what}: truth {truth:.3f}, measured {interval}"


# -- (b) one number, every surface -----------------------------------------------------


def test_every_surface_shows_the_same_numbers(
    workspace: tuple[Path, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, ids = workspace
    docs = _metrics(ids, db, capsys)
    store = Store(db)
    for run_id, doc in docs.items():
        # the JSON is the metrics layer, value for value
        direct = run_metrics(store, run_id)
        assert [_cells(m) for m in doc["metrics"]] == [_cells(v.to_json()) for v in direct.values]
        assert doc["headline_text"] == direct.headline_text() != "–"
        # the analysis-table export carries the same metrics
        out = tmp_path / f"tables-{run_id}.jsonl"
        assert main(["--db", str(db), "export", str(run_id), "--tables", "--out", str(out)]) == 0
        capsys.readouterr()
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [_cells(r) for r in rows if r["table"] == "metrics"] == [
            _cells(m) for m in doc["metrics"]
        ]

    # workbench runs: the result column is the headline
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["--db", str(db), "runs"]) == 0
    listing = capsys.readouterr().out
    for doc in docs.values():
        assert doc["headline_text"] in listing

    for name in ("recovery", "one-model", "weak-prefix", "on-policy"):
        run_id = ids[name]
        recovery = _metric(docs[run_id], "recovery")
        # plots: recovery by bin / error type / step add up to the recovery metric
        by_bin = plots.recovery_by_bin(store, run_id)
        assert (sum(r[1] for r in by_bin.rows), sum(r[2] for r in by_bin.rows)) == (
            recovery["k"],
            recovery["n"],
        ), name
        assert by_bin.columns[-1] == "straight_high" and len(by_bin.rows[0]) == len(by_bin.columns)
        csv_rows = by_bin.to_csv().splitlines()[1:]
        assert sum(int(r.split(",")[1]) for r in csv_rows) == recovery["k"]
        for build in (plots.recovery_by_error_type, plots.recovery_by_position):
            data = build(store, run_id)
            if data.empty is None and name in ("recovery", "one-model"):
                assert sum(r[2] for r in data.rows) == recovery["n"], (name, data.key)
        # traces: the outcome labels of the default view count the same samples
        labels = [load_trace(store, sid) for sid in trace_ids(store, run_id)]
        perturbed = [v for v in labels if v.kind is SampleKind.PERTURBED_CONTINUATION]
        graded = [v for v in perturbed if v.label.text in ("recovered", "not recovered")]
        assert (sum(v.label.text == "recovered" for v in graded), len(graded)) == (
            recovery["k"],
            recovery["n"],
        ), name
        assert not any(v.stage == "judge" for v in labels)  # verdicts ride on continuations
    # the control continuations are labelled correct / wrong, never "recovered"
    controls = [
        load_trace(store, sid)
        for sid in trace_ids(store, ids["recovery"])
        if load_trace(store, sid).stage == "control"
    ]
    assert controls and {v.label.text for v in controls} <= {"correct", "wrong"}
    assert not any(v.shows_perturbation for v in controls)
    control = _metric(docs[ids["recovery"]], "control")
    assert sum(v.label.text == "correct" for v in controls) == control["k"]
    # straight-shot solves are correct / wrong, never "recovered"
    solves = {load_trace(store, sid).label.text for sid in trace_ids(store, ids["calibration"])}
    assert solves == {"correct", "wrong"}
    judged = [
        load_trace(store, sid)
        for sid in trace_ids(store, ids["recovery"])
        if load_trace(store, sid).stage == "continue"
    ]
    noticed = _metric(docs[ids["recovery"]], "judge_noticed")
    assert sum(v.judge_verdict is True for v in judged) == noticed["k"]

    # methods: the chart is each method, the vote and the oracle, as analysed
    chart = plots.method_accuracy(store, ids["methods"])
    doc = docs[ids["methods"]]
    wanted = [
        (m["metric"], m["k"], m["n"])
        for m in doc["metrics"]
        if m["metric"] in ("method_accuracy", "vote_accuracy", "oracle_accuracy")
    ]
    assert [(r[1], r[2], r[3]) for r in chart.rows] == wanted
    assert "vote" in chart.labels and not any("None" in lab for lab in chart.labels)
    assert plots.method_accuracy(store, ids["recovery"]).empty  # no bars for other kinds
    store.close()

    asyncio.run(_tui_surfaces(db, docs))


def _metric(doc: dict[str, Any], name: str, key: str = "") -> dict[str, Any]:
    return next(m for m in doc["metrics"] if m["metric"] == name and m["key"] == key)


async def _tui_surfaces(db: Path, docs: dict[int, Any]) -> None:
    """The Runs list headline and the monitor's result, read through Pilot."""
    from workbench.tui.app import make_app
    from workbench.tui.messages import OpenRun
    from workbench.tui.screens.monitor import MonitorScreen

    settings = Settings()
    app = make_app(Store(db), ProviderRegistry(settings), settings)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.switch_mode("runs")
        await pilot.pause()
        table = app.screen.query_one("#runs-table", DataTable)
        for run_id, doc in docs.items():
            assert str(table.get_cell(str(run_id), "headline")) == doc["headline_text"]
        for run_id, doc in docs.items():
            app.post_message(OpenRun(run_id, "monitor"))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            shown = str(screen.query_one("#monitor-result", Static).render())
            lines = result_lines(run_metrics(app.workspace.store, run_id))
            assert shown.splitlines()[1:] == lines
            for m in doc["metrics"]:
                assert f"{m['label']}" in shown and m["text"] in shown
            screen.dismiss(None)
            await pilot.pause()
