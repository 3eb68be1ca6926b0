"""Analysis queries: the only analysis code that reads or writes the store.

Each loader returns plain rows (``GradedSample`` and friends, defined with the
pure functions in ``rates.py``) that every surface computes its numbers from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from workbench.core.analysis.metrics import RunMetrics, compute_metrics
from workbench.core.analysis.rates import SOLVER_ROLE, DifficultyRow, GradedSample
from workbench.core.grading.grader import verdict
from workbench.core.payloads import TracePayload
from workbench.core.status import SampleStatus
from workbench.core.store import Store, loads, now_iso

__all__ = [
    "load_bins",
    "load_call_costs",
    "load_outcomes",
    "load_straight_shot",
    "run_metrics",
    "write_difficulty",
]


def load_outcomes(
    store: Store,
    run_id: int,
    *,
    stage: str | None = None,
    role: str | None = None,
    model: str | None = None,
    grader: str | None = None,
    statuses: Sequence[SampleStatus] = (SampleStatus.DONE,),
) -> list[GradedSample]:
    """Samples of a run joined with their grade (``grader``, or the newest grade).

    The payload is the parent sample's payload overlaid with the sample's own,
    so a continuation sees the error type / step of the perturbation it came from.
    """
    where = ["s.run_id = ?"]
    params: list[Any] = [run_id]
    for col, value in (("s.stage", stage), ("s.role", role), ("s.model", model)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    where.append(f"s.status IN ({','.join('?' * len(statuses))})")
    params.extend(statuses)
    grade_filter = "g2.grader = ?" if grader is not None else "1"
    grade_params: list[Any] = [grader] if grader is not None else []
    rows = store.query(
        f"""
        SELECT s.id, s.run_id, s.stage, s.problem_id, s.model, s.sample_index, s.payload,
               par.payload AS parent_payload, g.correct, g.status AS grade_status
        FROM samples s
        LEFT JOIN samples par ON par.id = s.parent_id
        LEFT JOIN grades g ON g.id = (
            SELECT g2.id FROM grades g2
            WHERE g2.sample_id = s.id AND {grade_filter}
            ORDER BY g2.id DESC LIMIT 1)
        WHERE {" AND ".join(where)}
        ORDER BY s.id
        """,
        [*grade_params, *params],
    )
    return [
        GradedSample(
            sample_id=r["id"],
            run_id=r["run_id"],
            stage=r["stage"],
            problem_id=r["problem_id"],
            model=r["model"],
            sample_index=r["sample_index"],
            correct=verdict(r["correct"], r["grade_status"]),
            grade_status=r["grade_status"],
            payload=cast(
                TracePayload, {**loads(r["parent_payload"], {}), **loads(r["payload"], {})}
            ),
        )
        for r in rows
    ]


def run_metrics(store: Store, run_id: int) -> RunMetrics:
    """Every metric of a run (``metrics.METRICS``), from its finished samples' newest grades."""
    run = store.get_run(run_id)
    return compute_metrics(run_id, str(run["kind"]), load_outcomes(store, run_id))


def load_straight_shot(
    store: Store, model: str, *, run_id: int | None = None
) -> list[GradedSample]:
    """The model's straight-shot (solver) samples from calibration run ``run_id``, or from
    every calibration run in the store; a missing ``run_id`` is a StoreError."""
    if run_id is not None:
        store.get_run(run_id)
        runs = [run_id]
    else:
        runs = [
            r["id"]
            for r in store.query(
                "SELECT DISTINCT s.run_id AS id FROM samples s JOIN runs r ON r.id = s.run_id"
                " WHERE r.kind = 'calibration' AND s.model = ? AND s.role = ? ORDER BY s.run_id",
                (model, SOLVER_ROLE),
            )
        ]
    outs: list[GradedSample] = []
    for rid in runs:
        outs += load_outcomes(store, rid, model=model, role=SOLVER_ROLE)
    return outs


def load_bins(store: Store, model: str) -> dict[str, str]:
    """problem id -> difficulty bin for ``model`` (from the ``difficulty`` table)."""
    rows = store.query("SELECT problem_id, bin FROM difficulty WHERE model = ?", (model,))
    return {r["problem_id"]: r["bin"] for r in rows}


def load_call_costs(store: Store, run_id: int) -> dict[str, tuple[float, int, int]]:
    """model ref -> (dollars, priced calls, unpriced calls) over a run's non-cached calls."""
    rows = store.query(
        """
        SELECT provider || ':' || model AS ref,
               COALESCE(SUM(cost_usd), 0.0) AS cost,
               COALESCE(SUM(cost_usd IS NOT NULL), 0) AS priced,
               COALESCE(SUM(cost_usd IS NULL AND status = 'ok'), 0) AS unpriced
        FROM calls WHERE run_id = ? AND cache_hit = 0 GROUP BY ref
        """,
        (run_id,),
    )
    return {r["ref"]: (float(r["cost"]), int(r["priced"]), int(r["unpriced"])) for r in rows}


def write_difficulty(store: Store, rows: Iterable[DifficultyRow], *, run_id: int | None) -> int:
    """Upsert rows into the ``difficulty`` table (one per problem x model); returns the count."""
    stamp = now_iso()
    n = 0
    with store.transaction() as conn:
        for r in rows:
            conn.execute(
                "INSERT INTO difficulty(problem_id, model, n, n_correct, solve_rate, bin, run_id,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(problem_id, model) DO UPDATE"
                " SET n=excluded.n, n_correct=excluded.n_correct, solve_rate=excluded.solve_rate,"
                " bin=excluded.bin, run_id=excluded.run_id, updated_at=excluded.updated_at",
                (r.problem_id, r.model, r.n, r.n_correct, r.solve_rate, r.bin, run_id, stamp),
            )
            n += 1
    return n
