"""DABench as an evaluation set: import from the shared copy, answer, score by its own rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.csv_stub import KEY_ENV, setup
from tests.stub_server import StubServer
from tests.stub_wire import StubReply, last_user_text
from workbench.cli.main import main
from workbench.core.csv_agent.pipeline import BEST_OF_N, accepted_questions, stage_scores
from workbench.core.experiments import load_experiment_config, run_experiment
from workbench.core.store import Store

DABENCH = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dabench"
pytestmark = pytest.mark.skipif(
    not (DABENCH / "da-dev-questions.jsonl").is_file(),
    reason="../shared/datasets/dabench is absent (CC BY-NC 4.0: never copied into the package)",
)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-csv-dabench-key-1234")


def test_cli_import_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "wb.db")
    assert main(["--db", db, "import", "--format", "dabench", str(DABENCH)]) == 0
    assert "imported 257 questions on 52 tables" in capsys.readouterr().out
    assert main(["--db", db, "import", "--format", "dabench", str(DABENCH)]) == 0
    assert "already imported" in capsys.readouterr().out
    with Store(db) as store:
        assert store.scalar("SELECT COUNT(*) FROM tables") == 52
        qs = accepted_questions(store, 1)
        assert len(qs) == 257
        first = next(q for q in qs if q["question_id"] == "dabench-0")
        assert first["question"]["format"][0]["name"] == "mean_fare"
        assert first["question"]["answers"] == {"mean_fare": "34.65"}
        assert first["question"]["dag"] == []


async def test_gold_answers_score_100_percent_through_a_run(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, settings, registry = setup(tmp_path, stub_server, "openai")
    assert main(["--db", str(store.path), "import", "--format", "dabench", str(DABENCH)]) == 0
    gold = {}
    for q in accepted_questions(store, 1):
        gold[q["question"]["question"]] = q["question"]["answers"]

    def responder(path: str, body: dict[str, Any]) -> StubReply:
        user = last_user_text(body)
        text = user.split("Question: ", 1)[1].split("\nAnswer format:", 1)[0]
        answers = next(
            a for qtext, a in gold.items() if text.startswith(qtext + "\n") or text == qtext
        )
        return StubReply(text=" ".join(f"@{k}[{v}]" for k, v in answers.items()))

    stub_server.responder = responder
    config = load_experiment_config(
        {
            "kind": "csv_agent",
            "teacher": "stub:m",
            "questions_run": 1,
            "run_stages": ["csv_best_of_n"],
            "samples": 1,
            "temperature": 0.2,
        }
    )
    run_id = await run_experiment(store, registry, settings, config, engine=engine)
    await registry.aclose()
    scores = stage_scores(store, run_id, BEST_OF_N)
    assert scores.conversations == 257 and stub_server.paid == 257
    from workbench.core.csv_agent.pipeline import verified

    wrong = [(v["question_id"], v["subs"]) for v in verified(store, run_id) if not v["correct"]]
    assert (scores.scores.abq, scores.scores.pasq, scores.scores.uasq) == (1.0, 1.0, 1.0), wrong
