"""``workbench runs archive RUN --to DIR [--prune]``: Parquet with the calls' text, redacted,
row counts verified; pruning keeps the run row with a pointer."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_export import FAKE_KEY, seeded  # noqa: F401 - the fixture
from workbench.cli.main import main
from workbench.core.analysis import archive_run, export
from workbench.core.analysis.archive import ARCHIVE_SAMPLE_COLUMNS, CALL_COLUMNS
from workbench.core.errors import InputError
from workbench.core.store import Store, loads
from workbench.core.views.runs import list_runs


def read(folder: Path, name: str) -> pa.Table:
    """An archive's parts of ``name`` as one table, as a user reads them."""
    assert (folder / name / "part-00000.parquet").exists()
    table = pq.read_table(folder / name)
    parts = sorted((folder / name).glob("part-*.parquet"))
    assert table.equals(pa.concat_tables([pq.read_table(p) for p in parts]))
    return table


def _strings(table: pa.Table) -> list[str]:
    return [v for col in table.to_pydict().values() for v in col if isinstance(v, str)]


def test_archive_writes_verified_redacted_parquet(
    seeded: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, run_id = seeded
    out = tmp_path / "archive"
    assert main(["--db", str(db), "runs", "archive", str(run_id), "--to", str(out)]) == 0
    assert "row counts verified" in capsys.readouterr().out
    folder = out / f"run-{run_id}"
    samples = read(folder, "samples")
    calls = read(folder, "calls")
    store = Store(db)
    assert samples.num_rows == store.scalar(
        "SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)
    )
    assert calls.num_rows == store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (run_id,))
    assert samples.column_names == list(ARCHIVE_SAMPLE_COLUMNS)
    assert calls.column_names == list(CALL_COLUMNS)
    assert samples.schema.field("correct").type == pa.bool_()
    assert calls.schema.field("cost_usd").type == pa.float64()
    assert calls.schema.field("call_id").type == pa.int64()
    # the request text is there, and every secret in it (or anywhere) is redacted
    assert any("x-api-key" in (r or "") for r in calls.column("request").to_pylist())
    texts = _strings(samples) + _strings(calls)
    assert not any(FAKE_KEY in t for t in texts)
    assert "sent_params" not in calls.column_names
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"] == {"samples": samples.num_rows, "calls": calls.num_rows}
    pointer = loads(store.scalar("SELECT archive FROM runs WHERE id=?", (run_id,)), {})
    assert pointer["pruned"] is False and pointer["dir"] == str(folder.resolve())
    # archiving alone deletes nothing
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)) == 5


def test_prune_keeps_the_run_row_and_the_analysis_in_the_parquet(
    seeded: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    db, run_id = seeded
    store = Store(db)
    before = list(export.iter_sample_rows(store, run_id))
    totals = store.run_totals(run_id)
    # another run's cache hit that points at one of this run's calls
    first_call = store.scalar("SELECT MIN(id) FROM calls WHERE run_id=?", (run_id,))
    other = store.insert(
        "runs",
        {"name": "o", "kind": "recovery", "config": "{}", "status": "done", "created_at": "t"},
    )
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO calls (run_id, provider, base_url, model, request_hash, request, "
            "sent_params, status, cache_hit, cached_from, created_at, latency_ms, attempts) "
            "SELECT ?, provider, base_url, model, request_hash, request, sent_params, status, "
            "1, id, created_at, 0, 0 FROM calls WHERE id=?",
            (other, first_call),
        )
    report = archive_run(store, run_id, tmp_path / "a", prune=True)
    assert report.pruned and report.samples == 5
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)) == 0
    assert store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (run_id,)) == 0
    assert store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (other,)) == 1
    assert store.scalar("SELECT cached_from FROM calls WHERE run_id=?", (other,)) is None
    run = store.get_run(run_id)  # the row stays, with a pointer and its totals as they were
    pointer = loads(run["archive"], {})
    assert pointer["pruned"] is True and pointer["totals"]["cost_usd"] == totals.cost_usd
    assert pointer["rows"] == {"samples": 5, "calls": report.calls}
    assert run_id in [r.id for r in list_runs(store)]  # still listed
    store.close()
    assert main(["--db", str(db), "runs"]) == 0
    # what the analysis reads, column for column, from the Parquet
    table = read(Path(report.dir), "samples").to_pylist()
    for row, was in zip(table, before, strict=True):
        for column in export.SAMPLE_COLUMNS:
            value = row[column]
            if column in ("payload", "labels") and value is not None:
                value = json.loads(value)
            assert value == was[column], column


def test_an_unfinished_or_pruned_run_is_refused(
    seeded: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    db, run_id = seeded
    store = Store(db)
    store.set_run_status(run_id, "running")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="archive it once it has finished"):
        archive_run(store, run_id, tmp_path / "a", prune=True)
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)) == 5
    store.set_run_status(run_id, "done")  # type: ignore[arg-type]
    archive_run(store, run_id, tmp_path / "a", prune=True)
    with pytest.raises(InputError, match="already archived and pruned"):
        archive_run(store, run_id, tmp_path / "b", prune=True)


def test_a_large_run_is_written_in_parts(
    seeded: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench.core.analysis import archive

    monkeypatch.setattr(archive, "PART_ROWS", 2)
    db, run_id = seeded
    store = Store(db)
    before = [r["sample_id"] for r in export.iter_sample_rows(store, run_id)]
    report = archive_run(store, run_id, tmp_path / "a", prune=True)
    folder = Path(report.dir)
    assert sorted(p.name for p in (folder / "samples").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert read(folder, "samples").column("sample_id").to_pylist() == before
    pointer = loads(store.get_run(run_id)["archive"], {})
    assert len(pointer["files"]["samples"]) == 3
    assert read(folder, "calls").num_rows == pointer["rows"]["calls"] == report.calls
