"""Trace queries: filters, ordering, problem jumps, one-sample loading, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trace_data import build_recovery_run
from workbench.core.errors import StoreError
from workbench.core.store import Store
from workbench.core.views.traces import (
    TraceFilter,
    add_label,
    filter_choices,
    labels_for,
    load_trace,
    remove_label,
    trace_ids,
    trace_index,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "wb.db")


@pytest.fixture
def run_id(store: Store) -> int:
    return build_recovery_run(store, n_problems=6, k=3)


def test_default_lists_leaves_in_problem_order(store: Store, run_id: int) -> None:
    ids = trace_ids(store, run_id)
    assert len(ids) == 18  # 6 problems x 3 continuations; perturb samples have children
    rows = store.query(
        f"SELECT id, problem_id, stage FROM samples WHERE id IN ({','.join(map(str, ids))})"
    )
    assert {r["stage"] for r in rows} == {"continue"}
    order = {r["id"]: r["problem_id"] for r in rows}
    problems = [order[i] for i in ids]
    assert problems == sorted(problems)


def test_outcome_filters_partition_the_run(store: Store, run_id: int) -> None:
    counts = {
        o: len(trace_ids(store, run_id, TraceFilter(outcome=o)))  # type: ignore[arg-type]
        for o in ("recovered", "not", "invalid", "ungraded", "error")
    }
    assert sum(counts.values()) == 18
    assert counts["invalid"] == 3  # problem 0's perturbation failed validation
    errors = store.scalar(
        "SELECT COUNT(*) FROM samples s JOIN samples p ON p.id=s.parent_id"
        " WHERE s.run_id=? AND s.status='error' AND p.status!='invalid'",
        (run_id,),
    )
    assert counts["error"] == errors
    for sid in trace_ids(store, run_id, TraceFilter(outcome="recovered")):
        assert load_trace(store, sid).outcome == "recovered"
    for sid in trace_ids(store, run_id, TraceFilter(outcome="not")):
        assert load_trace(store, sid).outcome == "not"


def test_other_filters(store: Store, run_id: int) -> None:
    choices = filter_choices(store, run_id)
    assert "sign error" in choices.error_types
    assert choices.bins == ("easy", "hard", "medium")
    assert choices.flags == ("leaked_label",)
    by_type = trace_ids(store, run_id, TraceFilter(error_type="sign error"))
    assert len(by_type) == 6 and all(
        load_trace(store, i).error_type == "sign error" for i in by_type
    )
    assert len(trace_ids(store, run_id, TraceFilter(bin="hard"))) == 6
    assert len(trace_ids(store, run_id, TraceFilter(flag="leaked_label"))) == 3
    assert len(trace_ids(store, run_id, TraceFilter(model="nobody:none"))) == 0
    assert len(trace_ids(store, run_id, TraceFilter(stage="perturb"))) == 6
    assert len(trace_ids(store, run_id, TraceFilter(text="Question 4:"))) == 3
    assert len(trace_ids(store, run_id, TraceFilter(text="100%_"))) == 0


def test_problem_jumps(store: Store, run_id: int) -> None:
    idx = trace_index(store, run_id)
    assert list(idx.problem_starts) == [0, 3, 6, 9, 12, 15]
    assert idx.next_problem(0) == 3
    assert idx.next_problem(4) == 6
    assert idx.next_problem(16) == 16  # last problem: stay
    assert idx.previous_problem(4) == 3
    assert idx.previous_problem(3) == 0
    assert idx.previous_problem(0) == 0


def test_load_trace_has_everything(store: Store, run_id: int) -> None:
    sid = trace_ids(store, run_id, TraceFilter(outcome="recovered"))[0]
    view = load_trace(store, sid)
    assert view.question.startswith("Question")
    assert len(view.original_steps) == 4
    assert view.perturbed_index is not None
    assert view.original_step == view.original_steps[view.perturbed_index]
    assert view.perturbed_step and view.perturbed_step != view.original_step
    assert view.truncate_at == view.perturbed_index + 1
    assert view.grade is not None and view.grade.correct is True
    assert view.call is not None and view.call.continuation == "raw"
    assert [link.stage for link in view.chain] == ["perturb", "continue"]
    assert "Continuation:" in view.as_text()
    with pytest.raises(StoreError):
        load_trace(store, 10**9)


def test_labels_persist_and_filter(store: Store, run_id: int, tmp_path: Path) -> None:
    sid = trace_ids(store, run_id)[2]
    lid = add_label(store, sid, "genuine recovery", "noticed the slip")
    add_label(store, sid, "rewrite")
    with pytest.raises(StoreError):
        add_label(store, sid, "  ")
    other = Store(tmp_path / "wb.db")  # a second connection sees the labels
    assert [lb.label for lb in labels_for(other, sid)] == ["genuine recovery", "rewrite"]
    assert list(trace_ids(other, run_id, TraceFilter(label="rewrite"))) == [sid]
    assert filter_choices(other, run_id).labels == ("genuine recovery", "rewrite")
    remove_label(store, lid)
    assert [lb.label for lb in load_trace(store, sid).labels] == ["rewrite"]


def test_first_trace_id_is_the_first_of_the_index(store: Store, run_id: int) -> None:
    from workbench.core.views.traces import first_trace_id

    for flt in (
        TraceFilter(),
        TraceFilter(outcome="recovered"),
        TraceFilter(outcome="not"),
        TraceFilter(stage="perturb"),
        TraceFilter(text="nothing like this anywhere"),
    ):
        ids = trace_index(store, run_id, flt).ids
        assert first_trace_id(store, run_id, flt) == (ids[0] if ids else None), flt


def test_a_reply_with_no_answer_is_wrong_on_the_trace_as_in_the_metrics(tmp_path: Path) -> None:
    from workbench.core.analysis import iter_sample_rows
    from workbench.core.views.traces import load_trace

    store = Store(tmp_path / "w.db")
    run = build_recovery_run(store, n_problems=2, k=2)
    sample_id = store.scalar(
        "SELECT s.id FROM samples s JOIN grades g ON g.sample_id=s.id"
        " JOIN samples p ON p.id=s.parent_id AND p.status='done'"
        " WHERE s.run_id=? AND s.stage='continue' AND s.status='done' AND g.correct=1"
        " ORDER BY s.id LIMIT 1",
        (run,),
    )
    with store.transaction() as conn:  # the grader found no final answer in this reply
        conn.execute(
            "UPDATE grades SET correct=NULL, status='no_answer' WHERE sample_id=?", (sample_id,)
        )
    label = load_trace(store, sample_id).label.text
    exported = next(r for r in iter_sample_rows(store, run) if r["sample_id"] == sample_id)
    store.close()
    assert label == exported["outcome"] == "not recovered"
