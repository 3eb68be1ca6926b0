"""Labelled model traces: BIG-Bench Mistake and ProcessBench import with their labels intact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from workbench.core.grading.tasks import grade_task_answer
from workbench.core.library import import_dataset, import_path
from workbench.core.library.formats import BBMISTAKE_TASKS, AnswerKind
from workbench.core.library.problems import Problem, get_problems
from workbench.core.store import Store

BBMISTAKE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "bbmistake"


def all_problems(
    store: Store, dataset: str | None = None, *, source: str | None = None
) -> list[Problem]:
    where, value = ("dataset_id", dataset) if dataset else ("source", source)
    ids = [r[0] for r in store.conn.execute(f"SELECT id FROM problems WHERE {where}=?", (value,))]
    return get_problems(store, ids)


def file_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.skipif(not BBMISTAKE.is_dir(), reason="../shared/datasets/bbmistake is not here")
def test_bbmistake_imports_every_trace_with_its_label(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    reports = import_path(store, BBMISTAKE)  # one dataset per task file
    assert [r.dataset_id for r in reports] == sorted(BBMISTAKE_TASKS)
    expected: Counter[tuple[str, object]] = Counter()
    traces: dict[str, int] = {}
    for path in sorted(BBMISTAKE.glob("*.jsonl")):
        rows = file_rows(path)
        traces[path.stem] = len(rows)
        expected.update((path.stem, row["mistake_index"]) for row in rows)
    n = sum(traces.values())
    assert sum(r.n_added for r in reports) == n
    assert all(r.n_skipped == 0 for r in reports), [r.errors[:1] for r in reports]
    problems = all_problems(store, source="bbmistake")
    assert Counter(p.meta["task"] for p in problems) == traces
    assert Counter((p.meta["task"], p.meta["mistake_index"]) for p in problems) == expected
    # the reference trace is the model's, step for step, with its own answer and the gold target
    arithmetic = next(p for p in problems if p.meta["task"] == "multistep_arithmetic")
    assert arithmetic.meta["reference"] == "model trace"
    assert arithmetic.meta["answer_kind"] == AnswerKind.NUMERIC
    assert arithmetic.steps and arithmetic.solution == "\n".join(arithmetic.steps)
    assert {p.meta["answer_kind"] for p in problems} == {str(k) for k in AnswerKind}
    again = import_path(store, BBMISTAKE)
    assert sum(r.n_added for r in again) == 0 and sum(r.n_updated for r in again) == n
    assert store.scalar("SELECT COUNT(*) FROM problems") == n
    store.close()


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bad_bbmistake_rows_are_reported_per_row(tmp_path: Path) -> None:
    good = {"input": "a b c", "steps": ["s0", "s1"], "answer": "a b c", "target": "a b c",
            "mistake_index": None}  # fmt: skip
    rows = [
        good,
        {**good, "steps": []},
        {**good, "mistake_index": 2},
        {**good, "task": "chess", "input": "x y"},
        {**good, "mistake_index": "one"},
        {**good, "input": "(((1 + 2) * 3) - 4) =", "mistake_index": 1},
    ]
    store = Store(tmp_path / "w.db")
    report = import_dataset(store, write_jsonl(tmp_path / "mine.jsonl", rows), schema="bbmistake")
    assert report.n_added == 2 and report.n_skipped == 4
    lines = [str(e) for e in report.errors]
    assert lines[0].endswith("line 2: steps: missing, or not a non-empty list of strings")
    assert lines[1].endswith(
        "line 3: mistake_index: step 2 is out of range (the trace has 2 steps)"
    )
    assert "line 4: task: unknown task 'chess'" in lines[2]
    assert lines[3].endswith("line 5: mistake_index: not a step index: 'one'")
    tasks = {p.meta["task"]: p.meta["mistake_index"] for p in all_problems(store, "mine")}
    assert tasks == {"word_sorting": None, "multistep_arithmetic": 1}
    store.close()


PROCESSBENCH_ROWS = [
    {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "What is 2 + 3 * 4?",
     "steps": ["3 * 4 = 12.", "2 + 12 = 15.", "The answer is 15."],
     "final_answer_correct": False, "label": 1},
    {"id": "math-7", "generator": "Llama-3.1-8B-Instruct", "problem": "Solve $x^2 = 4$, $x>0$.",
     "steps": ["$x = \\pm 2$.", "Since $x > 0$, $x = 2$."], "final_answer_correct": True,
     "label": -1},
    {"id": "omnimath-3", "problem": "p", "steps": ["only"], "final_answer_correct": False,
     "label": 4},
    {"id": "olympiadbench-9", "problem": "p", "steps": ["a", "b"], "final_answer_correct": True},
]  # fmt: skip


def test_processbench_rows_import_with_label_and_split(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    path = write_jsonl(tmp_path / "processbench.jsonl", PROCESSBENCH_ROWS)
    report = import_dataset(store, path)  # the layout is recognised from its columns
    assert report.format == "processbench"
    assert report.n_added == 2 and report.n_skipped == 2
    assert [str(e).split(": ", 1)[1] for e in report.errors] == [
        "label: step 4 is out of range (the trace has 1 steps)",
        "label: missing (the earliest wrong step, or -1)",
    ]
    by_id = {p.id: p for p in all_problems(store, "processbench")}
    wrong, right = by_id["processbench/gsm8k-0"], by_id["processbench/math-7"]
    assert (wrong.meta["mistake_index"], wrong.meta["final_answer_correct"]) == (1, False)
    assert (right.meta["mistake_index"], right.meta["final_answer_correct"]) == (None, True)
    assert (wrong.meta["task"], right.meta["task"]) == ("gsm8k", "math")
    assert right.steps == ("$x = \\pm 2$.", "Since $x > 0$, $x = 2$.")
    assert import_dataset(store, path).n_added == 0
    store.close()


def test_a_folder_imports_each_file_and_names_each_bad_row(tmp_path: Path) -> None:
    folder = tmp_path / "bbm"
    folder.mkdir()
    good = {"input": "b a", "steps": ["s"], "answer": "a b", "target": "a b", "mistake_index": 0}
    write_jsonl(folder / "word_sorting.jsonl", [good, {**good, "input": "d c", "steps": None}])
    write_jsonl(folder / "dyck_languages.jsonl", [{**good, "input": "( [", "target": "] )"}])
    (folder / "notes.txt").write_text("not data")
    store = Store(tmp_path / "w.db")
    reports = {r.dataset_id: r for r in import_path(store, folder)}
    assert sorted(reports) == ["dyck_languages", "word_sorting"]
    assert (reports["word_sorting"].n_added, reports["word_sorting"].n_skipped) == (1, 1)
    error = str(reports["word_sorting"].errors[0])
    assert error.startswith(f"{folder / 'word_sorting.jsonl'}:line 2: steps")
    assert sorted(p.meta["task"] for p in all_problems(store, source="bbmistake")) == [
        "dyck_languages",
        "word_sorting",
    ]
    store.close()


def test_every_task_has_a_scoring_rule() -> None:
    assert BBMISTAKE_TASKS["word_sorting"] is AnswerKind.EXACT
    assert BBMISTAKE_TASKS["logical_deduction"] is AnswerKind.OPTION
    assert len(BBMISTAKE_TASKS) == 5


@pytest.mark.skipif(not BBMISTAKE.is_dir(), reason="../shared/datasets/bbmistake is not here")
def test_task_grading_agrees_with_every_trace_answer_in_the_dataset() -> None:
    """Each trace's last step graded against its target equals "its answer is the target"
    (the dataset's answers carry stray spaces and full stops, which the grader ignores)."""
    disagreements = []
    for path in sorted(BBMISTAKE.glob("*.jsonl")):
        kind = BBMISTAKE_TASKS[path.stem]
        for row in file_rows(path):
            steps, target = row["steps"], str(row["target"])
            assert isinstance(steps, list)
            said = str(row["answer"] or "").strip().rstrip(".").strip()
            grade = grade_task_answer(kind, steps[-1], target)
            if bool(grade.correct) != (said == target):
                disagreements.append((path.stem, said, target, grade))
    assert disagreements == []


@pytest.mark.parametrize(
    ("kind", "text", "target", "correct"),
    [
        ("exact", "So the answer is ] } )", "] } )", True),
        ("exact", "So the answer is ] }", "] } )", False),
        ("exact", "the answer is  apple   banana.", "apple banana", True),
        ("numeric", "Thus -14 + 1258 = 1244. So the answer is 1244.", "1244", True),
        ("numeric", "So the answer is -2,116", "-2116", True),
        ("numeric", "So the answer is twelve", "12", False),
        ("option", "So the answer is (B).", "(B)", True),
        ("option", "So the answer is B", "(B)", True),
        ("option", "So the answer is (A), (B), (C), or (D).", "(A)", False),
        ("option", "So the answer is (C)", "(B)", False),
        ("option", "I am not sure.", "(B)", None),
    ],
)
def test_grade_task_answer(kind: str, text: str, target: str, correct: bool | None) -> None:
    assert grade_task_answer(kind, text, target).correct is correct


def test_the_bundled_sample_imports_with_its_labels(tmp_path: Path) -> None:
    from workbench.cli.main import main

    db = str(tmp_path / "w.db")
    assert main(["--db", db, "import", "--sample", "bbmistake"]) == 0
    store = Store(Path(db))
    problems = all_problems(store, "bbmistake-100")
    store.close()
    assert Counter(p.meta["task"] for p in problems) == {task: 20 for task in BBMISTAKE_TASKS}
    assert any(p.meta["mistake_index"] is None for p in problems)
    assert all(p.meta["reference"] == "model trace" for p in problems)


def test_every_adapter_is_offered_by_the_cli_and_the_import_dialog() -> None:
    from workbench.cli.imports import SCHEMAS
    from workbench.core.library.formats import FORMATS
    from workbench.tui.import_dialog import ADAPTERS

    layouts = set(FORMATS) - {"mapped"}
    assert set(SCHEMAS) == layouts and set(ADAPTERS) == layouts | {"auto"}
