"""CSV-agent exports: record shapes for each trainer, hints, rewards on exported truths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.csv_stub import CONFIG, KEY_ENV, SUNDAY_TIP, setup
from tests.stub_server import StubServer
from workbench.cli.main import main
from workbench.core.csv_agent import verify
from workbench.core.csv_agent.export import FORMATS, export_run, iter_records
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.store import Store


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-csv-export-key-424242")


async def _run(tmp_path: Path, stub: StubServer) -> tuple[Store, int]:
    engine, store, settings, registry = setup(tmp_path, stub, "openai")
    run_id = await run_experiment(
        store, registry, settings, load_experiment_config(CONFIG), engine=engine
    )
    await registry.aclose()
    return store, run_id


def check_openai_record(record: dict[str, Any]) -> None:
    """The fine-tuning record's rules: string arguments, paired ids, a legal role order."""
    assert set(record) == {"messages", "tools", "parallel_tool_calls"}
    assert record["parallel_tool_calls"] is False
    for tool in record["tools"]:
        assert tool["type"] == "function" and set(tool["function"]) == {
            "name",
            "description",
            "parameters",
        }
    messages = record["messages"]
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    assert messages[-1]["role"] == "assistant" and "tool_calls" not in messages[-1]
    open_ids: list[str] = []
    for m in messages[2:]:
        assert m["role"] in ("assistant", "tool")
        assert isinstance(m["content"], str)
        if m["role"] == "assistant":
            assert not open_ids, "an assistant turn before every tool call was answered"
            for tc in m.get("tool_calls", []):
                assert tc["type"] == "function" and isinstance(tc["function"]["arguments"], str)
                json.loads(tc["function"]["arguments"])
                open_ids.append(tc["id"])
        else:
            assert m["tool_call_id"] == open_ids.pop(0)
    assert not open_ids


async def test_every_format_has_its_shape(tmp_path: Path, stub_server: StubServer) -> None:
    store, run_id = await _run(tmp_path, stub_server)
    records = {fmt: list(iter_records(store, run_id, fmt)) for fmt in FORMATS}

    assert len(records["sft-openai"]) == 8  # per question: the hinted conversation, 3 attempts
    for record in records["sft-openai"]:
        check_openai_record(record)
        assert all("Hint:" not in m["content"] for m in record["messages"])
        assert all("weight" not in m for m in record["messages"])
    tool_text = [m["content"] for m in records["sft-openai"][0]["messages"] if m["role"] == "tool"]
    shown = {r["shown"] for r in store.query("SELECT shown FROM tool_calls")}
    assert tool_text and all(t in shown for t in tool_text)  # the truncated text the model saw

    for record in records["sft-trl"]:
        assert set(record) == {"messages", "tools"}
        for m in record["messages"]:
            for tc in m.get("tool_calls", []):
                assert isinstance(tc["function"]["arguments"], dict)
            if m["role"] == "tool":
                assert m["name"] in ("filter", "compute", "describe")

    rl, _ = records["rl-trl"]
    assert [m["role"] for m in rl["prompt"]] == ["system", "user"] and "Hint:" not in rl["prompt"][
        1
    ]["content"]
    assert (
        rl["answers"] == {"mean_tip": SUNDAY_TIP}
        and rl["table_name"] == "tips"
        and len(rl["dag"]) == 2
    )
    right, wrong, missing = f"@mean_tip[{SUNDAY_TIP}]", "@mean_tip[0.5]", "I give up."
    rewards = verify.trl_reward([right, wrong, missing], [rl["answers"]] * 3, [rl["format"]] * 3)
    assert rewards == [1.0, 0.0, 0.0]

    verl, _ = records["rl-verl"]
    assert verl["data_source"] == "workbench-csv" and verl["ability"] == "table-qa"
    truth = verl["reward_model"]["ground_truth"]
    assert isinstance(truth, str) and set(json.loads(truth)) == {"answers", "format", "dag"}
    assert [
        verify.verl_compute_score("workbench-csv", t, truth) for t in (right, wrong, missing)
    ] == [1.0, 0.0, 0.0]

    orl, _ = records["rl-openrlhf"]
    assert set(orl) == {"prompt", "answers"} and isinstance(orl["prompt"], str)
    prompt = orl["prompt"]
    out = verify.openrlhf_reward_func(
        [prompt + t for t in (right, wrong, missing)], [prompt] * 3, [orl["answers"]] * 3
    )
    assert out["rewards"] == [1.0, 0.0, 0.0]


async def test_keep_hint_keeps_it_with_weight_zero(tmp_path: Path, stub_server: StubServer) -> None:
    store, run_id = await _run(tmp_path, stub_server)
    hinted = [
        r for r in iter_records(store, run_id, "sft-openai", keep_hint=True)
        if "Hint:" in r["messages"][1]["content"]
    ]  # fmt: skip
    assert len(hinted) == 2
    assistants = [m for m in hinted[0]["messages"] if m["role"] == "assistant"]
    assert assistants and all(m["weight"] == 0 for m in assistants)


async def test_files_parquet_and_the_cli(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    store, run_id = await _run(tmp_path, stub_server)
    path = tmp_path / "verl.parquet"
    assert export_run(store, run_id, "rl-verl", path) == 2
    table = pq.read_table(path)
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    out = tmp_path / "sft.jsonl"
    db = str(store.path)
    store.close()
    assert (
        main(["--db", db, "export", str(run_id), "--format", "sft-openai", "--out", str(out)]) == 0
    )
    assert "wrote 8 records" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert len(lines) == 8 and "sk-csv-export-key-424242" not in out.read_text()
    for line in lines:
        check_openai_record(json.loads(line))


async def test_dataset_shapes_save_to_disk(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import datasets

    store, run_id = await _run(tmp_path, stub_server)
    db = str(store.path)
    store.close()
    for shape, n in (("sft-openai", 8), ("sft-trl", 8), ("rl-trl", 2), ("rl-verl", 2)):
        out = tmp_path / f"ds-{shape}"
        args = ["--db", db, "export", str(run_id), "--format", "dataset", "--shape", shape]
        assert main([*args, "--out", str(out)]) == 0
        ds = datasets.load_from_disk(str(out))
        assert len(ds) == n
        if shape.startswith("sft"):
            first = ds[0]["messages"]
            assert [m["role"] for m in first[:2]] == ["system", "user"]
            calls = [tc for m in first for tc in (m.get("tool_calls") or [])]
            assert calls and all(
                isinstance(json.loads(tc["function"]["arguments"]), dict) for tc in calls
            )
    capsys.readouterr()
