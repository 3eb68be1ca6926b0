"""Analysis: Wilson intervals, solve rates, bins, recovery tables, paired tests, cost."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from workbench.core.analysis import comparisons, queries
from workbench.core.analysis import rates as an
from workbench.core.analysis.stats import bootstrap_diff, histogram, mcnemar_exact, wilson
from workbench.core.settings import BinSettings
from workbench.core.store import Store, now_iso

# -- pure statistics --------------------------------------------------------


def test_wilson_matches_known_values() -> None:
    r = wilson(8, 10)
    assert r.rate == pytest.approx(0.8)
    # reference: Wilson 95% for 8/10 is [0.4902, 0.9433]
    assert (round(r.low, 4), round(r.high, 4)) == (0.4902, 0.9433)
    zero = wilson(0, 20)
    assert zero.low == 0.0 and 0.15 < zero.high < 0.17  # honest at the boundary, not [0, 0]
    assert wilson(20, 20).high == 1.0
    assert wilson(0, 0).rate is None and (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)
    assert wilson(5, 10, confidence=0.99).low < wilson(5, 10).low
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_wilson_coverage_is_close_to_nominal() -> None:
    """Over many simulated binomials the 95% interval holds the truth ~95% of the time."""
    rng = random.Random(1)
    hits = total = 0
    for p in (0.1, 0.3, 0.5, 0.8):
        for _ in range(400):
            k = sum(rng.random() < p for _ in range(30))
            hits += wilson(k, 30).contains(p)
            total += 1
    assert 0.92 <= hits / total <= 0.985


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # 10 vs 0 discordant: 2 * 0.5**10
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(0, 10) == mcnemar_exact(10, 0)
    # reference value (scipy.stats.binomtest(2, 12).pvalue) = 0.03857421875
    assert mcnemar_exact(2, 10) == pytest.approx(0.03857421875)


def test_bootstrap_is_seeded_and_brackets_the_point() -> None:
    pairs = [([True, True], [False, True]), ([True], [True]), ([False, True], [False, False])]
    a = bootstrap_diff(pairs, n_boot=500, seed=3)
    assert a == bootstrap_diff(pairs, n_boot=500, seed=3)
    point, lo, hi = a
    assert point == pytest.approx(4 / 5 - 2 / 5)
    assert lo <= point <= hi


def test_histogram_edges() -> None:
    bins = histogram([0.0, 0.05, 0.1, 0.5, 0.99, 1.0], n_bins=10)
    assert [b.count for b in bins] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bins[0].label == "0%-10%"


# -- over outcomes ---------------------------------------------------------


def outcome(
    pid: str, correct: bool | None, *, model: str = "m:a", i: int = 0, **payload: object
) -> an.GradedSample:
    return an.GradedSample(0, 1, "s", pid, model, i, correct, "graded", payload)


def test_solve_rates_accuracy_and_bins() -> None:
    outs = [outcome("p1", c, i=i) for i, c in enumerate([True] * 9 + [False])]
    outs += [outcome("p2", c, i=i) for i, c in enumerate([True] * 1 + [False] * 9)]
    outs += [outcome("p3", c, i=i) for i, c in enumerate([True, False] * 5)]
    outs += [outcome("p3", None, i=99)]  # ungraded: left out, counted
    rates = an.solve_rates(outs)
    assert [(r.problem_id, r.rate.k, r.rate.n) for r in rates] == [
        ("p1", 9, 10),
        ("p2", 1, 10),
        ("p3", 5, 10),
    ]
    assert rates[2].n_ungraded == 1
    (acc,) = an.model_accuracy(outs)
    assert (acc.accuracy.k, acc.accuracy.n, acc.n_problems, acc.n_ungraded) == (15, 30, 3, 1)
    assert acc.mean_solve_rate == pytest.approx(0.5)
    rows = an.difficulty_rows(rates, BinSettings(edges=(0.2, 0.8)))
    assert {r.problem_id: r.bin for r in rows} == {"p1": "easy", "p2": "hard", "p3": "medium"}
    custom = BinSettings(edges=(0.5, 0.95), names=("low", "mid", "high"))
    assert [an.bin_for(x, custom) for x in (0.49, 0.5, 0.95)] == ["low", "mid", "high"]
    assert an.difficulty_rows(rates, min_samples=11) == []
    hist = an.solve_rate_histogram(rates, n_bins=5)
    assert [b.count for b in hist] == [1, 0, 1, 0, 1]


def test_recovery_tables_by_each_grouping() -> None:
    outs = []
    for i in range(6):
        outs.append(outcome("p1", i < 5, i=i, error_type="sign error", step_index=0, n_steps=4))
        outs.append(
            outcome("p2", i < 1, i=i, error_type="arithmetic slip", step_index=3, n_steps=4)
        )
    bins = {"p1": "hard", "p2": "easy"}
    by_err = {r.key: r for r in an.recovery_table(outs, "error_type")}
    assert (by_err["sign error"].rate.k, by_err["sign error"].rate.n) == (5, 6)
    assert by_err["arithmetic slip"].rate.k == 1
    by_bin = an.recovery_table(outs, "bin", bins=bins)
    assert [r.key for r in by_bin] == ["hard", "easy"]  # bin order, not alphabetical
    assert [r.key for r in an.recovery_table(outs, "step")] == ["1", "4"]
    assert {r.key for r in an.recovery_table(outs, "position")} == {"early", "late"}
    assert an.recovery_table(outs, "problem")[0].n_problems == 1
    assert an.step_position(1, 3) == "middle" and an.step_position(0, 1) == "early"
    unbinned = an.recovery_table(outs, "bin", bins={})
    assert [r.key for r in unbinned] == [an.UNBINNED]


def test_recovery_beside_straight_shot_uses_common_problems_only() -> None:
    rec = [outcome("p1", i < 2, i=i) for i in range(4)] + [outcome("p9", True)]
    shot = [outcome("p1", i < 3, i=i) for i in range(4)] + [outcome("p5", True)]
    (row,) = an.recovery_beside_straight_shot(rec, shot, by="all")
    assert (row.recovery.k, row.recovery.n, row.straight_shot.k, row.straight_shot.n) == (
        2,
        4,
        3,
        4,
    )
    assert row.difference == pytest.approx(-0.25)
    by_bin = an.recovery_beside_straight_shot(rec, shot, bins={"p1": "medium"})
    assert [r.key for r in by_bin] == ["medium"]


def test_paired_comparison_counts_and_pvalue() -> None:
    a = [outcome(f"p{j}", True, i=0) for j in range(12)]
    b = [outcome(f"p{j}", j < 2, i=0) for j in range(12)] + [outcome("extra", True)]
    cmp = comparisons.paired_comparison(a, b, label_a="v2", label_b="v1", n_boot=500)
    assert (cmp.n_pairs, cmp.both, cmp.a_only, cmp.b_only, cmp.neither) == (12, 2, 10, 0, 0)
    assert cmp.p_value == pytest.approx(2 / 1024)
    assert cmp.difference == pytest.approx(10 / 12)
    assert 0 < cmp.diff_low <= cmp.difference <= cmp.diff_high <= 1
    same = comparisons.paired_comparison(a, a, n_boot=100)
    assert same.p_value == 1.0 and same.difference == 0.0


def test_cost_per_correct_keeps_unknown_prices_unknown() -> None:
    outs = [
        outcome("p1", True, model="x:m"),
        outcome("p2", True, model="x:m"),
        outcome("p3", False, model="y:n"),
    ]
    costs = {"x:m": (0.5, 3, 0), "y:n": (0.0, 0, 2), "z:judge": (0.1, 1, 0)}
    rows = {r.model: r for r in comparisons.cost_per_correct(costs, outs)}
    assert rows["x:m"].cost_per_correct == pytest.approx(0.25)
    assert rows["y:n"].cost_usd is None and rows["y:n"].cost_per_correct is None
    assert rows["y:n"].n_unpriced == 2
    assert rows["all"].cost_usd == pytest.approx(0.6)
    assert rows["all"].cost_per_correct == pytest.approx(0.3)
    assert rows["all"].n_unpriced == 2


def test_as_row_flattens_rates() -> None:
    row = an.as_row(an.GroupRate("bin", "hard", wilson(1, 4), 2))
    assert row["rate_k"] == 1 and row["rate_n"] == 4 and row["rate_rate"] == 0.25
    assert row["group"] == "bin" and "rate_low" in row


# -- against a real store --------------------------------------------------


def seed_store(path: Path) -> tuple[Store, int]:
    store = Store(path)
    ts = now_iso()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO datasets(id,name,origin,format,imported_at)"
            " VALUES ('d','d','test','gsm8k',?)",
            (ts,),
        )
        for p in ("p1", "p2"):
            conn.execute(
                "INSERT INTO problems(id,dataset_id,source,question,answer,created_at)"
                " VALUES (?,?,?,?,?,?)",
                (p, "d", "gsm8k", f"q {p}", "4", ts),
            )
        run_id = store.insert(
            "runs",
            {"name": "r", "kind": "recovery", "config": "{}", "status": "done", "created_at": ts},
        )
        parent = store.insert(
            "samples",
            {
                "run_id": run_id,
                "stage": "perturb",
                "item_key": "perturb/p1/0",
                "problem_id": "p1",
                "status": "done",
                "payload": json.dumps({"error_type": "sign error", "step_index": 1, "n_steps": 3}),
                "created_at": ts,
                "updated_at": ts,
            },
        )
        for i in range(3):
            call = store.insert(
                "calls",
                {
                    "run_id": run_id,
                    "item_key": f"continue/p1/{i}",
                    "provider": "x",
                    "model": "m",
                    "request_hash": f"h{i}",
                    "request": "{}",
                    "status": "ok",
                    "cost_usd": 0.01 if i else None,
                    "created_at": ts,
                },
            )
            sid = store.insert(
                "samples",
                {
                    "run_id": run_id,
                    "stage": "continue",
                    "item_key": f"continue/p1/{i}",
                    "problem_id": "p1",
                    "sample_index": i,
                    "parent_id": parent,
                    "call_id": call,
                    "role": "completer",
                    "model": "x:m",
                    "status": "done",
                    "output": "#### 4",
                    "payload": json.dumps({"step_index": 1}),
                    "created_at": ts,
                    "updated_at": ts,
                },
            )
            # an old grade then a newer one: the newest wins by default
            store.insert(
                "grades",
                {
                    "sample_id": sid,
                    "grader": "old/0",
                    "correct": 0,
                    "status": "graded",
                    "created_at": ts,
                },
            )
            store.insert(
                "grades",
                {
                    "sample_id": sid,
                    "grader": "new/1",
                    "correct": None if i == 2 else 1,
                    "status": "no_answer" if i == 2 else "graded",
                    "created_at": ts,
                },
            )
        store.insert(
            "samples",
            {
                "run_id": run_id,
                "stage": "continue",
                "item_key": "x",
                "problem_id": "p2",
                "status": "error",
                "payload": "{}",
                "created_at": ts,
                "updated_at": ts,
            },
        )
    return store, run_id


def test_load_outcomes_joins_grades_and_parent_payload(tmp_path: Path) -> None:
    store, run_id = seed_store(tmp_path / "w.db")
    outs = queries.load_outcomes(store, run_id, stage="continue")
    assert [o.correct for o in outs] == [True, True, False]  # no_answer counts as wrong
    assert outs[0].payload["error_type"] == "sign error"  # inherited from the perturb parent
    old = queries.load_outcomes(store, run_id, stage="continue", grader="old/0")
    assert [o.correct for o in old] == [False, False, False]
    assert len(queries.load_outcomes(store, run_id, statuses=("done", "error"))) == 5
    costs = queries.load_call_costs(store, run_id)
    assert list(costs) == ["x:m"] and costs["x:m"][1:] == (2, 1)
    assert costs["x:m"][0] == pytest.approx(0.02)
    rows = an.difficulty_rows(an.solve_rates(outs))
    assert queries.write_difficulty(store, rows, run_id=run_id) == 1
    assert queries.write_difficulty(store, rows, run_id=run_id) == 1  # upsert, not duplicate
    assert queries.load_bins(store, "x:m") == {"p1": "medium"}
