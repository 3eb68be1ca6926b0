"""verify.py: stdlib-only comparison, DABench's scorer on the shared copy, reward adapters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.csv_agent import verify as v

DABENCH = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dabench"
needs_dabench = pytest.mark.skipif(
    not (DABENCH / "da-dev-labels.jsonl").is_file(),
    reason="../shared/datasets/dabench is absent (CC BY-NC 4.0: never copied into the package)",
)


def test_module_imports_alone_without_pandas_or_workbench() -> None:
    path = Path(v.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('verify', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['verify'] = m\n"
        "spec.loader.exec_module(m)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('pandas', 'numpy', 'workbench')]\n"
        "assert not bad, bad\n"
        "print(m.verl_compute_score('x', '@a[1]', '{\"answers\": {\"a\": 1}}'))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.0"


@pytest.mark.parametrize(
    ("kind", "predicted", "gold", "equal"),
    [
        ("number", "3932.80", 3932.8, True),
        ("number", "3932.8000001", 3932.8, True),
        ("number", "3932.81", 3932.8, False),
        ("number", "3,932.80", 3932.8, True),
        ("integer", "12", 12, True),
        ("integer", "12.5", 12, False),
        ("string", "  Very   GOOD ", "very good", True),
        ("string", "Ideal", "Premium", False),
        ("bool", "Yes", True, True),
        ("bool", "false", "no", True),
        ("bool", "maybe", True, False),
        ("date", "2024-01-02", "2024-01-02T00:00:00", True),
        ("date", "2024-01-03", "2024-01-02", False),
        ("list[number]", "[3, 1, 2]", [1, 2, 3], True),
        ("list[number]", "1, 2", [1, 2, 3], False),
        ("list[string]", "b, A", ["a", "b"], True),
        ("auto", "0.21", "0.21", True),
        ("auto", "0.2100001", "0.21", True),
        ("auto", "no", "no", True),
        ("auto", "No", "no", False),
    ],
)
def test_compare_per_type(kind: str, predicted: str, gold: object, equal: bool) -> None:
    assert v.compare(predicted, gold, v.AnswerSpec("x", type=kind)) is equal


def test_ordered_lists_and_tolerances() -> None:
    spec = v.AnswerSpec("x", type="list[string]", ordered=True)
    assert not v.compare("b, a", ["a", "b"], spec)
    assert v.compare("101", 100, v.AnswerSpec("x", type="number", rtol=0.02))
    assert not v.compare("101", 100, v.AnswerSpec("x", type="number"))


def test_verdict_reasons_and_keep_rule() -> None:
    text = "I found it. @mean_price[3932.80] @top_cut[Premium]"
    fmt = [{"name": "mean_price", "type": "number"}, {"name": "top_cut", "type": "string"},
           {"name": "n", "type": "integer"}]  # fmt: skip
    verdict = v.verify(text, {"mean_price": 3932.8, "top_cut": "Ideal", "n": 5}, fmt)
    assert [s.status for s in verdict.subs] == ["correct", "wrong", "no_answer"]
    assert verdict.score == pytest.approx(1 / 3) and not verdict.correct
    decision = v.keep_decision(verdict, stop_reason="max_turns")
    assert decision.reasons == ("max_turns", "wrong:top_cut", "no_answer") and not decision.keep
    good = v.verify("@a[1]", {"a": 1})
    dag = [
        {"tool": "filter", "args": {"conditions": []}},
        {"tool": "compute", "args": {"expression": "x"}},
    ]
    overlap = v.dag_overlap([("head", {"n": 5})], dag)
    assert overlap.jaccard == 0 and overlap.ordered == 0
    kept = v.keep_decision(good, overlap=overlap)
    assert kept.keep and kept.tags == ("alt_solution",)
    same = v.dag_overlap([(n["tool"], {**n["args"], "frame": "f1"}) for n in dag], dag)
    assert (same.jaccard, same.ordered) == (1.0, 1.0)


def test_pass_rates() -> None:
    rate = v.pass_rate([True, False, False, True], ks=(1, 2, 4))
    assert rate.rate == 0.5 and rate.low < 0.5 < rate.high
    assert rate.pass_at[1] == pytest.approx(0.5)
    assert rate.pass_at[2] == pytest.approx(1 - 1 / 6) and rate.pass_at[4] == 1.0
    assert v.wilson(0, 0) == (0.0, 1.0)


def _labels() -> list[tuple[int, list[list[str]]]]:
    lines = (DABENCH / "da-dev-labels.jsonl").read_text().splitlines()
    return [(row["id"], row["common_answers"]) for row in map(json.loads, lines)]


def _respond(answers: list[list[str]]) -> str:
    return "Final: " + " ".join(f"@{n}[{a}]" for n, a in answers)


@needs_dabench
def test_dabench_gold_labels_score_100_percent() -> None:
    labels = _labels()
    verdicts = [v.verify(_respond(a), dict(map(tuple, a))) for _, a in labels]
    scores = v.score_run(verdicts)
    assert scores.n_questions == 257
    assert (scores.abq, scores.pasq, scores.uasq, scores.parse_rate) == (1.0, 1.0, 1.0, 1.0)


@needs_dabench
def test_dabench_one_wrong_sub_answer_moves_abq_and_pasq_by_the_expected_amounts() -> None:
    labels = _labels()
    index = next(i for i, (_, a) in enumerate(labels) if len(a) == 4)
    responses = [list(map(list, a)) for _, a in labels]
    responses[index][0][1] = "wrong-value"
    verdicts = [
        v.verify(_respond(r), dict(map(tuple, a)))
        for r, (_, a) in zip(responses, labels, strict=True)
    ]
    scores = v.score_run(verdicts)
    n = len(labels)
    n_subs = sum(len(dict(map(tuple, a))) for _, a in labels)  # a few repeat a name
    assert scores.abq == pytest.approx(1 - 1 / n)
    assert scores.pasq == pytest.approx(1 - (1 / 4) / n)
    assert scores.uasq == pytest.approx(1 - 1 / n_subs)


@needs_dabench
def test_dabench_value_off_by_1e7_is_still_correct() -> None:
    labels = _labels()
    qid, answers = next((i, a) for i, a in labels if a[0][1].replace(".", "").isdigit())
    off = [[answers[0][0], repr(float(answers[0][1]) + 1e-7)], *answers[1:]]
    assert v.verify(_respond(off), dict(map(tuple, answers))).correct, qid
    far = [[answers[0][0], repr(float(answers[0][1]) + 1e-5)], *answers[1:]]
    assert not v.verify(_respond(far), dict(map(tuple, answers))).correct


def test_reward_adapters_return_floats() -> None:
    truth = {
        "answers": {"a": 2.5, "b": "x"},
        "format": [{"name": "a", "type": "number"}, {"name": "b", "type": "string"}],
    }
    right, wrong, missing = "@a[2.5] @b[X]", "@a[3] @b[x]", "no answer here"
    got = v.trl_reward(
        [right, [{"role": "assistant", "content": wrong}], missing],
        [truth["answers"]] * 3,
        [truth["format"]] * 3,
    )
    assert got == [1.0, 0.5, 0.0] and all(isinstance(x, float) for x in got)
    gt = json.dumps(truth)
    assert [v.verl_compute_score("workbench-csv", t, gt) for t in (right, wrong, missing)] == [
        1.0,
        0.5,
        0.0,
    ]
    out = v.openrlhf_reward_func(["Q?" + right, "Q?" + wrong, "Q?" + missing], ["Q?"] * 3, [gt] * 3)
    assert out["rewards"] == [1.0, 0.5, 0.0]


def test_format_entries_as_exported_build_the_same_spec() -> None:
    entry = {"name": "x", "type": "number", "decimals": 2, "atol": None, "rtol": None}
    spec = v.AnswerSpec.from_json(entry)
    assert spec.atol == pytest.approx(0.005) and spec.rtol == 0.0
    assert v.verify("@x[3.26]", {"x": 3.2649}, [entry]).correct
    assert not v.verify("@x[3.27]", {"x": 3.2649}, [entry]).correct
