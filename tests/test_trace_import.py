"""Published GPT-3 GSM8K traces recorded as a graded calibration run (offline demo data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli.demo import prepare_demo
from workbench.cli.main import main
from workbench.core.errors import InputError
from workbench.core.experiments.published_traces import GSM8K_GPT3, import_traces, load_rows
from workbench.core.grading import GRADER_NAME
from workbench.core.library.datasets import SAMPLES_DIR, import_samples
from workbench.core.library.problems import ProblemFilter, query_problems
from workbench.core.store import Store, open_store
from workbench.core.views.plots import solve_rate_hist
from workbench.core.views.runs import list_runs
from workbench.core.views.traces import TraceFilter, load_trace, trace_index

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "gsm8k"
FIELDS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "wb.db")
    import_samples(s)
    return s


def test_traces_become_a_graded_calibration_run(store: Store) -> None:
    result = import_traces(store)
    assert result.created and result.n_added == result.n_samples == 800
    run = store.get_run(result.run_id)
    assert (run["kind"], run["status"]) == ("calibration", "done")
    assert run["started_at"] and run["finished_at"]
    assert run["config"]["solvers"] == ["gpt3:6b", "gpt3:175b"] and run["config"]["samples"] == 2
    assert store.scalar("SELECT COUNT(*) FROM calls") == 0  # nothing was sent or paid for
    per_model = dict(
        store.conn.execute(
            "SELECT model, COUNT(*) FROM samples WHERE run_id=? AND status='done' GROUP BY model",
            (result.run_id,),
        ).fetchall()
    )
    assert per_model == {"gpt3:6b": 400, "gpt3:175b": 400}
    graded = store.scalar(
        "SELECT COUNT(*) FROM grades WHERE grader=? AND status='graded'", (GRADER_NAME,)
    )
    assert graded == 800
    # the real grader against the dataset's own is_correct flags
    assert result.n_compared == 800 and result.agreement is not None and result.agreement >= 0.99
    assert 200 < result.n_correct < 400
    bins = store.query("SELECT model, COUNT(*) AS n FROM difficulty GROUP BY model ORDER BY model")
    assert bins == [{"model": "gpt3:175b", "n": 200}, {"model": "gpt3:6b", "n": 200}]


def test_the_run_renders_in_runs_traces_plots_and_problems(store: Store) -> None:
    run_id = import_traces(store).run_id
    (row,) = list_runs(store)
    assert (row.id, row.n_samples, row.n_calls, row.status) == (run_id, 800, 0, "done")
    index = trace_index(store, run_id, TraceFilter(model="gpt3:175b"))
    assert len(index) == 400
    view = load_trace(store, index.ids[0])
    assert view.call is None and view.grade is not None and view.grade.status == "graded"
    plot = solve_rate_hist(store, run_id)
    assert not plot.empty and [s.name for s in plot.series] == ["gpt3:175b", "gpt3:6b"]
    assert sum(sum(s.values) for s in plot.series) == 400
    rows = query_problems(store, ProblemFilter(dataset="gsm8k-test-200"), limit=200)
    assert all(r.solve_rate is not None and r.bin in ("hard", "medium", "easy") for r in rows)


def test_importing_again_adds_nothing_and_restores_what_is_missing(store: Store) -> None:
    first = import_traces(store)
    again = import_traces(store)
    assert not again.created and again.run_id == first.run_id and again.n_added == 0
    assert store.scalar("SELECT COUNT(*) FROM runs") == 1
    assert store.scalar("SELECT COUNT(*) FROM samples") == 800
    assert store.scalar("SELECT COUNT(*) FROM grades") == 800
    with store.transaction():
        store.conn.execute("DELETE FROM samples WHERE id IN (SELECT id FROM samples LIMIT 5)")
    healed = import_traces(store)
    assert healed.n_added == 5 and healed.n_samples == 800 and healed.n_compared == 800


def test_without_the_sample_problems_it_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        import_traces(Store(tmp_path / "empty.db"))
    assert "workbench import --sample" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="unknown trace set"):
        import_traces(Store(tmp_path / "empty.db"), "nope")


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/datasets")
def test_bundled_file_is_the_published_solutions_for_the_sample_problems(store: Store) -> None:
    """Re-derive the bundled file from the original release; ids match the sample import."""
    test = [json.loads(line) for line in (SHARED / "test.jsonl").open(encoding="utf-8")]
    published = [
        json.loads(line)
        for line in (SHARED / "example_model_solutions.jsonl").open(encoding="utf-8")
    ]
    rows = load_rows(GSM8K_GPT3)
    sample_questions = [
        json.loads(line)["question"]
        for line in (SAMPLES_DIR / "gsm8k-test-200.jsonl").open(encoding="utf-8")
    ]
    assert len(rows) == 200
    problems = {r["id"]: r for r in store.query("SELECT id, question, answer FROM problems")}
    for row, question in zip(rows, sample_questions, strict=True):
        i = row["test_index"]
        assert test[i]["question"] == published[i]["question"] == question
        assert {f: published[i][f] for f in FIELDS} == row["solutions"]
        problem = problems[row["problem_id"]]
        assert problem["question"] == question.strip() and problem["answer"] == row["gold"]
    wrong = SAMPLES_DIR / "gsm8k-model-solutions-200.jsonl"
    wrong_175b = {json.loads(line)["problem_id"] for line in wrong.open(encoding="utf-8")}
    assert wrong_175b == {
        r["problem_id"] for r in rows if not r["solutions"]["175b_finetuning"]["is_correct"]
    }


def test_cli_import_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "wb.db")
    assert main(["--db", db, "import", "--traces", "gsm8k-gpt3"]) == 2
    assert "workbench import --sample" in capsys.readouterr().err
    assert main(["--db", db, "import", "--sample", "--traces", "gsm8k-gpt3"]) == 0
    out = capsys.readouterr().out
    assert "gsm8k-test-200: 200 added" in out and "traces gsm8k-gpt3: recorded run 1" in out
    assert "800/800" in out
    assert main(["--db", db, "import", "--traces", "gsm8k-gpt3"]) == 0
    assert "checked run 1: 800 traces (0 new)" in capsys.readouterr().out
    assert main(["--db", db, "import", "--traces", "nope"]) == 2


def test_demo_records_the_run_once(tmp_path: Path) -> None:
    first = prepare_demo(tmp_path)
    assert any(line.startswith("runs: recorded run") for line in first)
    assert not any(line.startswith("runs:") for line in prepare_demo(tmp_path))
    with open_store(tmp_path / "workbench.db") as s:
        # the traces' run, and the recorded csv_agent run for Tables (test_tables_screen)
        assert s.scalar("SELECT COUNT(*) FROM runs WHERE kind = 'calibration'") == 1
        assert s.scalar("SELECT COUNT(*) FROM runs WHERE kind = 'csv_agent'") == 1
        calibration = "SELECT id FROM runs WHERE kind = 'calibration'"
        assert s.scalar(f"SELECT COUNT(*) FROM samples WHERE run_id = ({calibration})") == 800
