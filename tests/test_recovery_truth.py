"""The check of truth: configured rates in, the same rates out, end to end.

A scripted provider (injected through ``ProviderRegistry`` overrides) plays
solver, perturber, checker and completer.  Its chance of a correct final answer
depends on the problem and on the prefix it continues from (none, clean,
perturbed, its own wrong trace), drawn from a seeded hash of each request, so the
ground truth is known and the run is deterministic.  The runs go through the real
engine, store, grader and analysis; each measured rate must fall inside its Wilson
interval around the configured one.  Intervals are Bonferroni-corrected over the
checks of a test (honest for many comparisons), and a power check makes sure the
intervals are narrow enough to tell different rates apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.core.analysis import queries
from workbench.core.analysis import rates as an
from workbench.core.providers import (
    Completion,
    Continuation,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderRegistry,
    Usage,
)
from workbench.core.settings import Settings
from workbench.core.store import Store, dumps, now_iso

N_SAMPLES = 40  # per problem and condition: intervals of about +-0.2 at 99.6%


@dataclass(frozen=True)
class Truth:
    """One synthetic problem and the configured probabilities of a right final answer."""

    id: str
    a: int
    b: int
    c: int
    solve: float  # straight shot
    clean: float  # continuing from the untouched prefix
    perturbed: float  # continuing from a perturbed prefix
    own: float = 0.5  # continuing from its own wrong trace (on-policy)
    weak: float = 0.5  # continuing from a weaker model's wrong trace
    behaviour: str = "ok"  # ok / leaky (every perturbation leaks) / retry (first is bad) / easy

    @property
    def question(self) -> str:
        return (
            f"Problem {self.id}: Tom has {self.a} marbles, wins {self.b} more, then gives "
            f"away {self.c}. How many marbles does he have now?"
        )

    @property
    def steps(self) -> list[str]:
        s1 = self.a + self.b
        return [
            f"Tom starts with {self.a} marbles.",
            f"After winning he has {self.a} + {self.b} = {s1} marbles.",
            f"After giving some away he has {s1} - {self.c} = {self.answer} marbles.",
            f"#### {self.answer}",
        ]

    @property
    def answer(self) -> int:
        return self.a + self.b - self.c


TRUTH = (
    Truth("t1", 120, 35, 17, solve=0.1, clean=0.9, perturbed=0.2, own=0.3, weak=0.1),
    Truth("t2", 240, 51, 29, solve=0.5, clean=0.8, perturbed=0.6, own=0.5, weak=0.6),
    Truth("t3", 310, 77, 41, solve=0.9, clean=0.95, perturbed=0.8, own=0.7, weak=0.9),
    Truth("t4", 450, 63, 12, solve=0.4, clean=0.7, perturbed=0.3, own=0.2, behaviour="retry"),
    Truth("t5", 510, 88, 13, solve=0.6, clean=0.5, perturbed=0.5, own=0.8, behaviour="leaky"),
    Truth("t6", 630, 97, 14, solve=0.5, clean=0.5, perturbed=0.5, behaviour="easy"),
)
BY_ID = {t.id: t for t in TRUTH}


def _unit(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from the parts."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Script:
    """Solver, perturber, checker, completer and judge with known behaviour (model = role).

    Shared by the in-process provider and the stub server's responder.  Identical
    requests (no seed) are interchangeable, so numbering repeats keeps draws deterministic.
    """

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, bool]] = Counter()  # (role, continued a prefix)
        self._seen: Counter[str] = Counter()

    def reply(self, model: str, prompt: str, prefix: str | None, retried: bool, blob: str) -> str:
        self.calls[(model, prefix is not None)] += 1
        self._seen[blob] += 1
        u = _unit(blob, self._seen[blob])
        truth = next(t for t in TRUTH if t.question in prompt)
        if model == "judge":  # says "noticed" when the continuation reached the answer
            return dumps({"noticed": "So the count is" in prompt, "corrected": False})
        if model == "perturber" and prefix is None:
            return self.perturb(truth, prompt, retried)
        if prefix is None:
            p = truth.solve if model != "weak" else 0.3
        elif model == "perturber":  # the too-easy check
            return self.final(truth, truth.behaviour == "easy")
        else:
            p = self.p_continue(truth, prefix)
        return self.final(truth, u < p, model)

    @staticmethod
    def final(truth: Truth, correct: bool, model: str = "") -> str:
        if correct:
            return f"So the count is {truth.answer} marbles.\n#### {truth.answer}"
        wrong = truth.answer + 5
        # the wrong trace names its author, so a completer can tell whose prefix it continues
        return (
            f"We think it over once more ({model}).\n"
            f"He then has {wrong - 2} + 2 = {wrong} marbles.\n#### {wrong}"
        )

    @staticmethod
    def p_continue(truth: Truth, prefix: str) -> float:
        lines = [x.strip() for x in prefix.strip().splitlines() if x.strip()]
        if all(x in truth.steps for x in lines):
            return truth.clean
        if any("(weak)" in x for x in lines):
            return truth.weak
        if any("think it over" in x for x in lines):
            return truth.own
        return truth.perturbed

    @staticmethod
    def perturb(truth: Truth, prompt: str, retried: bool) -> str:
        number = int(re.search(r"Rewrite step (\d+)", prompt).group(1))  # type: ignore[union-attr]
        step = truth.steps[number - 1]
        if truth.behaviour == "leaky":
            return f"<perturbed_step>{step} [Perturbation: arithmetic slip]</perturbed_step>"
        if truth.behaviour == "retry" and not retried:
            return "Sure! Here is the changed step."
        # change the last number of the step to a value no other step or answer uses
        last = list(re.finditer(r"\d+", step))[-1]
        changed = step[: last.start()] + str(int(last.group()) + 1000) + step[last.end() :]
        return f"<perturbed_step>\n{changed}\n</perturbed_step>"


class ScriptedProvider(Provider):
    """The script as an in-process adapter (injected through ``ProviderRegistry`` overrides)."""

    kind = "scripted"

    def __init__(self) -> None:
        super().__init__("scripted", "http://scripted.invalid")
        self.script = Script()

    @property
    def calls(self) -> Counter[tuple[str, bool]]:
        return self.script.calls

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        return (Continuation.PREFILL, Continuation.EMULATE)

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        prompt = "\n".join([request.system or "", *(m.content for m in request.messages)])
        retried = len(request.messages) > 1  # feedback turns were appended
        text = self.script.reply(
            request.model, prompt, request.prefix, retried, dumps(request.to_json())
        )
        return ModelResponse(
            (Completion(text, "stop"),),
            Usage(100, 20),
            continuation=self.resolve_continuation(request),
        )


# -- fixtures ----------------------------------------------------------------------


def seed_problems(store: Store) -> None:
    ts = now_iso()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO datasets(id,name,origin,format,n_problems,imported_at)"
            " VALUES ('truth','truth','synthetic','gsm8k',?,?)",
            (len(TRUTH), ts),
        )
        for t in TRUTH:
            conn.execute(
                "INSERT INTO problems(id,dataset_id,source,question,solution,answer,steps,n_steps,"
                "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    t.id,
                    "truth",
                    "gsm8k",
                    t.question,
                    "\n".join(t.steps),
                    str(t.answer),
                    dumps(t.steps),
                    len(t.steps),
                    ts,
                ),
            )


@pytest.fixture
def world(tmp_path: Path) -> tuple[Store, ProviderRegistry, Settings, ScriptedProvider]:
    store = Store(tmp_path / "truth.db")
    seed_problems(store)
    provider = ScriptedProvider()
    settings = Settings()
    return store, ProviderRegistry(settings, {"scripted": provider}), settings, provider


def run(
    store: Store,
    providers: ProviderRegistry,
    settings: Settings,
    config: Mapping[str, Any],
    run_id: int | None = None,
) -> int:
    from workbench.core.experiments import load_experiment_config, run_experiment

    cfg = load_experiment_config(config)
    return asyncio.run(run_experiment(store, providers, settings, cfg, run_id=run_id))


def bonferroni(n_checks: int, alpha: float = 0.05) -> float:
    return 1 - alpha / n_checks


def assert_within(measured: an.Rate, truth: float, what: str) -> None:
    assert measured.n > 0, f"{what}: no graded samples"
    assert measured.contains(truth), f"{what}: configured {truth:.2f}, measured {measured}"


# -- the checks --------------------------------------------------------------------


RECOVERY = {
    "kind": "recovery",
    "name": "truth",
    "problems": {"dataset": "truth"},
    "perturber": "scripted:perturber",
    "completer": "scripted:completer",
    "k": N_SAMPLES,
    "continuation": "prefill",
    "control": True,
    "max_attempts": 2,
    "judge": "scripted:judge",
    "seed": 7,
}


def test_recovery_rates_match_the_configured_truth(world: Any) -> None:
    store, providers, settings, provider = world
    run_id = run(store, providers, settings, RECOVERY)
    assert store.get_run(run_id)["status"] == "done"
    ok = [t for t in TRUTH if t.behaviour in ("ok", "retry")]
    conf = bonferroni(2 * len(ok))
    cont = queries.load_outcomes(store, run_id, stage="continue")
    control = queries.load_outcomes(store, run_id, stage="control")
    perturbed_rates = {r.key: r.rate for r in an.recovery_table(cont, "problem", confidence=conf)}
    clean_rates = {r.key: r.rate for r in an.recovery_table(control, "problem", confidence=conf)}
    assert set(perturbed_rates) == {t.id for t in ok}  # leaky and easy problems set aside
    for t in ok:
        assert perturbed_rates[t.id].n == N_SAMPLES
        assert_within(perturbed_rates[t.id], t.perturbed, f"{t.id} perturbed")
        assert_within(clean_rates[t.id], t.clean, f"{t.id} clean")
    # power: the intervals are narrow enough to separate 0.9 from 0.2
    assert perturbed_rates["t1"].high < clean_rates["t1"].low

    # every continuation records its continuation method and its detection
    samples = store.samples(run_id, "continue")
    assert {s["payload"].get("continuation") for s in samples} == {"prefill"}
    assert all("recovery_kind" in s["payload"] for s in samples)
    from workbench.core.perturb import load_taxonomy

    assert {s["payload"]["error_type"] for s in samples} <= {e.id for e in load_taxonomy()}

    # set aside, with reasons, not dropped
    perturb = {
        s["problem_id"]: s for s in store.samples(run_id) if s["stage"].startswith("perturb")
    }
    assert "failed validation after 2 attempt(s)" in perturb["t5"]["payload"]["set_aside"]
    assert perturb["t5"]["status"] == "invalid"
    easy = [
        s
        for s in store.samples(run_id)
        if s["problem_id"] == "t6" and s["stage"].startswith("perturb") and s["status"] == "skipped"
    ]
    assert easy and easy[0]["payload"]["set_aside_kind"] == "too_easy"
    # the retried problem was perturbed on its second attempt, with feedback
    t4 = [
        s
        for s in store.samples(run_id)
        if s["problem_id"] == "t4" and s["stage"].startswith("perturb")
    ]
    assert [s["status"] for s in t4] == ["invalid", "done"]
    assert t4[1]["stage"] == "perturb-retry-1" and t4[1]["parent_id"] == t4[0]["id"]

    # the judge's verdicts are stored on the continuations they judged
    verdicts = {s["id"]: s["payload"].get("judge_noticed") for s in samples}
    assert verdicts == {o.sample_id: o.correct for o in cont}

    # resuming the finished run sends nothing and changes no number
    calls = sum(provider.calls.values())
    assert run(store, providers, settings, RECOVERY, run_id=run_id) == run_id
    assert sum(provider.calls.values()) == calls
    again = queries.load_outcomes(store, run_id, stage="continue")
    assert an.recovery_table(again, "problem") == an.recovery_table(cont, "problem")


def test_calibration_on_policy_and_beside_straight_shot(world: Any) -> None:
    store, providers, settings, provider = world
    calib = run(
        store,
        providers,
        settings,
        {
            "kind": "calibration",
            "name": "calib",
            "problems": {"dataset": "truth"},
            "models": ["scripted:completer"],
            "samples": N_SAMPLES,
            "seed": 3,
        },
    )
    shot = queries.load_outcomes(store, calib, role="solver")
    conf = bonferroni(len(TRUTH))
    rates = {r.problem_id: r.rate for r in an.solve_rates(shot, confidence=conf)}
    for t in TRUTH:
        assert_within(rates[t.id], t.solve, f"{t.id} straight shot")
    assert rates["t1"].high < rates["t3"].low  # power
    bins = queries.load_bins(store, "scripted:completer")
    assert bins["t1"] == "hard" and bins["t3"] == "easy" and bins["t2"] == "medium"
    (acc,) = an.model_accuracy(shot)
    assert acc.accuracy.contains(sum(t.solve for t in TRUTH) / len(TRUTH))

    # on-policy: no new straight-shot calls, the completer's own wrong traces in the band
    on = run(
        store,
        providers,
        settings,
        {
            "kind": "on-policy",
            "name": "on",
            "completer": "scripted:completer",
            "calibration_run": calib,
            "k": N_SAMPLES,
            "band": [0.2, 0.8],
            "min_samples": 5,
        },
    )
    assert provider.calls[("completer", False)] == N_SAMPLES * len(TRUTH)  # calibration only
    cont = queries.load_outcomes(store, on, stage="continue")
    in_band = {pid for pid, r in rates.items() if 0.2 <= (r.rate or 0) <= 0.8}
    assert {o.problem_id for o in cont} == in_band and {"t1", "t3"}.isdisjoint(in_band)
    conf = bonferroni(len(in_band))
    for row in an.recovery_table(cont, "problem", confidence=conf):
        assert_within(row.rate, BY_ID[row.key].own, f"{row.key} on-policy")
    parents = {s["parent_id"] for s in store.samples(on, "continue")}
    assert parents <= {o.sample_id for o in shot if o.correct is False}

    # recovery beside the completer's own straight-shot rate, on the same problems
    from workbench.core.experiments.report import run_report

    rec = run(
        store,
        providers,
        settings,
        {
            "kind": "recovery",
            "name": "rec",
            "problems": {"dataset": "truth"},
            "perturber": "scripted:perturber",
            "completer": "scripted:completer",
            "k": 10,
            "check_too_easy": False,
            "max_attempts": 1,
        },
    )
    tables = run_report(store, rec)
    beside = tables["recovery beside straight-shot (scripted:completer)"]
    overall = next(r for r in beside if r.key == "all")
    common = {o.problem_id for o in queries.load_outcomes(store, rec, stage="continue")}
    assert common == {"t1", "t2", "t3", "t6"}  # t4 fails its only attempt, t5 leaks
    expect = [o for o in shot if o.problem_id in common]
    assert (overall.straight_shot.k, overall.straight_shot.n) == (
        sum(bool(o.correct) for o in expect),
        len(expect),
    )
    assert {r.key for r in beside} >= {"hard", "easy", "all"}


def test_weak_prefix_recovery_matches_truth(world: Any) -> None:
    store, providers, settings, provider = world
    run_id = run(
        store,
        providers,
        settings,
        {
            "kind": "weak-prefix",
            "name": "weak",
            "problems": {"dataset": "truth", "ids": ["t1", "t2", "t3"]},
            "weak": "scripted:weak",
            "completer": "scripted:completer",
            "n_weak": 4,
            "k": N_SAMPLES,
            "cut": 0.5,
        },
    )
    weak = queries.load_outcomes(store, run_id, stage="weak-solve")
    assert len(weak) == 12 and provider.calls[("weak", False)] == 12
    cont = queries.load_outcomes(store, run_id, stage="continue")
    conf = bonferroni(3)
    rows = {r.key: r.rate for r in an.recovery_table(cont, "problem", confidence=conf)}
    wrong_problems = {o.problem_id for o in weak if o.correct is False}
    assert set(rows) == wrong_problems
    for pid, rate in rows.items():
        assert rate.n == N_SAMPLES
        assert_within(rate, BY_ID[pid].weak, f"{pid} weak prefix")
    for s in store.samples(run_id, "continue"):
        assert s["payload"]["prefix_kind"] == "weak" and s["payload"]["truncate_at"] == 2


def test_example_configs_load_and_bad_ones_fail_in_one_line() -> None:
    from workbench.core.errors import ConfigError
    from workbench.core.experiments import load_experiment_config

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("recovery-*.toml"))
    assert len(examples) >= 4
    kinds = {load_experiment_config(p).kind for p in examples}
    assert kinds == {"recovery", "weak-prefix", "on-policy"}
    for bad, where in (
        ({**RECOVERY, "k": 0}, "k"),
        ({**RECOVERY, "truncation": "sideways"}, "truncation"),
        ({"kind": "on-policy", "completer": "x:y", "band": [0.9, 0.1]}, "band"),
        ({"kind": "weak-prefix", "completer": "x:y"}, "weak"),
    ):
        with pytest.raises(ConfigError, match=where) as info:
            load_experiment_config(bad)
        assert "\n" not in str(info.value)


def test_on_policy_without_calibration_is_a_clear_error(world: Any) -> None:
    from workbench.core.errors import ConfigError

    store, providers, settings, provider = world
    config = {"kind": "on-policy", "completer": "scripted:completer"}
    with pytest.raises(ConfigError, match="run a calibration with that model first"):
        run(store, providers, settings, config)
    assert not provider.calls


def test_truth_holds_over_real_http_with_faults(
    tmp_path: Path, stub_server: Any, clean_provider_env: pytest.MonkeyPatch
) -> None:
    """The same script behind the loopback stub, spoken to by the real Anthropic adapter
    (continuation emulated in the user turn), with 429s and 500s on the way."""
    from tests.stub_server import StubReply
    from workbench.core.engine import Engine, RetryPolicy
    from workbench.core.settings import ProviderSettings

    script = Script()

    def flat(content: Any) -> str:
        # Anthropic content is a string or a list of blocks
        if isinstance(content, list):
            return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        return str(content or "")

    def responder(path: str, body: dict[str, Any]) -> StubReply:
        users = [flat(m["content"]) for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = "\n".join([flat(body.get("system")), *users])
        quoted = re.search(r"<partial_answer>\n(.*?)\n</partial_answer>", users[-1], re.S)
        prefix = quoted.group(1) if quoted else None
        return StubReply(
            text=script.reply(body["model"], prompt, prefix, len(users) > 1, dumps(body))
        )

    stub_server.responder = responder
    stub_server.fail_next(3, "rate_limit", retry_after=0)
    stub_server.fail_when(lambda path, body: "Problem t3" in dumps(body), "status", times=2)
    clean_provider_env.setenv("ANTHROPIC_API_KEY", "stub-key")
    settings = Settings(
        providers={"anthropic": ProviderSettings(kind="anthropic", base_url=stub_server.url)}
    )
    store = Store(tmp_path / "http.db")
    seed_problems(store)
    providers = ProviderRegistry(settings)
    engine = Engine(store, providers, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    config = {
        **RECOVERY,
        "problems": {"dataset": "truth", "ids": ["t1", "t3", "t4"]},
        "perturber": "anthropic:perturber",
        "completer": "anthropic:completer",
        "judge": None,
        "k": 20,
        "continuation": "emulate",
    }
    from workbench.core.experiments import load_experiment_config, run_experiment

    async def go() -> int:
        try:
            cfg = load_experiment_config(config)
            return await run_experiment(store, providers, settings, cfg, engine=engine)
        finally:
            await providers.aclose()

    run_id = asyncio.run(go())
    assert store.get_run(run_id)["status"] == "done"
    conf = bonferroni(6)
    for stage, attr in (("continue", "perturbed"), ("control", "clean")):
        rows = an.recovery_table(
            queries.load_outcomes(store, run_id, stage=stage), "problem", confidence=conf
        )
        assert {r.key for r in rows} == {"t1", "t3", "t4"}
        for r in rows:
            assert r.rate.n == 20
            assert_within(r.rate, getattr(BY_ID[r.key], attr), f"{r.key} {stage} over HTTP")
    methods = store.query(
        "SELECT DISTINCT continuation FROM calls WHERE item_key LIKE 'continue/%'"
    )
    assert methods == [{"continuation": "emulate"}]
    # each finished model sample was paid for exactly once, retries included
    paid = store.scalar(
        "SELECT COUNT(*) FROM samples WHERE run_id=? AND call_id IS NOT NULL AND status != 'error'",
        (run_id,),
    )
    assert stub_server.paid == paid
    assert stub_server.total == paid + 5  # three 429s and two 500s, retried
    assert store.scalar("SELECT SUM(attempts) FROM calls WHERE run_id=?", (run_id,)) == paid + 5
