"""The methods experiment end to end: real adapters over the loopback stub, real sandbox.

The stub model's replies are scripted per prompt (told apart by their system
turn) and per question, including programs that raise, loop, or return nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.stub_server import StubReply, StubServer
from tests.stub_wire import last_user_text
from workbench.core.engine import Engine, RetryPolicy
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.experiments.methods.experiment import MethodsExperiment
from workbench.core.experiments.methods.post import VOTE
from workbench.core.experiments.methods.report import format_table
from workbench.core.grading import GRADER_NAME
from workbench.core.providers import ProviderRegistry
from workbench.core.sandbox import Limits, isolation_for
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store

KEY_ENV = "WB_METHODS_TEST_KEY"
CREATED = "2026-01-01T00:00:00.000+00:00"

# question id -> (question, gold)
QUESTIONS = {
    "q1": ("Q1 agree: what is 4 + 6?", "10"),
    "q2": ("Q2 raises: what is 15 + 5?", "20"),
    "q3": ("Q3 loops: what is 25 + 5?", "30"),
    "q4": ("Q4 disagree: what is 20 + 20?", "40"),
    "q5": ("Q5 silent: what is 45 + 5?", "50"),
}

COT = {"q1": 10, "q2": 20, "q3": 30, "q4": 41, "q5": 50}
PAL = {
    "q1": "def solution():\n    return 4 + 6\n",
    "q2": "def solution():\n    return 15 / 0\n",
    "q3": "def solution():\n    while True:\n        pass\n",
    "q4": "def solution():\n    return 40\n",
    "q5": "def solution():\n    total = 45 + 5\n",  # returns nothing
}
PLAN_CODE = {
    "q1": 'def solution():\n    """1. Add."""\n    return 10\n',
    "q2": "from fractions import Fraction\n\ndef solution():\n    return Fraction(40, 2)\n",
    "q3": "print('thinking')\n",  # no solution() at all
    "q4": "def solution():\n    return 39\n",
    "q5": None,  # a reply without code
}


def _kind(body: dict[str, Any]) -> str:
    """Which methods prompt a request came from, by its system turn."""
    system = " ".join(
        str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system"
    )
    for marker, kind in (
        ("You turn a plan", "plan-code"),
        ("You plan", "plan"),
        ("by writing Python", "pal"),
        ("You check solutions", "select"),
        ("Earlier attempts disagree", "reflect"),
        ("Think through", "cot"),
    ):
        if marker in system:
            return kind
    raise AssertionError(f"unrecognised prompt: {system[:80]}")


def _question_id(body: dict[str, Any]) -> str:
    match = re.search(r"\b(Q\d|QA|QB)\b", last_user_text(body))
    assert match, last_user_text(body)[:200]
    return match.group(1).lower()


def _fenced(code: str) -> str:
    return f"Here is the program.\n```python\n{code}```\n"


def scripted(path: str, body: dict[str, Any]) -> StubReply:
    kind, qid = _kind(body), _question_id(body)
    if kind == "cot":
        return StubReply(f"Adding the numbers gives {COT[qid]}.\nThe answer is {COT[qid]}.")
    if kind == "pal":
        return StubReply(_fenced(PAL[qid]))
    if kind == "plan":
        return StubReply("1. Add the two numbers.\n2. Return the sum.")
    if kind == "plan-code":
        code = PLAN_CODE[qid]
        return StubReply("I cannot write this one." if code is None else _fenced(code))
    if kind == "select":
        return StubReply("(A) is off by one and (C) too. The best solution is (B).")
    raise AssertionError(kind)


def add_problems(store: Store, questions: dict[str, tuple[str, str]]) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO datasets(id, name, origin, format, imported_at) "
            "VALUES ('toy', 'toy', 'test', 'gsm8k', ?)",
            (CREATED,),
        )
        for pid, (question, gold) in questions.items():
            conn.execute(
                "INSERT INTO problems(id, dataset_id, source, question, answer, created_at) "
                "VALUES (?, 'toy', 'gsm8k', ?, ?, ?)",
                (pid, question, gold, CREATED),
            )


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-methods-test-key-123456")


def setup(
    tmp_path: Path, stub: StubServer, responder: Callable[[str, dict[str, Any]], StubReply]
) -> tuple[Engine, Store, Settings, ProviderRegistry]:
    stub.responder = responder
    settings = Settings(
        providers={
            "stub": ProviderSettings(
                kind="openai-compatible",
                base_url=stub.openai_base_url,
                api_key_env=KEY_ENV,
                max_attempts=2,
                timeout_s=10.0,
            )
        }
    )
    registry = ProviderRegistry(settings)
    store = Store(tmp_path / "wb.db")
    engine = Engine(store, registry, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    return engine, store, settings, registry


CONFIG: dict[str, Any] = {
    "kind": "methods",
    "name": "methods toy",
    "model": "stub:solver-1",
    "problems": {"dataset": "toy"},
    "sandbox_wall_s": 5.0,
    "sandbox_cpu_s": 1,
}


def vote_rows(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    return {r["problem_id"]: r["payload"] for r in store.samples(run_id, VOTE)}


async def test_three_methods_vote_and_selection(tmp_path: Path, stub_server: StubServer) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, scripted)
    add_problems(store, QUESTIONS)
    config = load_experiment_config(CONFIG)
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "done"
    assert stub_server.paid == 5 + 15 + 1  # plans, solutions, one selection

    solve = {(s["problem_id"], s["payload"]["method"]): s for s in store.samples(run_id, "solve")}
    kinds = {k: s["payload"]["answer_error_kind"] for k, s in solve.items()}
    assert kinds[("q2", "pal")] == "exception"
    assert "ZeroDivisionError" in solve[("q2", "pal")]["payload"]["answer_error"]
    assert kinds[("q3", "pal")] == "timeout"
    assert solve[("q3", "pal")]["payload"]["exec"]["limit_hit"] == "cpu_time"
    # every execution records the isolation it ran under
    assert {s["payload"]["exec"]["isolation"] for k, s in solve.items() if k[1] == "pal"} == {
        str(isolation_for(Limits()))
    }
    assert kinds[("q5", "pal")] == "no_result"
    assert kinds[("q3", "plan")] == "no_result"
    assert kinds[("q5", "plan")] == "no_code"
    assert solve[("q2", "plan")]["payload"]["answer"] == "20"  # a Fraction, as answer text
    assert solve[("q1", "plan")]["parent_id"] is not None  # the plan it followed

    # every sample is graded; failed programs are error grades with the sandbox's reason
    grades = {
        r["sample_id"]: r
        for r in store.query("SELECT * FROM grades WHERE grader=?", (GRADER_NAME,))
    }
    assert all(s["id"] in grades for s in solve.values())
    loop = grades[solve[("q3", "pal")]["id"]]
    assert (loop["status"], loop["correct"]) == ("error", None)
    assert "timeout" in loop["reason"]

    votes = vote_rows(store, run_id)
    assert {pid: v["status"] for pid, v in votes.items()} == {
        "q1": "unanimous",
        "q2": "majority",
        "q3": "single",
        "q4": "disagree",
        "q5": "single",
    }
    assert votes["q2"]["agreeing"] == ["cot", "plan"]
    assert votes["q4"]["resolution"]["how"] == "select"
    assert votes["q4"]["resolution"]["method"] == "pal"
    assert votes["q4"]["answer"] == "40"
    assert all(v["correct"] for v in votes.values())
    selection = store.samples(run_id, "resolve")
    assert len(selection) == 1 and selection[0]["role"] == "selector"
    assert [c["method"] for c in selection[0]["payload"]["candidates"]] == ["cot", "pal", "plan"]

    experiment = MethodsExperiment(config)
    summary = experiment.summarise(store, run_id)
    table = summary["table"]
    assert (table["cot"]["correct"], table["pal"]["correct"], table["plan"]["correct"]) == (4, 2, 2)
    assert table["vote"]["correct"] == 5 and table["vote"]["accuracy"] == 1.0
    assert (summary["disagree"], table["vote"]["disagree_n"]) == (1, 1)
    assert (table["cot"]["disagree_accuracy"], table["pal"]["disagree_accuracy"]) == (0.0, 1.0)
    assert summary["errors_by_kind"] == {
        "exception": 1,
        "timeout": 1,
        "no_result": 2,
        "no_code": 1,
    }
    assert "vote" in format_table(summary)
    from workbench.core.experiments.report import run_report

    (rows,) = [v for k, v in run_report(store, run_id).items() if k.startswith("methods")]
    assert [(r.row, r.correct) for r in rows][:4] == [
        ("cot", 4),
        ("pal", 2),
        ("plan", 2),
        ("vote", 5),
    ]

    # post-processing is re-runnable without model calls; unchanged programs are not re-run
    before = {k: s["payload"].get("exec") for k, s in solve.items()}
    for stage in experiment.stages():
        experiment.after_stage(stage, store, run_id)
    after = {
        (s["problem_id"], s["payload"]["method"]): s["payload"].get("exec")
        for s in store.samples(run_id, "solve")
    }
    assert after == before
    assert experiment.summarise(store, run_id) == summary
    assert stub_server.paid == 21
    await registry.aclose()


async def test_failed_calls_are_visible_and_retried_alone(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, scripted)
    add_problems(store, {k: QUESTIONS[k] for k in ("q1", "q4")})
    config = load_experiment_config(CONFIG | {"methods": ["cot", "pal"]})

    def pal_for_q1(path: str, body: dict[str, Any]) -> bool:
        return _kind(body) == "pal" and _question_id(body) == "q1"

    stub_server.fail_when(pal_for_q1, "status", status=400, message="bad request")
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    errors = store.samples(run_id, "solve", status="error")
    assert [e["item_key"] for e in errors] == ["solve/q1/0/pal"]
    votes = vote_rows(store, run_id)
    assert votes["q1"]["status"] == "single"
    assert votes["q1"]["methods"]["pal"]["errors"] == {"call": 1}
    summary = MethodsExperiment(config).summarise(store, run_id)
    assert summary["errors_by_kind"] == {"call:bad_request": 1}

    stub_server.clear_faults()
    paid = stub_server.paid
    await run_experiment(
        store, registry, settings, config, engine=engine, run_id=run_id, retry_failed=True
    )
    assert stub_server.paid == paid + 1  # only the failed item was asked again
    assert not store.samples(run_id, "solve", status="error")
    assert vote_rows(store, run_id)["q1"]["status"] == "unanimous"
    await registry.aclose()


# -- self-consistency, a shared plan, and a reflective re-attempt ------------------------------

SC_QUESTIONS = {"qa": ("QA: what is 3 + 4?", "7"), "qb": ("QB: what is 2 + 2?", "4")}
SC_COT: dict[str, list[str | None]] = {"qa": ["7", "7", "8"], "qb": ["4", "5", None]}
SC_PAL = {"qa": ["7", "7", "7"], "qb": ["6", "6", "6"]}
SC_PLAN = {"qa": ["7", "9", "9"], "qb": ["5", "5", "7"]}


def sc_scripted(path: str, body: dict[str, Any]) -> StubReply:
    kind, qid, seed = _kind(body), _question_id(body), int(body.get("seed") or 0)
    if kind == "cot":
        answer: str | None = SC_COT[qid][seed]
        return StubReply("I am not sure." if answer is None else f"So.\nThe answer is {answer}.")
    if kind == "pal":
        return StubReply(_fenced(f"def solution():\n    return {SC_PAL[qid][seed]}\n"))
    if kind == "plan":
        return StubReply("1. Add.")
    if kind == "plan-code":
        return StubReply(_fenced(f"def solution():\n    return {SC_PLAN[qid][seed]}\n"))
    if kind == "reflect":
        return StubReply("The plan-then-code attempt slipped.\n2 + 2 = 4\nThe answer is 4.")
    raise AssertionError(kind)


async def test_self_consistency_shared_plan_and_reflection(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, sc_scripted)
    add_problems(store, SC_QUESTIONS)
    config = load_experiment_config(
        CONFIG | {"samples": 3, "plan_mode": "shared-plan", "disagreement": "reflect"}
    )
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    assert store.get_run(run_id)["status"] == "done"
    assert len(store.samples(run_id, "plan")) == 2  # one plan per problem, shared by 3 codes
    assert stub_server.paid == 2 + 2 * 9 + 1

    temperatures = {(_kind(r.body), r.body.get("temperature")) for r in stub_server.requests}
    assert temperatures == {
        ("plan", 0.8),
        ("cot", 0.5),
        ("pal", 0.8),
        ("plan-code", 0.8),
        ("reflect", 0.0),
    }
    votes = vote_rows(store, run_id)
    qa, qb = votes["qa"], votes["qb"]
    assert (qa["methods"]["cot"]["answer"], qa["methods"]["cot"]["count"]) == ("7", 2)
    assert qa["methods"]["plan"]["answer"] == "9" and qa["methods"]["plan"]["correct"] is False
    assert (qa["status"], qa["agreeing"]) == ("majority", ["cot", "pal"])
    cot_b = qb["methods"]["cot"]
    assert (cot_b["answer"], cot_b["tie"], cot_b["valid"], cot_b["total"]) == ("4", True, 2, 3)
    assert qb["status"] == "disagree"
    assert (qb["resolution"]["how"], qb["answer"], qb["correct"]) == ("reflect", "4", True)
    summary = MethodsExperiment(config).summarise(store, run_id)
    assert summary["sc_ties"] == 1
    rows = summary["table"]
    assert rows["plan"]["sample_accuracy"] == pytest.approx(1 / 6)
    assert rows["vote"]["correct"] == 2

    # a forced re-run of every program and vote, from the stored outputs alone
    paid = stub_server.paid
    MethodsExperiment(config).reprocess(store, run_id, rerun_programs=True)
    assert MethodsExperiment(config).summarise(store, run_id) == summary
    assert stub_server.paid == paid
    await registry.aclose()


def test_bundled_program_examples_run_and_give_their_gold_answers() -> None:
    """The worked PAL examples in the templates are real programs with the right answers."""
    from workbench.core.experiments.methods.parse import extract_code
    from workbench.core.experiments.methods.prompts import bundled_source
    from workbench.core.prompts import parse_template
    from workbench.core.sandbox import run_many

    golds = {
        "methods-pal-gsm8k": ["20", "18", "15"],
        "methods-pal-math": ["\\frac{14}{3}", "3 \\sqrt{13}", "\\frac{3}{2}"],
    }
    for name, expected in golds.items():
        rendered = parse_template(bundled_source(name)).render(question="x")
        codes = [extract_code(m.content) for m in rendered.messages if m.role == "assistant"]
        results = run_many([c or "" for c in codes], entry="solution")
        assert [r.answer for r in results] == expected, [r.error for r in results]


def test_few_shot_problems_are_left_out(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    worked = (
        "Mishka bought 3 pairs of shorts, 3 pairs of pants, and 3 pairs of shoes. One pair of "
        "shorts costs $16.50. One pair of pants costs $22.50 and one pair of shoes costs $42. "
        "How many dollars did Mishka spend on all the clothing items?"
    )
    add_problems(store, {"fs": (worked, "243"), "q1": QUESTIONS["q1"]})
    experiment = MethodsExperiment(load_experiment_config(CONFIG))
    assert [p.id for p in experiment.problems(store)] == ["q1"]
    keep = MethodsExperiment(load_experiment_config(CONFIG | {"exclude_few_shot": False}))
    assert [p.id for p in keep.problems(store)] == ["fs", "q1"]
    store.close()
