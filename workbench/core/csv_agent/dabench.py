"""DABench (InfiAgent-DABench dev set) as an evaluation set for the CSV stages.

``import_dabench(store, DIR)`` reads ``da-dev-questions.jsonl``, ``da-dev-labels.jsonl``
and ``da-dev-tables/``: each table is imported by sha256, each labelled question is
stored as an accepted ``csv_question`` of an import run (answers from the labels,
the format's names parsed from its ``@name[...]`` text, type ``auto`` so scoring is
the benchmark's own rule, no DAG).  A ``csv_agent`` run with ``questions_run`` set
to that run's id then answers them (``csv_best_of_n``, n=1, temperature 0.2, no hint).

The data is CC BY-NC 4.0: it is read from where it lies, never copied into the package.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.csv_agent.pipeline import QUESTION
from workbench.core.csv_agent.tables import import_table
from workbench.core.errors import InputError
from workbench.core.status import RunStatus, SampleStatus
from workbench.core.store import Store, dumps, now_iso

QUESTIONS = "da-dev-questions.jsonl"
LABELS = "da-dev-labels.jsonl"
TABLES = "da-dev-tables"
_NAME = re.compile(r"@(\w+)\[")


@dataclass(frozen=True)
class DabenchImport:
    run_id: int
    n_questions: int
    n_tables: int
    created: bool

    def summary(self) -> str:
        verb = "imported" if self.created else "already imported"
        return (
            f"dabench: {verb} {self.n_questions} questions on {self.n_tables} tables "
            f"(questions_run = {self.run_id})"
        )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {n}: not JSON ({exc.msg})") from None
    return rows


def import_dabench(store: Store, folder: str | Path, *, name: str = "dabench") -> DabenchImport:
    """Import the dev set's tables and labelled questions (a no-op when already imported)."""
    root = Path(folder)
    existing = store.query_one(
        "SELECT id FROM runs WHERE kind = 'csv_agent' AND name = ? ORDER BY id LIMIT 1", (name,)
    )
    questions = _jsonl(root / QUESTIONS)
    labels = {int(r["id"]): r["common_answers"] for r in _jsonl(root / LABELS)}
    files = sorted({str(q["file_name"]) for q in questions if int(q["id"]) in labels})
    for file in files:
        if not (root / TABLES / file).is_file():
            raise InputError(f"{root / TABLES / file}: no such file")
    if existing is not None:
        return DabenchImport(int(existing["id"]), len(labels), len(files), created=False)
    tables = {file: import_table(store, root / TABLES / file).table for file in files}
    config = {"kind": "csv_agent", "source": "dabench", "folder": str(root.resolve())}
    run_id = store.create_run(name, "csv_agent", config)
    now = now_iso()
    n = 0
    with store.transaction() as conn:
        for q in questions:
            qid = int(q["id"])
            if qid not in labels:
                continue
            table = tables[str(q["file_name"])]
            answers = {str(k): v for k, v in labels[qid]}
            names = list(dict.fromkeys(_NAME.findall(str(q.get("format", ""))))) or list(answers)
            question: dict[str, Any] = {
                "question": str(q["question"]),
                "constraints": str(q.get("constraints", "")),
                "format": [
                    {"name": nm, "type": "auto", "description": str(q.get("format", ""))}
                    if i == 0
                    else {"name": nm, "type": "auto"}
                    for i, nm in enumerate(names)
                ],
                "hint": "",
                "dag": [],
                "answers": answers,
                "concepts": list(q.get("concepts", [])),
                "level": q.get("level")
                if q.get("level") in ("easy", "medium", "hard")
                else "medium",
            }
            payload: dict[str, Any] = {
                "question_id": f"dabench-{qid}",
                "table_sha256": table.sha256,
                "table_name": table.name,
                "status": "accepted",
                "reason": None,
                "flags": [],
                "question": question,
                "source": "dabench",
            }
            conn.execute(
                "INSERT INTO samples(run_id, stage, item_key, sample_index, role, status, output,"
                " payload, created_at, updated_at) VALUES (?, ?, ?, 0, 'dataset', ?, ?, ?, ?, ?)",
                (run_id, QUESTION, f"{QUESTION}/dabench-{qid}/0", SampleStatus.DONE,
                 json.dumps(q, ensure_ascii=False), dumps(payload), now, now),
            )  # fmt: skip
            n += 1
    store.set_run_status(run_id, RunStatus.DONE)
    return DabenchImport(run_id, n, len(files), created=True)
