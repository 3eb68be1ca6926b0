"""The live progress display of ``workbench run``: rich, fed by engine events.

``on_event`` is called on the engine's thread; it only swaps in the newest
``RunStats`` and updates progress tasks (both safe while rich's refresh thread
renders).  Without a terminal it prints one line per stage instead.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from workbench.cli.pipes import silence_stdout
from workbench.core.engine import (
    Event,
    LimitChanged,
    PoolStalled,
    ReplicaHealth,
    RunFinished,
    RunStats,
    StageFinished,
    StageStarted,
    format_usd,
)


class PipeConsole(Console):
    """A console whose reader may leave (``workbench run ... | head``): it goes quiet and
    the run carries on (rich's default raises SystemExit, which failed the run)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence_stdout()


def money(x: float | None) -> str:
    return format_usd(x, missing="?")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def stats_lines(stats: RunStats) -> list[str]:
    """The numbers under the progress bars, as plain text lines."""
    spend = f"spent {money(stats.spent_usd)}"
    if stats.unpriced_calls:
        spend += f" (+{stats.unpriced_calls} calls of unknown price)"
    if stats.projected_usd is not None:
        spend += f" · projected {money(stats.projected_usd)}"
    if stats.budget_usd is not None:
        spend += f" · budget {money(stats.budget_usd)}"
    lat = "latency -"
    if stats.latency_p50_ms is not None:
        lat = (
            f"latency p50 {stats.latency_p50_ms:,.0f} ms · p95 {stats.latency_p95_ms or 0:,.0f} ms"
        )
    flow = (
        f"{stats.requests_per_s:,.1f} items/s · in flight {stats.in_flight}/{stats.limit}"
        f" · ETA {duration(stats.eta_s)}"
    )
    counts = (
        f"tokens {stats.input_tokens:,} in / {stats.output_tokens:,} out"
        f" · cache hits {stats.cache_hits} · retries {stats.retries}"
    )
    lines = [spend, f"{lat} · {flow}", counts]
    if stats.errors_by_kind:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.errors_by_kind.items()))
        lines.append(f"failed attempts: {kinds}")
    if stats.last_error:
        lines.append(f"last error: {stats.last_error[:160]}")
    for r in stats.replicas:  # an endpoint pool: one line per replica
        p50 = f"{r.latency_p50_ms:,.0f} ms" if r.latency_p50_ms is not None else "-"
        lines.append(
            f"  {r.endpoint}: {'up' if r.up else 'DOWN'} · in flight {r.in_flight}/{r.limit}"
            f" · served {r.served} · errors {r.errors} · p50 {p50}"
        )
    if stats.paused:
        lines.append("PAUSED")
    return lines


class _StatsView:
    def __init__(self, display: RunDisplay) -> None:
        self.display = display

    def __rich__(self) -> RenderableType:
        stats = self.display.latest
        if stats is None:
            return Text("starting…", style="dim")
        notes = [Text(n, style="yellow") for n in self.display.notes[-3:]]
        return Group(*(Text(line) for line in stats_lines(stats)), *notes)


class RunDisplay:
    """Context manager around a run; pass ``on_event`` to the engine."""

    def __init__(self, console: Console, *, live: bool) -> None:
        self.console = console
        self.live_enabled = live
        self.latest: RunStats | None = None
        self.notes: list[str] = []
        self.finished: RunFinished | None = None
        self._lock = threading.Lock()
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]}", style="red"),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._live: Live | None = None

    def __enter__(self) -> RunDisplay:
        if self.live_enabled:
            self._live = Live(
                Group(self.progress, _StatsView(self)),
                console=self.console,
                refresh_per_second=8,
                transient=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)
        if self._live is None:
            self._say(text)

    def _say(self, text: str) -> None:
        """Print a progress line; a reader that went away (``| head``) ends the printing,
        never the run."""
        try:
            self.console.print(text)
        except BrokenPipeError:
            silence_stdout()

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStats):
            self.latest = event
            for stage, prog in event.stages.items():
                task = self._task(stage, prog.total)
                errors = f"{prog.errors} errors" if prog.errors else ""
                self.progress.update(task, completed=prog.done, total=prog.total, errors=errors)
        elif isinstance(event, StageStarted):
            self._task(event.stage, event.total)
            if self._live is None:
                self._say(
                    f"stage {event.stage}: {event.total} items, {event.already_done} already done"
                )
        elif isinstance(event, StageFinished) and self._live is None and self.latest:
            done = self.latest.stages.get(event.stage)
            if done is not None:
                self._say(
                    f"stage {event.stage}: {done.done}/{done.total} finished, {done.errors} errors"
                )
        elif isinstance(event, LimitChanged) and event.reason not in ("growth", "recovery"):
            self.note(f"{event.provider}: concurrency limit {event.limit} ({event.reason})")
        elif isinstance(event, ReplicaHealth):
            state = "up" if event.up else "down"
            self.note(f"{event.provider}: replica {event.endpoint} {state} ({event.reason})")
        elif isinstance(event, PoolStalled):
            self.note(event.message)
        elif isinstance(event, RunFinished):
            self.finished = event

    def _task(self, stage: str, total: int) -> TaskID:
        with self._lock:
            if stage not in self._tasks:
                self._tasks[stage] = self.progress.add_task(stage, total=total, errors="")
            return self._tasks[stage]
