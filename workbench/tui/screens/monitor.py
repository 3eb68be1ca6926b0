"""Live monitor of one run: meters, and pause / resume / cancel / concurrency controls.

A run that scales out shows it below the meters: each replica of an endpoint pool
(in flight / limit, req/s, p50, errors, up or down) and each provider batch or batch
file (status, item counts, created, expires) with totals; ``ctrl+x`` cancels the highlighted
batch (its partial results come in with the next poll).

The run itself belongs to the Runs screen (its worker outlives this view); the
monitor follows the run's ``LiveRun`` (its ``changed`` signal) into reactive
``stats`` / ``status``, so several runs can be watched one after another and a
finished run keeps its final numbers.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core.analysis.metrics import result_lines
from workbench.core.engine import RunStats
from workbench.core.status import RunStatus
from workbench.core.store import shown_run_status
from workbench.core.views.runs import run_result, stats_from_store
from workbench.core.views.scale import (
    NO_BATCHES,
    BatchesView,
    BatchLine,
    batches_view,
    replica_lines,
)
from workbench.tui.dialogs import ConfirmDialog
from workbench.tui.live_runs import LiveRun, cancel_batches
from workbench.tui.messages import OpenRun
from workbench.tui.widgets.meters import RunMeters, fmt_duration, fmt_ms
from workbench.tui.workspace import Workspace, workspace_of

LIMIT_STEP = 2
RATE_WINDOW_S = 3.0  # a replica's req/s: answers served over about this many seconds


def _when(value: object) -> str:
    """A stored time (ISO text or epoch seconds) as ``MM-DD HH:MM`` UTC; ``-`` if none."""
    if value is None or value == "":
        return "-"
    try:
        moment = datetime.fromtimestamp(float(str(value)), UTC)
    except ValueError:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return moment.strftime("%m-%d %H:%M")


def batch_cells(line: BatchLine) -> tuple[str, ...]:
    status = f"{line.status}, cancelling" if line.cancel_requested and line.open else line.status
    return (
        str(line.id),
        line.provider,
        line.remote_id or "-",
        f"{line.done}/{line.n_items}",
        str(line.errors),
        str(line.out),
        _when(line.created_at),
        _when(line.expires_at),
        status,
    )


# the status last: the provider's word is the widest cell, and the counts matter more at 100
BATCH_COLUMNS = (
    "batch",
    "provider",
    "remote id",
    "done",
    "err",
    "out",
    "created",
    "expires",
    "status",
)


class MonitorScreen(Screen[None]):
    """The dashboard of one run."""

    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume", id="monitor.toggle_pause"),
        Binding("P", "pause", "Pause", id="monitor.pause", show=False),
        Binding("u", "resume", "Resume", id="monitor.resume", show=False),
        Binding("C", "cancel_run", "Cancel run", id="monitor.cancel"),
        Binding("plus,equals_sign", "limit(1)", "Limit +", id="monitor.limit_up"),
        Binding("minus", "limit(-1)", "Limit -", id="monitor.limit_down"),
        Binding("ctrl+x", "cancel_batch", "Cancel batch", id="monitor.cancel_batch"),
        Binding("t", "traces", "Traces", id="monitor.traces"),
        Binding("escape", "back", "Back", id="monitor.back"),
    ]

    #: the snapshot on show, and where the run stands; the meters follow both
    stats: var[RunStats | None] = var(None, init=False)
    status: var[RunStatus] = var(RunStatus.DONE, init=False)
    error: var[str | None] = var(None, init=False)

    def __init__(self, run_id: int, live: LiveRun | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.live = live
        self.result_text = ""  # the finished run's metrics, drawn once
        # when the numbers last moved (monotonic): the clock and "stalled" tick from these
        self._snapshot_at = time.monotonic()
        self._done = -1
        self._done_at = time.monotonic()
        self._recent: deque[RunStats] = deque()  # snapshots with replicas, for their req/s
        self.batches: BatchesView = NO_BATCHES  # the store's, from mount on
        self.set_reactive(MonitorScreen.status, live.status if live else RunStatus.DONE)

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="monitor-title")
        with VerticalScroll(id="monitor-body"):
            yield RunMeters(id="monitor-meters")
            yield Static("", id="monitor-replicas")
            yield Static("", id="monitor-batch-totals")
            yield DataTable(id="monitor-batches", cursor_type="row", zebra_stripes=True)
            yield Static("", id="monitor-result")
        yield Static("", id="monitor-controls")
        yield Footer()

    def on_mount(self) -> None:
        run = self.workspace.store.get_run(self.run_id)
        # a run named after its kind would read "calibration · calibration"
        name = run["name"] if run["name"] != run["kind"] else ""
        title = " · ".join(p for p in (f"run {self.run_id}", name, run["kind"]) if p)
        self.query_one("#monitor-title", Static).update(Content(title))  # a user's name
        if self.live is None:
            self.set_reactive(MonitorScreen.status, shown_run_status(run))
            self.set_reactive(MonitorScreen.error, run["error"])  # a failed run says why
            if self.status.active:  # executing in another process: follow it from the store
                self.set_interval(1.0, self._follow_store)
        else:
            self.live.changed.subscribe(self, self._live_changed)
        table = self.query_one("#monitor-batches", DataTable)
        table.add_columns(*BATCH_COLUMNS)
        self._live_changed(self.live)
        self.refresh_batches()
        self._draw()  # the watchers only draw changes
        self.set_interval(1.0, self._tick)  # elapsed and "stalled" move between snapshots

    def _live_changed(self, live: LiveRun | None) -> None:
        """Follow the run: the engine's newest snapshot (or the store's, when there is none)."""
        if live is not None:
            self.status = live.status
            self.error = live.error
        stats = live.stats if live is not None else None
        self.stats = (
            stats if stats is not None else stats_from_store(self.workspace.store, self.run_id)
        )

    def _follow_store(self) -> None:
        """A run another process executes: its stored progress and status, once a second."""
        if self.live is not None or not self.status.active:
            return
        store = self.workspace.store
        self.stats = stats_from_store(store, self.run_id)
        self.status = shown_run_status(store.get_run(self.run_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause, cancel and the limit are offered only while the run executes here;
        cancelling a batch while the run has an open one."""
        if action == "cancel_batch":
            return any(b.open for b in self.batches.lines)
        if action in ("toggle_pause", "pause", "resume", "cancel_run", "limit"):
            live = self.live
            return live is not None and live.status.active
        return True

    def watch_stats(self) -> None:
        now = time.monotonic()
        self._snapshot_at = now
        stats = self.stats
        if stats is not None:
            done = sum(p.done for p in stats.stages.values())
            if done != self._done:
                self._done, self._done_at = done, now
        self._draw()

    def _clock(self) -> tuple[float | None, float | None]:
        """Elapsed now and seconds since the last result, for an active run."""
        stats = self.stats
        if stats is None or not self.status.active:
            return None, None
        now = time.monotonic()
        return stats.elapsed_s + (now - self._snapshot_at), now - self._done_at

    def _tick(self) -> None:
        if self.status.active or any(b.open for b in self.batches.lines):
            self.refresh_batches()
        if self.stats is not None and self.status.active:
            elapsed, quiet = self._clock()
            self.query_one(RunMeters).show_headline(
                self.stats, self.status, elapsed_s=elapsed, quiet_s=quiet
            )

    def watch_status(self) -> None:
        self.refresh_bindings()  # the run controls come and go with the status
        if self.is_mounted:
            self.refresh_batches()
        self._draw()

    def watch_error(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.stats is not None:
            elapsed, quiet = self._clock()
            self.query_one(RunMeters).show(
                self.stats, self.status, elapsed_s=elapsed, quiet_s=quiet
            )
        self._show_replicas()
        self._show_controls()
        self._show_result()
        if self.error and not self.status.active:
            # the reason is engine and config text ("[pricing]"): plain, never markup
            self.query_one("#monitor-controls", Static).update(
                Content(f"run {self.status}: {self.error}")
            )

    def _show_replicas(self) -> None:
        """Each replica of the run's endpoint pools (hidden for a single endpoint)."""
        widget = self.query_one("#monitor-replicas", Static)
        stats = self.stats
        if stats is None or not stats.replicas:
            widget.display = False
            return
        recent = self._recent
        if not recent or recent[-1] is not stats:
            recent.append(stats)
        while len(recent) > 2 and stats.elapsed_s - recent[1].elapsed_s >= RATE_WINDOW_S:
            recent.popleft()
        previous = recent[0] if recent[0] is not stats else None
        rows = ["replicas"]
        for r in replica_lines(stats, previous):
            rate = "-" if r.requests_per_s is None else f"{r.requests_per_s:,.1f}"
            rows.append(
                f"  {'up  ' if r.up else 'DOWN'}  {r.provider} {r.endpoint}  "
                f"in flight {r.in_flight}/{r.limit} · {rate} req/s · "
                f"p50 {fmt_ms(r.latency_p50_ms)} · {r.errors} error{'' if r.errors == 1 else 's'}"
            )
        widget.display = True
        widget.update(Content("\n".join(rows)))  # URLs are user text: never markup

    def refresh_batches(self) -> None:
        """The run's batches from the store (hidden when it has none)."""
        view = batches_view(self.workspace.store, self.run_id)
        had_open = any(b.open for b in self.batches.lines)
        self.batches = view
        totals = self.query_one("#monitor-batch-totals", Static)
        table = self.query_one("#monitor-batches", DataTable)
        shown = bool(view.lines)
        totals.display = table.display = shown
        if had_open != any(b.open for b in view.lines):
            self.refresh_bindings()
        if not shown:
            return
        t = view.totals
        oldest = (
            ""
            if t.oldest_open_age_s is None
            else f" · oldest open {fmt_duration(t.oldest_open_age_s)}"
        )
        totals.update(
            f"batches: {len(view.lines)} · items queued {t.queued:,} · in flight {t.in_flight:,}"
            f" · done {t.done:,} · errored {t.errored:,}{oldest}"
            + (" · ctrl+x cancels the highlighted batch" if any(b.open for b in view.lines) else "")
        )
        cursor = table.cursor_row
        table.clear()
        for line in view.lines:
            table.add_row(*batch_cells(line), key=str(line.id))
        if view.lines:
            table.move_cursor(row=min(max(cursor, 0), len(view.lines) - 1), animate=False)

    def selected_batch(self) -> BatchLine | None:
        table = self.query_one("#monitor-batches", DataTable)
        if not self.batches.lines or not table.row_count:
            return None
        row = min(max(table.cursor_row, 0), len(self.batches.lines) - 1)
        return self.batches.lines[row]

    def _show_result(self) -> None:
        """A finished run's metrics, from the metrics layer (the same as ``analyse --json``)."""
        widget = self.query_one("#monitor-result", Static)
        if RunStatus(self.status).active:
            self.result_text = ""
        elif not self.result_text:
            lines = result_lines(run_result(self.workspace.store, self.run_id))
            self.result_text = "\n".join(["result", *lines]) if lines else "result: nothing graded"
        widget.update(self.result_text)

    def _show_controls(self) -> None:
        live = self.live
        if live is None and self.status.active:
            text = (
                "running in another process: following it from the store (every second) · "
                "t traces · escape back to runs"
            )
        elif live is None or not live.status.active:
            text = f"{self.status} · t traces · escape back to runs"
        else:
            limits = (
                ", ".join(f"{p} {n}" for p, n in sorted(live.limits.items())) or "engine default"
            )
            text = f"concurrency: {limits}  (+/- to change) · p pause/resume · C cancel"
        self.query_one("#monitor-controls", Static).update(text)

    # -- actions -----------------------------------------------------------------

    def _engine(self) -> Any:
        live = self.live
        if live is None or live.engine is None or not live.status.active:
            self.notify("this run is not running here", severity="warning", timeout=2)
            return None
        return live.engine

    def action_pause(self) -> None:
        engine = self._engine()
        if engine is not None and self.live is not None:
            engine.pause()
            self.live.status = RunStatus.PAUSED
            self._refresh_status()

    def action_resume(self) -> None:
        engine = self._engine()
        if engine is not None and self.live is not None:
            engine.resume()
            self.live.status = RunStatus.RUNNING
            self._refresh_status()

    def action_toggle_pause(self) -> None:
        if self.live is not None and self.live.status is RunStatus.PAUSED:
            self.action_resume()
        else:
            self.action_pause()

    def _refresh_status(self) -> None:
        if self.live is not None:
            self.status = self.live.status

    def action_cancel_run(self) -> None:
        engine = self._engine()
        if engine is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                engine.cancel()
                self.notify(f"cancelling run {self.run_id}…", timeout=2)

        self.app.push_screen(
            ConfirmDialog(
                "Cancel run",
                f"Cancel run {self.run_id}?  Finished calls stay stored; the run can be resumed.",
                yes="Cancel run",
                no="Keep running",
            ),
            done,
        )

    def action_limit(self, direction: int) -> None:
        engine = self._engine()
        live = self.live
        if engine is None or live is None:
            return
        providers = live.providers
        configured = self.workspace.settings.all_providers()
        for provider in providers:
            current = live.limits.get(provider)
            if current is None:
                stats_limit = live.stats.limit if live.stats else 0
                current = max(1, stats_limit // max(1, len(providers)))
            # never past the provider's max_concurrency (workbench.toml): that cap is a promise
            ceiling = configured[provider].max_concurrency if provider in configured else None
            new = max(1, current + direction * LIMIT_STEP)
            if ceiling is not None and new > ceiling:
                new = ceiling
                self.notify(
                    f"{provider}: at its max_concurrency {ceiling} (workbench.toml [providers])",
                    timeout=3,
                )
            engine.set_limit(provider, new)
            live.limits[provider] = new
        self._show_controls()

    def action_cancel_batch(self) -> None:
        line = self.selected_batch()
        if line is None:
            return
        if not line.open:
            self.notify(f"batch {line.id} is {line.status}: nothing to cancel", timeout=3)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._cancel_batch(line.id)

        where = line.remote_id or line.provider
        self.app.push_screen(
            ConfirmDialog(
                "Cancel batch",
                f"Cancel batch {line.id} ({where}, {line.out:,} items out)?  Its finished "
                "results are kept and its other items can go out again.",
                yes="Cancel batch",
                no="Keep it",
            ),
            done,
        )

    @work(thread=True, group="cancel-batch", exit_on_error=False)
    def _cancel_batch(self, batch_id: int) -> None:
        """The provider call, off the UI thread; one line back either way."""
        ws = self.workspace
        try:
            asked = cancel_batches(ws.store, ws.settings, self.run_id, [batch_id])
        except Exception as exc:  # a provider error is one line, the batch stays as it was
            self.app.call_from_thread(
                self.notify, f"batch {batch_id}: cancel failed: {exc}", severity="error"
            )
            return
        message = (
            f"batch {batch_id}: cancel asked; its partial results come in with the next poll"
            if asked
            else f"batch {batch_id} was no longer open"
        )
        self.app.call_from_thread(self.notify, message, timeout=3)
        self.app.call_from_thread(self.refresh_batches)

    def action_traces(self) -> None:
        self.post_message(OpenRun(self.run_id, "traces"))

    def action_back(self) -> None:
        self.dismiss(None)
