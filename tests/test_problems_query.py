"""Problem selection for runs, paged queries for the screen, and named problem sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.errors import InputError, StoreError
from workbench.core.library import import_samples
from workbench.core.library.problems import (
    ProblemFilter,
    ProblemSelection,
    count_problems,
    create_problem_set,
    delete_problem_set,
    distinct_values,
    get_problem,
    list_problem_sets,
    problem_set_ids,
    query_problems,
    sample_ids,
    select_problems,
)
from workbench.core.store import Store, now_iso


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("lib") / "w.db")
    import_samples(s)
    _add_difficulty_and_grades(s)
    yield s
    s.close()


MATH_IDS: list[str] = []


def _add_difficulty_and_grades(store: Store) -> None:
    """Solve rates for the first 10 MATH problems, and one graded sample."""
    ids = [
        r[0] for r in store.conn.execute("SELECT id FROM problems WHERE source='math' ORDER BY id")
    ]
    MATH_IDS[:] = ids
    now = now_iso()
    with store.transaction() as conn:
        for i, pid in enumerate(ids[:10]):
            rate = i / 10
            bin_ = "hard" if rate < 0.3 else "medium" if rate < 0.7 else "easy"
            conn.execute(
                "INSERT INTO difficulty VALUES (?,?,?,?,?,?,NULL,?)",
                (pid, "m1", 10, i, rate, bin_, now),
            )
        run_id = store.insert(
            "runs", {"name": "r", "kind": "k", "config": "{}", "status": "done", "created_at": now}
        )
        sample_id = store.insert(
            "samples",
            {"run_id": run_id, "stage": "solve", "item_key": "a", "problem_id": ids[0],
             "status": "done", "created_at": now, "updated_at": now},
        )  # fmt: skip
        store.insert(
            "grades",
            {"sample_id": sample_id, "grader": "g", "status": "graded", "correct": 1,
             "created_at": now},
        )  # fmt: skip


def test_get_problem_round_trips_steps(store: Store) -> None:
    p = get_problem(store, MATH_IDS[0])
    assert p.source == "math" and p.steps and isinstance(p.steps, tuple)
    with pytest.raises(StoreError, match="no problem"):
        get_problem(store, "nope")


def test_select_problems_filters_and_seeded_sampling(store: Store) -> None:
    assert len(select_problems(store, ProblemSelection())) == 300
    gsm = select_problems(store, ProblemSelection(source="gsm8k"))
    assert len(gsm) == 200 and [p.id for p in gsm] == sorted(p.id for p in gsm)
    lv = select_problems(store, ProblemSelection(dataset="math500-100", level=(1, 2)))
    assert lv and all(p.level in (1, 2) for p in lv)
    algebra = select_problems(store, ProblemSelection(subject=("Algebra",)))
    assert algebra and all(p.subject == "Algebra" for p in algebra)
    a = select_problems(store, ProblemSelection(source="gsm8k", limit=10, seed=3))
    b = select_problems(store, ProblemSelection(source="gsm8k", limit=10, seed=3))
    c = select_problems(store, ProblemSelection(source="gsm8k", limit=10, seed=4))
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    assert len(a) == 10
    hard = select_problems(store, ProblemSelection(bin="hard", bin_model="m1"))
    assert [p.id for p in hard] == MATH_IDS[:3]
    assert select_problems(store, ProblemSelection(bin="hard", bin_model="other")) == []
    ids = select_problems(store, ProblemSelection(ids=(MATH_IDS[5], MATH_IDS[2])))
    assert [p.id for p in ids] == [MATH_IDS[2], MATH_IDS[5]]


def test_problem_sets_keep_order_and_replace(store: Store) -> None:
    chosen = [MATH_IDS[7], MATH_IDS[1], MATH_IDS[4]]
    create_problem_set(store, "picked", chosen, note="first")
    assert problem_set_ids(store, "picked") == chosen
    got = select_problems(store, ProblemSelection(set="picked"))
    assert [p.id for p in got] == chosen
    create_problem_set(store, "picked", chosen[:2], note="second")
    infos = {s.name: s for s in list_problem_sets(store)}
    assert infos["picked"].n_problems == 2 and infos["picked"].note == "second"
    flt = ProblemFilter(problem_set="picked")
    assert count_problems(store, flt) == 2
    with pytest.raises(InputError, match="no problem with id 'ghost'"):
        create_problem_set(store, "bad", ["ghost"])
    with pytest.raises(InputError, match="no problem set named 'none'"):
        select_problems(store, ProblemSelection(set="none"))
    delete_problem_set(store, "picked")
    assert "picked" not in {s.name for s in list_problem_sets(store)}


def test_query_pages_sort_and_filters(store: Store) -> None:
    everything = ProblemFilter()
    assert count_problems(store, everything) == 300
    page1 = query_problems(store, everything, offset=0, limit=50)
    page2 = query_problems(store, everything, offset=50, limit=50)
    assert len(page1) == 50 and page1[-1].id < page2[0].id
    by_level = query_problems(store, ProblemFilter(source="math"), order_by="level", limit=100)
    levels = [r.level for r in by_level]
    assert levels == sorted(levels)
    desc = query_problems(store, ProblemFilter(source="math"), order_by="level", descending=True)
    assert desc[0].level == 5
    rated = query_problems(store, ProblemFilter(model="m1"), order_by="solve_rate", limit=3)
    assert [r.solve_rate for r in rated] == [0.0, 0.1, 0.2] and rated[0].bin == "hard"
    unrated_last = query_problems(
        store, ProblemFilter(model="m1"), order_by="solve_rate", offset=10
    )
    assert all(r.solve_rate is None for r in unrated_last)
    easy = ProblemFilter(bin="easy", model="m1")
    assert count_problems(store, easy) == 3
    assert count_problems(store, ProblemFilter(has_grade=True)) == 1
    assert count_problems(store, ProblemFilter(has_grade=False)) == 299
    assert count_problems(store, ProblemFilter(source="math", level=5, subject="Algebra")) >= 0
    with pytest.raises(InputError, match="cannot sort"):
        query_problems(store, everything, order_by="question")


def test_text_search_matches_question_and_id(store: Store) -> None:
    hits = query_problems(store, ProblemFilter(text="ducks"))
    assert hits and count_problems(store, ProblemFilter(text="ducks")) == len(hits)
    assert count_problems(store, ProblemFilter(text="precalculus/")) > 0  # MATH ids
    assert count_problems(store, ProblemFilter(text="100%_no_such")) == 0  # wildcards escaped


def test_distinct_values_and_sampling(store: Store) -> None:
    assert distinct_values(store, "source") == ["gsm8k", "math"]
    assert distinct_values(store, "level") == [1, 2, 3, 4, 5]
    assert "Algebra" in distinct_values(store, "subject")
    assert distinct_values(store, "bin") == ["easy", "hard", "medium"]
    with pytest.raises(InputError):
        distinct_values(store, "question")
    flt = ProblemFilter(source="gsm8k")
    s1, s2 = sample_ids(store, flt, 20, seed=7), sample_ids(store, flt, 20, seed=7)
    assert s1 == s2 and len(s1) == 20 and s1 == sorted(s1)
    assert sample_ids(store, flt, 20, seed=8) != s1
    assert len(sample_ids(store, flt, 10_000)) == 200


def test_migration_keeps_existing_databases_working(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as s:
        assert s.version >= 1
