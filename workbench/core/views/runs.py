"""The runs list: status, cost, duration and a headline number per run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workbench.core.analysis import RunMetrics, run_metrics
from workbench.core.engine import RunStats, StageProgress
from workbench.core.engine.progress import percentile
from workbench.core.status import RunStatus
from workbench.core.store import Store, shown_run_status


@dataclass(frozen=True)
class RunRow:
    id: int
    name: str
    kind: str
    status: RunStatus
    created_at: str
    duration_s: float | None
    cost_usd: float
    unpriced_calls: int
    n_calls: int
    n_samples: int
    error: str | None
    budget_usd: float | None = None
    cache_hits: int = 0
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def active(self) -> bool:
        return self.status.active


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start:
        return None
    try:
        t0 = datetime.fromisoformat(start)
        t1 = datetime.fromisoformat(end) if end else None
    except ValueError:
        return None
    if t1 is None:
        from datetime import UTC

        t1 = datetime.now(UTC)
    return max(0.0, (t1 - t0).total_seconds())


def list_runs(store: Store, *, limit: int = 500, status: RunStatus | None = None) -> list[RunRow]:
    """Newest first (only ``status`` runs when given), with totals summed from the calls
    (the one source of truth)."""
    where, params = ("WHERE r.status = ?", [status]) if status else ("", [])
    if status is RunStatus.INTERRUPTED:  # shown, never stored: running with no live executor
        where, params = "WHERE r.status IN (?, ?)", [RunStatus.RUNNING, RunStatus.PAUSED]
    rows = store.query(
        f"""
        SELECT r.id, r.name, r.kind, r.status, r.created_at, r.started_at, r.finished_at, r.error,
               r.owner_pid, r.owner_host, r.heartbeat_at,
               r.budget_usd, COALESCE(c.cost, 0.0) AS cost, COALESCE(c.unpriced, 0) AS unpriced,
               COALESCE(c.n, 0) AS n_calls, COALESCE(c.hits, 0) AS hits,
               (SELECT COUNT(*) FROM samples s WHERE s.run_id = r.id) AS n_samples
        FROM runs r
        LEFT JOIN (
            SELECT run_id, SUM(CASE WHEN cache_hit=0 THEN cost_usd END) AS cost,
                   SUM(status='ok' AND cache_hit=0 AND cost_usd IS NULL) AS unpriced,
                   COUNT(*) AS n, SUM(cache_hit) AS hits
            FROM calls WHERE run_id IS NOT NULL GROUP BY run_id
        ) c ON c.run_id = r.id
        {where}
        ORDER BY r.id DESC LIMIT ?
        """,
        [*params, limit],
    )
    return [
        RunRow(
            id=r["id"],
            name=r["name"],
            kind=r["kind"],
            status=shown_run_status(r),
            created_at=r["created_at"],
            duration_s=_seconds(r["started_at"], r["finished_at"]),
            cost_usd=float(r["cost"] or 0.0),
            unpriced_calls=int(r["unpriced"] or 0),
            n_calls=int(r["n_calls"]),
            n_samples=int(r["n_samples"]),
            error=r["error"],
            budget_usd=r["budget_usd"],
            cache_hits=int(r["hits"]),
            started_at=r["started_at"],
            finished_at=r["finished_at"],
        )
        for r in rows
        if status is None or shown_run_status(r) is status
    ]


def run_headline(store: Store, run_id: int, kind: str = "") -> str:
    """The run's headline metric (``analysis.metrics.HEADLINE``), e.g. ``recovery 32.0% (23/72)``.

    Only the samples the metric counts: recovery counts perturbed continuations, not the
    too-easy check, the controls or the judge; a methods run shows its vote, not a pool of
    per-sample solves and vote rows.  ``kind`` is accepted for callers that pass it.
    """
    return run_metrics(store, run_id).headline_text()


def run_result(store: Store, run_id: int) -> RunMetrics:
    """Every metric of a run, for the monitor's result panel and ``workbench analyse``."""
    return run_metrics(store, run_id)


def stats_from_store(store: Store, run_id: int) -> RunStats:
    """A ``RunStats`` rebuilt from the stored calls and samples (finished or earlier runs)."""
    run = store.get_run(run_id)
    totals = store.run_totals(run_id)
    stages = {
        r["stage"]: StageProgress(total=r["n"], done=r["n"] - r["errors"], errors=r["errors"])
        for r in store.query(
            "SELECT stage, COUNT(*) AS n, SUM(status='error') AS errors FROM samples"
            " WHERE run_id=? GROUP BY stage ORDER BY MIN(id)",
            (run_id,),
        )
    }
    latencies = [
        float(r[0])
        for r in store.conn.execute(
            "SELECT latency_ms FROM calls WHERE run_id=? AND cache_hit=0 AND latency_ms IS NOT NULL"
            " ORDER BY id",
            (run_id,),
        )
    ]
    ordered = sorted(latencies)
    errors = {
        str(r[0] or "other"): int(r[1])
        for r in store.conn.execute(
            "SELECT error_kind, COUNT(*) FROM calls WHERE run_id=? AND status='error'"
            " GROUP BY error_kind",
            (run_id,),
        )
    }
    last_error = store.scalar(
        "SELECT error FROM calls WHERE run_id=? AND status='error' ORDER BY id DESC LIMIT 1",
        (run_id,),
    )
    retries = store.scalar(
        "SELECT COALESCE(SUM(attempts - 1), 0) FROM calls WHERE run_id=? AND attempts > 1",
        (run_id,),
    )
    elapsed = _seconds(run["started_at"], run["finished_at"]) or 0.0
    sent = totals.n_calls - totals.n_cache_hits
    return RunStats(
        run_id=run_id,
        elapsed_s=elapsed,
        stages=stages,
        spent_usd=totals.cost_usd,
        unpriced_calls=totals.n_unpriced,
        projected_usd=totals.cost_usd,
        budget_usd=run["budget_usd"],
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        requests_per_s=sent / elapsed if elapsed else 0.0,
        latency_p50_ms=percentile(ordered, 0.5) if ordered else None,
        latency_p95_ms=percentile(ordered, 0.95) if ordered else None,
        latency_max_ms=ordered[-1] if ordered else None,
        recent_latencies_ms=tuple(latencies[-60:]),
        retries=int(retries or 0),
        errors_by_kind=errors,
        last_error=last_error,
        refusals=errors.get("refusal", 0),
        cache_hits=totals.n_cache_hits,
    )


def sample_status_counts(store: Store, run_id: int) -> dict[str, int]:
    """How many of the run's samples stand at each status, most common first."""
    rows = store.query(
        "SELECT status, COUNT(*) AS n FROM samples WHERE run_id=? GROUP BY status "
        "ORDER BY n DESC, status",
        (run_id,),
    )
    return {str(r["status"]): int(r["n"]) for r in rows}
