"""Published model traces recorded as a finished calibration run, without model calls.

OpenAI's GSM8K release ships GPT-3 solutions (6B and 175B, fine-tuned and
verifier-selected) for every test problem.  The bundled subset
(``data/samples/gsm8k-gpt3-solutions-200.jsonl``) covers the 200 sample problems.
Importing it writes one ``samples`` row per trace into a ``calibration`` run, with
the item keys a real calibration run would use and no ``calls`` rows (nothing was
sent, nothing cost anything), then runs the calibration post-processing: the real
grader and the difficulty bins.  So Runs, Traces, Plots and the Problems screen's
solve-rate columns show real results in an offline workspace.

Each sample's payload keeps the dataset's own ``is_correct`` flag, so the grader
can be checked against it (``TraceImport.agreement``).  Importing again adds only
what is missing and re-grades only what has no grade: it never duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.core.engine import item_key
from workbench.core.errors import InputError
from workbench.core.experiments.calibration import (
    SOLVE,
    SOLVER_ROLE,
    CalibrationConfig,
    CalibrationExperiment,
)
from workbench.core.grading import GRADER_NAME
from workbench.core.library import ProblemSelection
from workbench.core.library.datasets import SAMPLES_DIR
from workbench.core.payloads import SolvePayload
from workbench.core.settings import Settings
from workbench.core.status import RunStatus, SampleStatus
from workbench.core.store import Store, dumps, now_iso


@dataclass(frozen=True)
class TraceSet:
    """A bundled file of published traces and how it maps onto a calibration run."""

    name: str
    filename: str
    dataset: str  # the bundled problems the traces answer
    run_name: str
    origin: str  # where the traces come from (stored on every sample)
    models: dict[str, tuple[str, ...]]  # model ref -> source fields, one per sample index


GSM8K_GPT3 = TraceSet(
    name="gsm8k-gpt3",
    filename="gsm8k-gpt3-solutions-200.jsonl",
    dataset="gsm8k-test-200",
    run_name="GPT-3 on GSM8K (published solutions, imported)",
    origin="openai/grade-school-math example_model_solutions.jsonl",
    models={
        "gpt3:6b": ("6b_finetuning", "6b_verification"),
        "gpt3:175b": ("175b_finetuning", "175b_verification"),
    },
)

TRACE_SETS: dict[str, TraceSet] = {GSM8K_GPT3.name: GSM8K_GPT3}


@dataclass(frozen=True)
class TraceImport:
    """What an import did, and how the grader compares with the dataset's own flags."""

    run_id: int
    created: bool  # False: the run was already there
    n_added: int  # samples written by this call
    n_samples: int  # samples in the run
    n_correct: int  # graded correct by the workbench grader
    n_compared: int  # samples with both a grade and a dataset flag
    n_agree: int  # ... where the two agree

    @property
    def agreement(self) -> float | None:
        return self.n_agree / self.n_compared if self.n_compared else None

    def summary(self) -> str:
        rate = f"{self.agreement:.1%}" if self.agreement is not None else "n/a"
        verb = "recorded" if self.created else "checked"
        return (
            f"{verb} run {self.run_id}: {self.n_samples} traces ({self.n_added} new), "
            f"{self.n_correct} graded correct; grader agrees with the dataset's flags on "
            f"{self.n_agree}/{self.n_compared} ({rate})"
        )


def trace_set(name: str) -> TraceSet:
    found = TRACE_SETS.get(name)
    if found is None:
        raise InputError(f"--traces {name}: unknown trace set (one of: {', '.join(TRACE_SETS)})")
    return found


def load_rows(traces: TraceSet) -> list[dict[str, Any]]:
    """The bundled rows: problem_id, test_index, gold, solutions{field: {is_correct, solution}}."""
    path = SAMPLES_DIR / traces.filename
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: row {n}: invalid JSON ({exc.msg})") from None
            rows.append(row)
    return rows


def run_config(traces: TraceSet) -> CalibrationConfig:
    """The calibration config the imported run is filed under (pinned: it used no prompt)."""
    first_fields = next(iter(traces.models.values()))
    return CalibrationConfig(
        name=traces.run_name,
        solvers=tuple(traces.models),
        samples=len(first_fields),
        problems=ProblemSelection(dataset=traces.dataset),
        prompt_pins={},
    )


def _sample_rows(
    traces: TraceSet, rows: list[dict[str, Any]], run_id: int
) -> Iterator[dict[str, Any]]:
    stamp = now_iso()
    for row in rows:
        for ref, fields in traces.models.items():
            for index, field in enumerate(fields):
                trace = row["solutions"][field]
                yield {
                    "run_id": run_id,
                    "stage": SOLVE,
                    "item_key": item_key(SOLVE, row["problem_id"], index, ref),
                    "problem_id": row["problem_id"],
                    "sample_index": index,
                    "role": SOLVER_ROLE,
                    "model": ref,
                    "status": SampleStatus.DONE,
                    "output": trace["solution"],
                    "payload": dumps(
                        SolvePayload(
                            imported=traces.origin,
                            source_field=field,
                            source_is_correct=bool(trace["is_correct"]),
                            test_index=row["test_index"],
                        )
                    ),
                    "created_at": stamp,
                    "updated_at": stamp,
                }


def _check_problems(store: Store, traces: TraceSet, rows: list[dict[str, Any]]) -> None:
    have = {
        r[0]
        for r in store.conn.execute("SELECT id FROM problems WHERE dataset_id=?", (traces.dataset,))
    }
    missing = [r["problem_id"] for r in rows if r["problem_id"] not in have]
    if missing:
        raise InputError(
            f"{traces.filename}: problem {missing[0]} (and {len(missing) - 1} more) not in the "
            f"workspace; import the samples first (workbench import --sample)"
        )


def import_traces(
    store: Store, name: str = GSM8K_GPT3.name, *, settings: Settings | None = None
) -> TraceImport:
    """Record the trace set ``name`` as a finished calibration run; grade and bin it."""
    traces = trace_set(name)
    rows = load_rows(traces)
    _check_problems(store, traces, rows)
    config = run_config(traces)
    existing = store.scalar(
        "SELECT id FROM runs WHERE kind=? AND name=? ORDER BY id LIMIT 1",
        (config.kind, traces.run_name),
    )
    created = existing is None
    run_id = (
        store.create_run(traces.run_name, config.kind, config.model_dump(mode="json"))
        if existing is None
        else int(existing)
    )
    before = int(store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)))
    with store.transaction() as conn:
        for sample in _sample_rows(traces, rows, run_id):
            columns = ",".join(sample)
            conn.execute(
                f"INSERT OR IGNORE INTO samples ({columns}) VALUES ({','.join('?' * len(sample))})",
                list(sample.values()),
            )
    n_samples = int(store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)))
    experiment = CalibrationExperiment(config)
    experiment.use_settings(settings or Settings())
    experiment.after_stage(SOLVE, store, run_id)  # the real grader, then difficulty bins
    if created:
        store.set_run_status(run_id, RunStatus.RUNNING)  # records started_at
        store.set_run_status(run_id, RunStatus.DONE)
    return _result(store, run_id, created, n_samples - before, n_samples)


def _result(store: Store, run_id: int, created: bool, n_added: int, n_samples: int) -> TraceImport:
    row = store.query_one(
        """
        SELECT COALESCE(SUM(g.correct = 1), 0) AS correct,
               COUNT(g.correct) AS compared,
               COALESCE(SUM(g.correct = json_extract(s.payload, '$.source_is_correct')), 0)
                   AS agree
        FROM samples s JOIN grades g ON g.sample_id = s.id AND g.grader = ?
        WHERE s.run_id = ? AND json_extract(s.payload, '$.source_is_correct') IS NOT NULL
        """,
        (GRADER_NAME, run_id),
    )
    assert row is not None
    return TraceImport(
        run_id, created, n_added, n_samples, int(row["correct"]), row["compared"], row["agree"]
    )
