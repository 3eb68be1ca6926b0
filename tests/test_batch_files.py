"""Batch files for self-hosted GPUs: export shards, run them (a ``vllm run-batch`` stand-in),
ingest the output: idempotent, matched by custom_id, bad lines named one by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine_fakes import add_toy_problems
from tests.stub_batch import ReplySource, run_batch_file
from tests.stub_server import StubServer
from workbench.cli.main import main
from workbench.core.batch import CUSTOM_ID_RE, custom_id, export_stage, ingest_files
from workbench.core.engine import Engine, WorkItem, item_key
from workbench.core.errors import ConfigError
from workbench.core.providers import Message, ModelRequest, ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store


def setup(tmp_path: Path, base_url: str = "http://127.0.0.1:9/v1") -> tuple[Engine, Store]:
    settings = Settings(
        providers={
            "gpu": ProviderSettings(kind="openai-compatible", base_url=base_url, timeout_s=5.0)
        },
        pricing={"gpu:m": Price(input=1.0, output=2.0)},
    )
    store = Store(tmp_path / "wb.db")
    return Engine(store, ProviderRegistry(settings), settings), store


def work(n: int, *, model: str = "gpu:m", stage: str = "solve", **req: Any) -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key(stage, f"p{i}"),
            stage=stage,
            role="solver",
            model_ref=model,
            request=ModelRequest(
                model=model.split(":", 1)[1], messages=(Message("user", f"question {i}"),), **req
            ),
            problem_id=None,
        )
        for i in range(n)
    ]


def outputs(src: ReplySource, out_dir: Path, **kw: Any) -> list[Path]:
    """Run every shard of the manifest; return the output files."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    paths = []
    for shard in manifest["shards"]:
        out = out_dir / f"{shard['file']}.out"  # beside the manifest, as a node writes it
        run_batch_file(src, out_dir / shard["file"], out, **kw)
        paths.append(out)
    return paths


def test_custom_ids_are_short_safe_and_per_attempt() -> None:
    a = custom_id(1, "solve/gsm8k/test/0001/3", 1)
    assert CUSTOM_ID_RE.match(a) and len(a) == 32 and a.startswith("wb")
    assert a == custom_id(1, "solve/gsm8k/test/0001/3", 1)
    assert (
        a
        != custom_id(1, "solve/gsm8k/test/0001/3", 2)
        != custom_id(2, "solve/gsm8k/test/0001/3", 1)
    )


def test_export_writes_valid_openai_batch_lines_and_a_manifest(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    items = work(5) + work(2, stage="other")
    report = export_stage(engine, store, run_id, "solve", items, tmp_path / "out", shard_lines=2)
    assert [s.lines for s in report.shards] == [2, 2, 1]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and manifest["stage"] == "solve"
    assert [s["lines"] for s in manifest["shards"]] == [2, 2, 1]
    ids = set()
    for shard in manifest["shards"]:
        lines = (tmp_path / "out" / shard["file"]).read_text().splitlines()
        assert len(lines) == shard["lines"]
        for text in lines:
            line = json.loads(text)
            assert set(line) == {"custom_id", "method", "url", "body"}
            assert CUSTOM_ID_RE.match(line["custom_id"]) and len(line["custom_id"]) <= 64
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
            assert line["body"]["model"] == "m" and line["body"]["messages"][-1]["role"] == "user"
            ids.add(line["custom_id"])
    assert len(ids) == 5
    rows = store.query("SELECT provider, status, n_items FROM batches WHERE run_id=?", (run_id,))
    assert {(r["provider"], r["status"]) for r in rows} == {("file", "submitted")}
    assert store.scalar("SELECT COUNT(*) FROM batch_items WHERE state='out'") == 5
    # exporting again writes nothing: every item is out
    again = export_stage(engine, store, run_id, "solve", items, tmp_path / "out")
    assert again.shards == () and again.skipped == 5


def test_raw_continuation_goes_to_completions(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    items = work(1, prefix="Step 1: 2 + 2 = 4.")
    report = export_stage(engine, store, run_id, "solve", items, tmp_path / "out")
    line = json.loads((tmp_path / "out" / report.shards[0].file).read_text())
    assert line["url"] == "/v1/completions" and line["body"]["prompt"].endswith("2 + 2 = 4.")


async def test_items_out_in_files_are_not_sent_by_a_resume(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store = setup(tmp_path, stub_server.openai_base_url)
    run_id = store.create_run("t", "test", {})
    items = work(4)
    export_stage(engine, store, run_id, "solve", items[:3], tmp_path / "out")
    await engine.run_items(run_id, items)
    assert stub_server.total == 1  # only the item that was not exported
    await engine.providers.aclose()


def test_ingest_records_every_item_once_at_the_batch_price(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    report = export_stage(engine, store, run_id, "solve", work(6), tmp_path / "out", shard_lines=4)
    src = ReplySource()
    paths = outputs(src, tmp_path / "out")  # shuffled: matched by custom_id, not line order
    first = ingest_files(engine, store, run_id, paths)
    assert (first.lines, first.recorded, first.bad) == (6, 6, 0)
    samples = store.samples(run_id)
    assert len(samples) == 6 and {s["status"] for s in samples} == {"done"}
    for s in samples:
        assert s["output"].startswith("You asked: question " + s["item_key"].split("/")[1][1:])
    calls = store.query("SELECT * FROM calls WHERE run_id=?", (run_id,))
    for c in calls:
        sync = (c["input_tokens"] * 1.0 + c["output_tokens"] * 2.0) / 1e6
        assert c["cost_usd"] == pytest.approx(sync * 0.5)
        assert json.loads(c["sent_params"])["batch"] in {s.batch for s in report.shards}
        assert c["latency_ms"] >= 0 and c["status"] == "ok"
    assert set(src.billed.values()) == {1}
    again = ingest_files(engine, store, run_id, paths)
    assert (again.recorded, again.skipped, again.bad) == (0, 6, 0)
    assert store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (run_id,)) == 6
    statuses = store.query("SELECT DISTINCT status FROM batches WHERE run_id=?", (run_id,))
    assert statuses == [{"status": "ingested"}]


def test_partial_output_then_the_rest(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    export_stage(engine, store, run_id, "solve", work(5), tmp_path / "out")
    src = ReplySource()
    [path] = outputs(src, tmp_path / "out", only=2, shuffle=False)
    assert ingest_files(engine, store, run_id, [path]).recorded == 2
    assert store.scalar("SELECT status FROM batches") == "submitted"  # three still out
    [path] = outputs(src, tmp_path / "out", shuffle=False)
    report = ingest_files(engine, store, run_id, [path])
    assert (report.recorded, report.skipped) == (3, 2)
    assert store.scalar("SELECT status FROM batches") == "ingested"
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE status='done'") == 5


def test_failed_lines_go_out_again_with_a_new_custom_id(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    items = work(3)
    export_stage(engine, store, run_id, "solve", items, tmp_path / "out")
    first_ids = [r["custom_id"] for r in store.query("SELECT custom_id FROM batch_items")]
    src = ReplySource()
    [path] = outputs(src, tmp_path / "out", fail={first_ids[0]})
    report = ingest_files(engine, store, run_id, [path])
    assert (report.recorded, report.requeued) == (2, 1)
    second = export_stage(engine, store, run_id, "solve", items, tmp_path / "out2")
    assert [s.lines for s in second.shards] == [1]
    line = json.loads((tmp_path / "out2" / second.shards[0].file).read_text())
    assert line["custom_id"] not in first_ids
    assert (
        store.scalar("SELECT attempt FROM batch_items WHERE custom_id=?", (line["custom_id"],)) == 2
    )
    [path] = outputs(src, tmp_path / "out2")
    assert ingest_files(engine, store, run_id, [path]).recorded == 1
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE status='done'") == 3


def test_bad_input_is_one_line_each_and_the_rest_is_ingested(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    other = store.create_run("o", "test", {})
    export_stage(engine, store, run_id, "solve", work(4), tmp_path / "out")
    export_stage(engine, store, other, "solve", work(1), tmp_path / "other")
    src = ReplySource()
    [path] = outputs(src, tmp_path / "out", shuffle=False)
    [foreign] = outputs(src, tmp_path / "other")
    lines = path.read_text().splitlines()
    broken = json.loads(lines[2])
    broken["response"]["body"] = {"choices": "not a list", "usage": None}
    mixed = tmp_path / "out" / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            [
                lines[0],
                '{"custom_id": "wbX", "response": {"truncated',  # not JSON
                json.dumps({"response": {}}),  # no custom_id
                foreign.read_text().strip(),  # another run's id
                json.dumps(broken),  # a body the adapter cannot parse
                lines[1],
                lines[3],
            ]
        )
        + "\n"
    )
    report = ingest_files(engine, store, run_id, [mixed, foreign])
    assert report.recorded == 3
    text = "\n".join(report.problems)
    assert f"{mixed}:2: not JSON" in text
    assert f"{mixed}:3: no custom_id" in text
    assert f"{mixed}:4: custom_id" in text and f"belongs to run {other}" in text
    assert f"{mixed}:5: gpu cannot parse the body" in text
    assert f"{foreign}: its manifest is for run {other}, not run {run_id}" in text
    assert len(report.problems) == 5
    assert (
        store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=? AND status='done'", (run_id,))
        == 3
    )
    assert store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (other,)) == 0


def test_cached_items_are_recorded_not_exported(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    first = store.create_run("a", "test", {})
    export_stage(engine, store, first, "solve", work(3), tmp_path / "a")
    [path] = outputs(ReplySource(), tmp_path / "a")
    ingest_files(engine, store, first, [path])
    second = store.create_run("b", "test", {})
    report = export_stage(engine, store, second, "solve", work(4), tmp_path / "b")
    assert report.cached == 3 and [s.lines for s in report.shards] == [1]
    hits = store.query("SELECT cost_usd FROM calls WHERE run_id=? AND cache_hit=1", (second,))
    assert [h["cost_usd"] for h in hits] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("model", ["local:gemma-3-270m", "anthropic:claude-sonnet-4-5"])
def test_a_provider_without_a_file_path_fails_before_writing(tmp_path: Path, model: str) -> None:
    engine, store = setup(tmp_path)
    run_id = store.create_run("t", "test", {})
    with pytest.raises(ConfigError, match=r"stage solve: .*cannot run from batch files"):
        export_stage(engine, store, run_id, "solve", work(2, model=model), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.scalar("SELECT COUNT(*) FROM batches") == 0


def test_cli_export_then_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.core.experiments.runner import load_experiment_config, pin_prompts

    with Store(tmp_path / "wb.db") as store:
        add_toy_problems(store, 4)
        config = pin_prompts(
            store,
            load_experiment_config(
                {
                    "kind": "calibration",
                    "models": ["gpu:m"],
                    "samples": 2,
                    "problems": {"dataset": "toy"},
                }
            ),
        )
        run_id = store.create_run("cal", "calibration", config.model_dump(mode="json"))
    (tmp_path / "workbench.toml").write_text(
        '[providers.gpu]\nkind = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    base = ["--db", str(tmp_path / "wb.db"), "--config", str(tmp_path / "workbench.toml")]
    out = tmp_path / "shards"
    assert main([*base, "batch", "export", str(run_id), "--stage", "solve", "--out", str(out)]) == 0
    assert "8 line(s) in 1 shard(s)" in capsys.readouterr().out
    paths = outputs(ReplySource(), out)
    assert main([*base, "batch", "ingest", str(run_id), *map(str, paths)]) == 0
    assert "8 recorded" in capsys.readouterr().out
    assert main([*base, "batch", "ingest", str(run_id), *map(str, paths)]) == 0
    again = capsys.readouterr().out
    assert "0 recorded" in again and "8 already recorded" in again
    assert main([*base, "batch", "list", str(run_id)]) == 0
    assert "ingested" in capsys.readouterr().out
    assert main([*base, "batch", "export", str(run_id), "--stage", "nope", "--out", str(out)]) == 2
    assert "has no stage 'nope'" in capsys.readouterr().err
