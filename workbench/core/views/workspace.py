"""Read models of the workspace as a whole: the home screen's summary and run choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.store import Store


@dataclass(frozen=True)
class Count:
    """How many rows share one value (a problem source, a run status)."""

    name: str
    n: int


@dataclass(frozen=True)
class RunBrief:
    """A run as a one-line choice: what it is and where it stands."""

    id: int
    name: str
    kind: str
    status: str
    created_at: str = ""


@dataclass(frozen=True)
class WorkspaceSummary:
    path: str
    n_problems: int
    by_source: tuple[Count, ...] = ()
    n_sets: int = 0
    n_prompts: int = 0
    runs_by_status: tuple[Count, ...] = ()
    latest_run: RunBrief | None = None

    @property
    def empty(self) -> bool:
        return self.n_problems == 0


def _brief(row: dict[str, Any]) -> RunBrief:
    return RunBrief(
        id=int(row["id"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        created_at=str(row.get("created_at") or ""),
    )


def summarise_workspace(store: Store) -> WorkspaceSummary:
    """Counts for the home screen (plain SQL; safe on any thread's own Store)."""
    by_source = tuple(
        Count(r["source"], r["n"])
        for r in store.query(
            "SELECT source, COUNT(*) AS n FROM problems GROUP BY source ORDER BY n DESC"
        )
    )
    runs = tuple(
        Count(r["status"], r["n"])
        for r in store.query(
            "SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY n DESC"
        )
    )
    latest = store.query_one("SELECT id, name, kind, status, created_at FROM runs ORDER BY id DESC")
    return WorkspaceSummary(
        path=str(store.path),
        n_problems=int(store.scalar("SELECT COUNT(*) FROM problems") or 0),
        by_source=by_source,
        n_sets=int(store.scalar("SELECT COUNT(*) FROM problem_sets") or 0),
        n_prompts=int(store.scalar("SELECT COUNT(*) FROM prompts") or 0),
        runs_by_status=runs,
        latest_run=_brief(latest) if latest is not None else None,
    )


def latest_run_id(store: Store) -> int | None:
    """The newest run's id, or None in a workspace without runs."""
    latest = store.scalar("SELECT MAX(id) FROM runs")
    return None if latest is None else int(latest)


def recent_runs(store: Store, limit: int = 200) -> list[RunBrief]:
    """The newest ``limit`` runs, newest first."""
    rows = store.query(
        "SELECT id, name, kind, status, created_at FROM runs ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [_brief(r) for r in rows]
