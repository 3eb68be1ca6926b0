"""The runs list headline counts answers the way analysis does."""

from __future__ import annotations

from pathlib import Path

from workbench.core.grading import Grade, store_grades
from workbench.core.store import Store, now_iso
from workbench.core.views.runs import run_headline


def test_headline_counts_no_answer_as_wrong_and_leaves_timeouts_out(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    run_id = store.create_run("r", "calibration", {})
    grades = [
        Grade("5", "5", True, "graded", "numeric", "equal"),
        Grade("6", "6", False, "graded", "numeric", "not equal"),
        Grade(None, None, None, "no_answer", "auto", "no final answer found"),
        Grade("x", None, None, "timeout", "sympy", "ungraded: timeout"),
    ]
    rows = []
    with store.transaction():
        for i, grade in enumerate(grades):
            sid = store.insert(
                "samples",
                {
                    "run_id": run_id,
                    "stage": "solve",
                    "item_key": f"solve/p/{i}",
                    "status": "done",
                    "created_at": now_iso(),
                    "updated_at": now_iso(),
                },
            )
            rows.append((sid, "5", grade))
    store_grades(store, rows)
    assert run_headline(store, run_id, "calibration") == "accuracy 33.3% (1/3)"  # one rounding rule
