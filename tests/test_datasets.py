"""Import: adapters, local files, bad rows, stable ids, the bundled samples and the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.core.errors import InputError
from workbench.core.library import get_problem
from workbench.core.library.datasets import (
    SAMPLES_DIR,
    import_dataset,
    import_samples,
    load_sample_model_solutions,
)
from workbench.core.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "w.db")


def _jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_samples_import_twice_without_duplicates(store: Store) -> None:
    first = import_samples(store)
    assert [(r.dataset_id, r.n_added, r.n_skipped) for r in first] == [
        ("gsm8k-test-200", 200, 0),
        ("math500-100", 100, 0),
    ]
    second = import_samples(store)
    assert [(r.n_added, r.n_updated) for r in second] == [(0, 200), (0, 100)]
    assert store.scalar("SELECT COUNT(*) FROM problems") == 300
    assert store.scalar("SELECT SUM(n_problems) FROM datasets") == 300
    math_row = store.query_one("SELECT * FROM problems WHERE source='math' LIMIT 1")
    assert math_row is not None and math_row["level"] in range(1, 6) and math_row["n_steps"] > 0
    gsm = store.query_one("SELECT * FROM problems WHERE source='gsm8k' LIMIT 1")
    assert gsm is not None and "<<" not in gsm["solution"] and "####" not in gsm["solution"]


def test_sample_model_solutions_point_at_sample_problems(store: Store) -> None:
    import_samples(store)
    traces = load_sample_model_solutions()
    assert traces and all(t["is_correct"] is False for t in traces)
    problem = get_problem(store, traces[0]["problem_id"])
    assert problem.answer == traces[0]["gold"]
    assert (SAMPLES_DIR / "ATTRIBUTION.md").exists()


def test_bad_rows_reported_with_line_numbers_and_good_rows_land(
    store: Store, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"question": "Two plus two?", "answer": "2+2=<<2+2=4>>4\n#### 4"},
            "{not json",
            {"question": "No answer here"},
            "",
            {"question": "Empty final", "answer": "work\n#### "},
            {"question": "Three times two?", "answer": "3*2=6\n#### 6"},
        ],
    )
    report = import_dataset(store, path)
    assert (report.n_added, report.n_skipped, report.format) == (2, 3, "gsm8k")
    where = [(e.line, e.field) for e in report.errors]
    assert where == [(2, "row"), (3, "answer"), (5, "answer")]
    assert str(report.errors[0]).startswith(f"{path}:line 2: row: not valid JSON")
    assert "2 added" in report.summary() and "3 bad rows skipped" in report.summary()
    assert store.scalar("SELECT COUNT(*) FROM problems") == 2
    # a second import of the same file changes nothing
    again = import_dataset(store, path)
    assert (again.n_added, again.n_updated) == (0, 2)
    assert store.scalar("SELECT COUNT(*) FROM problems") == 2


def test_math_numina_ocw_adapters(store: Store, tmp_path: Path) -> None:
    math_rows = [
        {"problem": "Find $x$.", "solution": "So $x=\\boxed{3}$.", "type": "Algebra",
         "level": "Level 3"},
        {"problem": "Find $y$.", "solution": "No box.", "type": "Algebra", "level": "Level ?"},
    ]  # fmt: skip
    report = import_dataset(store, _jsonl(tmp_path / "hendrycks.jsonl", math_rows), schema="math")
    assert (report.n_added, report.n_skipped) == (1, 1)
    assert report.errors[0].field == "answer" and report.errors[0].line == 2
    row = store.query_one("SELECT * FROM problems WHERE dataset_id='hendrycks'")
    assert row is not None and (row["answer"], row["level"], row["subject"]) == ("3", 3, "Algebra")

    numina = [{"source": "olympiads", "problem": "P?", "solution": "Hence $\\boxed{7}$.",
               "messages": [{"role": "user", "content": "P?"}]}]  # fmt: skip
    report = import_dataset(store, _jsonl(tmp_path / "numina.jsonl", numina))
    assert report.format == "numina" and report.n_added == 1
    assert store.scalar("SELECT subject FROM problems WHERE source='numina'") == "olympiads"

    ocw = [{"problem": "Q?", "solution": "The rate is \\boxed{2.5}.", "type": "Physics 8.01"}]
    report = import_dataset(store, _jsonl(tmp_path / "ocw.jsonl", ocw))
    assert report.format == "ocw" and report.n_added == 1


def test_csv_with_field_mapping_and_line_numbers(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["qid", "prompt", "gold", "topic"])
        writer.writerow(["a1", "What is 1+1?", "2", "arith"])
        writer.writerow(["a2", "Multi\nline question", "", "arith"])  # spans lines 3-4
        writer.writerow(["a3", "What is 2+2?", "4", "arith"])
    mapping = {"id": "qid", "question": "prompt", "answer": "gold", "subject": "topic"}
    report = import_dataset(store, path, mapping=mapping)
    assert (report.n_added, report.n_skipped) == (2, 1)
    assert (report.errors[0].line, report.errors[0].field) == (3, "gold (mapped to answer)")
    assert get_problem(store, "custom/a3").answer == "4"
    with pytest.raises(InputError, match="unknown field 'bogus'"):
        import_dataset(store, path, mapping={"bogus": "x", "question": "prompt"})


def test_parquet_and_limit_with_seed(store: Store, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"problem": [f"What is {i}+{i}?" for i in range(30)],
         "solution": [f"It is $\\boxed{{{2 * i}}}$." for i in range(30)],
         "level": list(range(30)), "subject": ["Algebra"] * 30}
    )  # fmt: skip
    path = tmp_path / "math.parquet"
    frame.to_parquet(path)
    report = import_dataset(store, path, limit=5, seed=1)
    assert report.n_added == 5 and report.format == "math"
    ids = [r["id"] for r in store.query("SELECT id FROM problems ORDER BY id")]
    import_dataset(store, path, name="again", limit=5, seed=1)
    again = [r["id"] for r in store.query("SELECT id FROM problems WHERE dataset_id='again'")]
    assert sorted(i.split("/", 1)[1] for i in again) == sorted(i.split("/", 1)[1] for i in ids)


def test_unknown_layout_and_missing_file_are_one_line_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot tell the dataset format"):
        import_dataset(store, _jsonl(tmp_path / "odd.jsonl", [{"foo": 1}]))
    with pytest.raises(InputError, match="no such file"):
        import_dataset(store, tmp_path / "missing.jsonl")
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(InputError, match="unknown file type"):
        import_dataset(store, bad)


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    assert main(["--db", db, "import", "--sample"]) == 0
    assert "gsm8k-test-200: 200 added" in capsys.readouterr().out
    path = _jsonl(tmp_path / "t.jsonl", [{"q": "One?", "a": "1"}, {"q": "Two?"}])
    assert main(["--db", db, "import", str(path), "--map", "question=q", "--map", "answer=a"]) == 0
    captured = capsys.readouterr()
    assert "1 added" in captured.out and "line 2: a (mapped to answer)" in captured.err
    assert main(["--db", db, "import"]) == 2
    assert main(["--db", db, "import", str(path), "--map", "nonsense"]) == 2


def test_hub_import_offline_suggests_local_files(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(tmp_path / "h.db"), "import",
         "openai/gsm8k", "--config", "main"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "openai/gsm8k" in lines[0]
    assert "workbench import PATH" in lines[0]


def test_unreachable_hub_fails_fast_with_the_local_file_route(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(InputError, match=r"cannot reach 127\.0\.0\.1.*workbench import PATH"):
        import_dataset(store, "HuggingFaceH4/MATH-500")
