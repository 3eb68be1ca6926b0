"""Live run meters: one widget that renders ``RunStats`` snapshots in place.

Every update changes the content of fixed-height widgets (no mounting, no
resizing), so redrawing 10 times a second does not flicker.  Formatting lives
in small pure functions so the tests can check the numbers shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Label, ProgressBar, Sparkline, Static

from workbench.core.engine import RunStats, StageProgress, format_usd
from workbench.core.status import RunStatus


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_usd(value: float | None) -> str:
    return format_usd(value, missing="–")


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def fmt_count(value: int) -> str:
    return f"{value / 1_000_000:.2f}M" if value >= 1_000_000 else f"{value:,}"


def stage_line(name: str, p: StageProgress) -> str:
    pct = (p.done / p.total * 100) if p.total else 0.0
    errors = f" · {p.errors} errors" if p.errors else ""
    return f"{name}: {p.done:,}/{p.total:,} ({pct:.0f}%){errors}"


def money_line(s: RunStats) -> Content:
    parts: list[str | tuple[str, str]] = [("spent ", "$text-muted"), (fmt_usd(s.spent_usd), "bold")]
    if s.unpriced_calls:
        parts.append((f" + {s.unpriced_calls:,} unpriced calls", "$warning"))
    parts += [("   projected ", "$text-muted"), (fmt_usd(s.projected_usd), "bold")]
    if s.budget_usd is not None:
        over = s.projected_usd is not None and s.projected_usd > s.budget_usd
        parts += [
            ("   budget ", "$text-muted"),
            (fmt_usd(s.budget_usd), "bold $error" if over else "bold"),
        ]
        if over:
            parts.append(("  projected over budget", "$error"))
    return Content.assemble(*parts)


def throughput_line(s: RunStats) -> Content:
    return Content.assemble(
        ("tokens ", "$text-muted"),
        (f"{fmt_count(s.input_tokens)} in / {fmt_count(s.output_tokens)} out", "bold"),
        ("   req/s ", "$text-muted"),
        (f"{s.requests_per_s:.1f}", "bold"),
        ("   in flight ", "$text-muted"),
        (f"{s.in_flight} / {s.limit}", "bold"),
        ("   cache hits ", "$text-muted"),
        (f"{s.cache_hits:,}", "bold"),
    )


def latency_line(s: RunStats) -> Content:
    """Percentiles of finished calls; the max also counts the oldest attempt still in
    flight, so a hung call shows while it hangs rather than after it ends."""
    hung = s.oldest_in_flight_ms is not None and (
        s.latency_max_ms is None or s.oldest_in_flight_ms > s.latency_max_ms
    )
    top = s.oldest_in_flight_ms if hung else s.latency_max_ms
    return Content.assemble(
        ("latency p50 ", "$text-muted"),
        (fmt_ms(s.latency_p50_ms), "bold"),
        ("  p95 ", "$text-muted"),
        (fmt_ms(s.latency_p95_ms), "bold"),
        ("  max ", "$text-muted"),
        (fmt_ms(top), "bold $warning" if hung else "bold"),
        (" (in flight)" if hung else "", "$warning"),
        ("\nrecent calls' latency, oldest first →", "$text-muted"),  # names the sparkline
    )


def errors_line(s: RunStats) -> Content:
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(s.errors_by_kind.items())) or "none"
    parts: list[str | tuple[str, str]] = [
        ("retries ", "$text-muted"),
        (f"{s.retries:,}", "bold $warning" if s.retries else "bold"),
        ("   errors ", "$text-muted"),
        (kinds, "bold $error" if s.errors_by_kind else "bold"),
        ("   refusals ", "$text-muted"),
        (f"{s.refusals:,}", "bold"),
    ]
    if s.last_error:
        parts += [("\nlast error: ", "$text-muted"), (s.last_error[:300], "$error")]
    return Content.assemble(*parts)


STATUS_STYLES = {
    RunStatus.RUNNING: "$success",
    RunStatus.PAUSED: "$warning",
    RunStatus.DONE: "$success",
}


#: no new result for this long, with work left, and the ETA gives way to "stalled"
STALL_AFTER_S = 5.0


def headline(
    s: RunStats,
    status: RunStatus,
    *,
    elapsed_s: float | None = None,
    quiet_s: float | None = None,
) -> Content:
    """The status, items, elapsed time and what comes next.

    ``elapsed_s``: the elapsed time now (the snapshot's, carried forward between
    snapshots, so it never jumps when they resume after a pause); ``quiet_s``: seconds
    since the last result.  With items left and nothing new for ``STALL_AFTER_S``, the
    ETA (a rate over recent results, meaningless now) gives way to "stalled"; with every
    item done while the run still works, it is post-processing (parse, grade: no calls).
    """
    total = sum(p.total for p in s.stages.values())
    done = sum(p.done for p in s.stages.values())
    state = RunStatus.PAUSED if s.paused and status is RunStatus.RUNNING else status
    style = STATUS_STYLES.get(state, "$error")
    quiet = fmt_duration(quiet_s)
    eta: tuple[str, str] | str
    if state is RunStatus.PAUSED:
        eta = ("   paused", "$warning")
    elif state is not RunStatus.RUNNING:
        eta = ("   ETA –", "$text-muted")
    elif total and done >= total and not s.in_flight:
        # after a stage's last item its outputs are parsed and graded (the next stage, if
        # any, starts after): name the stage, so 240/240 with nothing in flight says why
        stage = list(s.stages)[-1]
        eta = (
            f"   post-processing {stage} (parse, grade; no model calls) · {quiet}",
            "bold $warning",
        )
    elif quiet_s is not None and quiet_s >= STALL_AFTER_S:
        eta = (f"   ETA – stalled: no result for {quiet}", "bold $warning")
    else:
        eta = f"   ETA {fmt_duration(s.eta_s)}"
    return Content.assemble(
        (f" {state.upper()} ", f"bold {style} reverse"),
        f"  {done:,}/{total:,} items",
        ("   elapsed ", "$text-muted"),
        fmt_duration(s.elapsed_s if elapsed_s is None else elapsed_s),
        eta,
    )


class RunMeters(Widget):
    """The dashboard body of the monitor."""

    DEFAULT_CSS = """
    RunMeters { height: auto; }
    RunMeters .meter-line { height: auto; margin-bottom: 1; }
    RunMeters #meters-stages { height: auto; margin-bottom: 1; }
    RunMeters .stage-row { height: 1; }
    RunMeters .stage-row Label { width: 40; }
    RunMeters .stage-row ProgressBar { width: 1fr; }
    RunMeters #meters-latency-row { height: 3; margin-bottom: 1; }
    RunMeters #meters-latency { width: 48; }
    RunMeters #meters-spark { width: 1fr; height: 3; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._stage_rows: dict[str, tuple[Label, ProgressBar]] = {}
        self.stats: RunStats | None = None

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first numbers…", id="meters-headline", classes="meter-line")
        yield Vertical(id="meters-stages")
        yield Static("", id="meters-money", classes="meter-line")
        yield Static("", id="meters-throughput", classes="meter-line")
        with Horizontal(id="meters-latency-row"):
            yield Static("", id="meters-latency")
            yield Sparkline([], id="meters-spark")
        yield Static("", id="meters-errors", classes="meter-line")

    def show(
        self,
        stats: RunStats,
        status: RunStatus,
        *,
        elapsed_s: float | None = None,
        quiet_s: float | None = None,
    ) -> None:
        """Render one snapshot (called from the screen's message handler)."""
        self.stats = stats
        self.show_headline(stats, status, elapsed_s=elapsed_s, quiet_s=quiet_s)
        self._show_stages(stats.stages)
        self.query_one("#meters-money", Static).update(money_line(stats))
        self.query_one("#meters-throughput", Static).update(throughput_line(stats))
        self.query_one("#meters-latency", Static).update(latency_line(stats))
        spark = self.query_one("#meters-spark", Sparkline)
        data = list(stats.recent_latencies_ms)
        if data != spark.data:
            spark.data = data
        self.query_one("#meters-errors", Static).update(errors_line(stats))

    def show_headline(
        self,
        stats: RunStats,
        status: RunStatus,
        *,
        elapsed_s: float | None = None,
        quiet_s: float | None = None,
    ) -> None:
        """Only the headline: the clock ticks between snapshots."""
        self.query_one("#meters-headline", Static).update(
            headline(stats, status, elapsed_s=elapsed_s, quiet_s=quiet_s)
        )

    def _show_stages(self, stages: Mapping[str, StageProgress]) -> None:
        box = self.query_one("#meters-stages", Vertical)
        for name, progress in stages.items():
            row = self._stage_rows.get(name)
            if row is None:  # a new stage: mounted once, then updated in place
                label, bar = Label(), ProgressBar(show_eta=False, id=None)
                box.mount(Horizontal(label, bar, classes="stage-row"))
                row = self._stage_rows[name] = (label, bar)
            label, bar = row
            label.update(stage_line(name, progress))
            bar.update(total=max(progress.total, 1), progress=progress.done)
