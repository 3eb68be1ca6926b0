"""Exports (JSONL, CSV, datasets) and the ``export`` / ``analyse`` commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.test_analysis import seed_store
from workbench.cli.main import main
from workbench.core.analysis import export
from workbench.core.errors import ConfigError, InputError, StoreError
from workbench.core.store import Store, dumps, now_iso

FAKE_KEY = "sk-test-THISISNOTAREALKEY1234567890"


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    store, run_id = seed_store(tmp_path / "w.db")
    # secrets that must never leave: in an output, in payload keys, in the call's request
    with store.transaction():
        sid = store.scalar("SELECT MIN(id) FROM samples WHERE stage='continue'")
        store.update(
            "samples",
            sid,
            {
                "output": f"my key is {FAKE_KEY}",
                "payload": dumps(
                    {
                        "api_key": "x",
                        "headers": {"Authorization": "Bearer y"},
                        "note": f"Bearer {FAKE_KEY}",
                        "step_index": 1,
                    }
                ),
            },
        )
        store.conn.execute(
            "UPDATE calls SET request=?, sent_params=?",
            (dumps({"headers": {"x-api-key": FAKE_KEY}}), dumps({"api_key": FAKE_KEY})),
        )
        store.insert("labels", {"sample_id": sid, "label": "genuine recovery", "created_at": "t"})
    store.close()
    return tmp_path / "w.db", run_id


def test_jsonl_export_has_grades_and_no_secrets(seeded: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = seeded
    out = tmp_path / "out" / "s.jsonl"
    assert (
        main(["--db", str(db), "export", str(run_id), "--format", "jsonl", "--out", str(out)]) == 0
    )
    text = out.read_text()
    assert FAKE_KEY not in text and "Authorization" not in text and "api_key" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 5
    cont = [r for r in rows if r["stage"] == "continue" and r["status"] == "done"]
    assert [r["correct"] for r in cont] == [True, True, None]
    assert cont[0]["labels"] == ["genuine recovery"]
    assert cont[0]["payload"]["step_index"] == 1 and "[redacted]" in cont[0]["payload"]["note"]
    assert cont[0]["question"] == "q p1" and cont[0]["grader"] == "new/1"
    assert set(rows[0]) == set(export.SAMPLE_COLUMNS)


def test_csv_export_and_stage_filter(seeded: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = seeded
    out = tmp_path / "s.csv"
    assert (
        main(
            [
                "--db",
                str(db),
                "export",
                str(run_id),
                "--format",
                "csv",
                "--out",
                str(out),
                "--stage",
                "perturb",
            ]
        )
        == 0
    )
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["stage"] == "perturb"
    assert json.loads(rows[0]["payload"])["error_type"] == "sign error"
    assert FAKE_KEY not in out.read_text()


def test_dataset_save_to_disk_round_trips(seeded: tuple[Path, int], tmp_path: Path) -> None:
    import datasets

    db, run_id = seeded
    out = tmp_path / "ds"
    assert (
        main(["--db", str(db), "export", str(run_id), "--format", "dataset", "--out", str(out)])
        == 0
    )
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 5 and "payload" in ds.column_names
    assert all(FAKE_KEY not in (o or "") for o in ds["output"])


def test_parquet_export_streams_the_same_rows_in_row_groups(
    seeded: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    db, run_id = seeded
    monkeypatch.setattr(export, "PARQUET_BATCH_ROWS", 2)  # 5 rows: groups of 2, 2 and 1
    out = tmp_path / "s.parquet"
    assert (
        main(["--db", str(db), "export", str(run_id), "--format", "parquet", "--out", str(out)])
        == 0
    )
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_row_groups == 3
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    store = Store(db)
    expected = list(export.iter_sample_rows(store, run_id))
    store.close()
    got = parquet.read().to_pylist()
    assert [r["sample_id"] for r in got] == [r["sample_id"] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert json.loads(mine.pop("payload")) == theirs.pop("payload")
        assert json.loads(mine.pop("labels")) == theirs.pop("labels")
        assert mine == theirs
    assert FAKE_KEY.encode() not in out.read_bytes()


def test_an_empty_run_exports_an_empty_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    store = Store(tmp_path / "w.db")
    run_id = store.create_run("empty", "calibration", {"kind": "calibration"})
    assert export.export_samples(store, run_id, "parquet", tmp_path / "e.parquet") == 0
    store.close()
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.num_rows == 0 and table.column_names == list(export.SAMPLE_COLUMNS)


def test_push_to_hub_offline_is_one_clear_line(
    seeded: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, run_id = seeded
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with Store(db) as store, pytest.raises(ConfigError, match="offline"):
        export.push_dataset(export.iter_sample_rows(store, run_id), "me/data")
    assert (
        main(["--db", str(db), "export", str(run_id), "--format", "dataset", "--push", "me/data"])
        == 2
    )


def test_bad_requests_are_one_line_errors(
    seeded: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, run_id = seeded
    assert main(["--db", str(db), "export", str(run_id)]) == 2
    assert "--out" in capsys.readouterr().err
    with Store(db) as store:
        with pytest.raises(StoreError, match="no run with id 999"):
            list(export.iter_sample_rows(store, 999))
        with pytest.raises(InputError, match="is a directory"):
            export.export_samples(store, run_id, "jsonl", tmp_path)


def test_analyse_prints_headline_tables(
    seeded: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    db, run_id = seeded
    assert main(["--db", str(db), "analyse", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert "recovery by error type (x:m)" in out
    assert "sign error" in out and "2/3 66.7%" in out  # one rounding rule: one decimal below n=1000
    assert "cost per correct answer" in out


def test_analysis_tables_export(seeded: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = seeded
    out = tmp_path / "t.jsonl"
    assert main(["--db", str(db), "export", str(run_id), "--tables", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"table", "rate_k", "rate_low"} <= set(rows[0])
    assert any(r["table"].startswith("recovery by step position") for r in rows)


def seed_calibration(store: Store, right: dict[str, int], *, model: str = "m:x") -> int:
    """A calibration run with 5 graded samples per problem, ``right[p]`` of them correct."""
    ts = now_iso()
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO datasets(id,name,origin,format,imported_at)"
            " VALUES ('d','d','t','gsm8k',?)",
            (ts,),
        )
        run_id = store.insert(
            "runs",
            {
                "name": "cal",
                "kind": "calibration",
                "config": "{}",
                "status": "done",
                "created_at": ts,
            },
        )
        for p, n_right in right.items():
            conn.execute(
                "INSERT OR IGNORE INTO problems(id,dataset_id,source,question,created_at)"
                " VALUES (?,?,?,?,?)",
                (p, "d", "gsm8k", p, ts),
            )
            for i in range(5):
                sid = store.insert("samples", {
                    "run_id": run_id, "stage": "solve", "item_key": f"solve/{p}/{i}",
                    "problem_id": p, "sample_index": i, "role": "solver", "model": model,
                    "status": "done", "payload": "{}", "created_at": ts, "updated_at": ts,
                })  # fmt: skip
                store.insert("grades", {
                    "sample_id": sid, "grader": "g", "correct": int(i < n_right),
                    "status": "graded", "created_at": ts,
                })  # fmt: skip
    return run_id


def test_analyse_calibration_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "c.db")
    run_id = seed_calibration(store, {"easy": 5, "hard": 0, "mid": 2})
    store.close()
    assert main(["--db", str(tmp_path / "c.db"), "analyse", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert "accuracy by model" in out and "7/15 46.7%" in out
    assert "solve-rate histogram m:x" in out and "difficulty bins m:x" in out
    bins = out.split("difficulty bins m:x")[1]
    assert all(name in bins for name in ("hard", "medium", "easy"))


def test_compare_two_runs_and_two_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    store = Store(db)
    a = seed_calibration(store, {f"p{i}": 5 for i in range(4)})
    b = seed_calibration(store, {f"p{i}": 1 for i in range(4)})
    seed_calibration(store, {"p0": 5}, model="m:y")
    store.close()
    assert main(["--db", str(db), "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "A only 16, B only 0" in out and "McNemar exact p = 3.05e-05" in out
    assert "A - B = +80.0%" in out
    assert main(["--db", str(db), "compare", str(a)]) == 2  # needs RUN_B or two models
    assert "--model-a" in capsys.readouterr().err
