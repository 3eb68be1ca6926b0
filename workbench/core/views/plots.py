"""Data behind each plot of the Plots screen, computed with ``analysis`` over the store.

Each function returns a ``PlotData``: labelled series for the chart and the
same numbers as CSV rows, or an ``empty`` reason when there is nothing to show.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from workbench.core.analysis import (
    SampleKind,
    load_bins,
    load_outcomes,
    run_metrics,
    sample_kind,
)
from workbench.core.analysis.rates import (
    DEFAULT_BINS,
    GradedSample,
    group_sample_ids,
    recovery_beside_straight_shot,
    recovery_table,
    solve_rate_histogram,
    solve_rates,
)
from workbench.core.analysis.stats import Rate, histogram, histogram_bin, wilson
from workbench.core.store import Store

ChartKind = Literal["bars", "line", "histogram"]


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float, ...]
    low: tuple[float, ...] = ()  # interval bounds, same length as values, when known
    high: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlotData:
    key: str
    title: str
    chart: ChartKind
    x_label: str
    y_label: str
    labels: tuple[str, ...] = ()  # categories (bars) ; empty for line charts
    x: tuple[float, ...] = ()  # numeric x (line charts)
    series: tuple[Series, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    empty: str | None = None  # why there is nothing to draw
    note: str = ""
    counts: bool = False  # the y axis counts things: whole-number ticks only
    #: per category (bars): the run's sample ids behind it, for a drill-down to its traces
    drill: tuple[tuple[int, ...], ...] = ()
    #: per category: its numbers in words (value, n, interval), shown for the chosen bar
    details: tuple[str, ...] = ()

    def samples_of(self, index: int) -> tuple[int, ...]:
        """The sample ids behind category ``index`` (none for line charts)."""
        return self.drill[index] if 0 <= index < len(self.drill) else ()

    def count_ticks(self, most: int = 6) -> list[int]:
        """Whole-number y ticks from 0 to the tallest bar, at most ``most`` of them."""
        top = max((int(max(s.values, default=0)) for s in self.series), default=0)
        step = max(1, -(-top // (most - 1)))
        return list(range(0, top + step, step))

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buf.getvalue()

    def export(self, directory: Path, run_id: int | None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"plot-{self.key}-run{run_id if run_id is not None else 'all'}.csv"
        path.write_text(self.to_csv(), encoding="utf-8")
        return path


def _empty(key: str, title: str, reason: str) -> PlotData:
    return PlotData(key, title, "bars", "", "", empty=reason)


def _final_outcomes(store: Store, run_id: int) -> list[GradedSample]:
    """Graded samples nothing derives from: the answers a run is judged on."""
    parents = {
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT parent_id FROM samples WHERE run_id=? AND parent_id IS NOT NULL",
            (run_id,),
        )
    }
    return [o for o in load_outcomes(store, run_id) if o.sample_id not in parents]


def _recovery_outcomes(store: Store, run_id: int) -> tuple[list[GradedSample], str | None]:
    """The samples the ``recovery`` metric counts (perturbed continuations; never the
    controls, the check or the judge), and the completer model."""
    outcomes = [
        o
        for o in load_outcomes(store, run_id, stage="continue")
        if sample_kind(o.stage, o.payload) is SampleKind.PERTURBED_CONTINUATION
    ]
    models = sorted({o.model for o in outcomes if o.model})
    return outcomes, (models[0] if models else None)


def solve_rate_hist(store: Store, run_id: int) -> PlotData:
    key, title = "solve-rate", "Solve rate per problem (histogram per model)"
    outcomes = _final_outcomes(store, run_id)
    rates = solve_rates(outcomes)
    if not any(r.rate.n for r in rates):
        return _empty(key, title, "no graded samples in this run")
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in rates:
        by_model[r.model].append(r)
    series, rows = [], []
    labels: tuple[str, ...] = ()
    n_bins = 10
    members: list[set[tuple[str, str]]] = [set() for _ in range(n_bins)]  # (problem, model)
    words: list[list[str]] = [[] for _ in range(n_bins)]
    for model, model_rates in sorted(by_model.items()):
        bins = solve_rate_histogram(model_rates, n_bins=n_bins)
        labels = tuple(b.label for b in bins)
        series.append(Series(model, tuple(float(b.count) for b in bins)))
        rows += [(model, b.low, b.high, b.count) for b in bins]
        for r in model_rates:
            if r.rate.rate is not None:
                members[histogram_bin(r.rate.rate, n_bins)].add((r.problem_id, r.model))
        for i, b in enumerate(bins):
            words[i].append(f"{model}: {b.count} problem{'s' if b.count != 1 else ''}")
    drill = tuple(
        tuple(o.sample_id for o in outcomes if (o.problem_id, o.model or "") in group)
        for group in members
    )
    return PlotData(
        key,
        title,
        "bars",
        "solve rate",
        "problems",
        labels=labels,
        series=tuple(series),
        columns=("model", "low", "high", "problems"),
        rows=tuple(rows),
        counts=True,
        drill=drill,
        details=tuple(" · ".join(w) for w in words),
    )


def _straight_shot(store: Store, model: str, exclude_run: int) -> list[GradedSample]:
    """The model's own straight-shot samples: root samples with no prefix in other runs."""
    runs = [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT run_id FROM samples WHERE model=? AND parent_id IS NULL AND run_id!=?",
            (model, exclude_run),
        )
    ]
    out: list[GradedSample] = []
    for rid in runs:
        out += [o for o in load_outcomes(store, rid, model=model) if "prefix" not in o.payload]
    return out


def recovery_by_bin(store: Store, run_id: int) -> PlotData:
    key, title = "recovery-bin", "Recovery by difficulty bin vs the completer's straight-shot rate"
    rec, completer = _recovery_outcomes(store, run_id)
    if not rec or completer is None:
        return _empty(key, title, "no completer continuations in this run")
    order = DEFAULT_BINS.names
    bins = dict(  # hard, medium, easy: the order the table and the chart keep
        sorted(
            load_bins(store, completer).items(),
            key=lambda kv: order.index(kv[1]) if kv[1] in order else len(order),
        )
    )
    shot = _straight_shot(store, completer, run_id)
    behind = group_sample_ids(rec, "bin", bins=bins)
    rows_b = recovery_beside_straight_shot(rec, shot, by="bin", bins=bins) if shot else []
    note = ""
    rows: tuple[tuple[Any, ...], ...]
    if rows_b:
        labels = tuple(r.key for r in rows_b)
        series: tuple[Series, ...] = (
            Series("recovery", *_rate_arrays([r.recovery for r in rows_b])),
            Series(
                f"straight-shot ({completer})", *_rate_arrays([r.straight_shot for r in rows_b])
            ),
        )
        rows = tuple(
            (r.key, *_rate_cells(r.recovery), *_rate_cells(r.straight_shot)) for r in rows_b
        )
        details = tuple(f"recovery {r.recovery} · straight-shot {r.straight_shot}" for r in rows_b)
    else:  # no calibration of the completer on these problems: recovery alone
        note = f"no straight-shot samples of {completer} on these problems"
        table = recovery_table(rec, "bin", bins=bins)
        if not table:
            return _empty(key, title, "no graded continuations yet")
        labels = tuple(r.key for r in table)
        series = (Series("recovery", *_rate_arrays([r.rate for r in table])),)
        rows = tuple((r.key, *_rate_cells(r.rate), None, None, None, None, None) for r in table)
        details = tuple(f"recovery {r.rate}" for r in table)
    return PlotData(
        key,
        title,
        "bars",
        "difficulty bin",
        "rate",
        labels=labels,
        series=series,
        columns=_BESIDE_COLUMNS,
        rows=rows,
        note=note,
        drill=tuple(behind.get(label, ()) for label in labels),
        details=details,
    )


_BESIDE_COLUMNS = (
    "bin",
    "recovered",
    "n",
    "recovery",
    "recovery_low",
    "recovery_high",
    "straight_correct",
    "straight_n",
    "straight_shot",
    "straight_low",
    "straight_high",
)


def _rate_arrays(
    rates: Sequence[Any],
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    return (
        tuple(r.rate or 0.0 for r in rates),
        tuple(r.low for r in rates),
        tuple(r.high for r in rates),
    )


def _rate_cells(rate: Rate) -> tuple[Any, ...]:
    """A rate as CSV cells: k, n, rate, low, high."""
    return (rate.k, rate.n, rate.rate, rate.low, rate.high)


def _recovery_group(store: Store, run_id: int, by: Any, key: str, title: str, x: str) -> PlotData:
    rec, _ = _recovery_outcomes(store, run_id)
    table = recovery_table(rec, by)
    table = [r for r in table if r.key != "-"]
    behind = group_sample_ids(rec, by)
    if not table:
        return _empty(key, title, "no graded continuations with this information in this run")
    return PlotData(
        key,
        title,
        "bars",
        x,
        "recovery rate",
        labels=tuple(r.key for r in table),
        series=(Series("recovery", *_rate_arrays([r.rate for r in table])),),
        columns=(x, "recovered", "n", "rate", "low", "high", "problems"),
        rows=tuple((r.key, *_rate_cells(r.rate), r.n_problems) for r in table),
        drill=tuple(behind.get(r.key, ()) for r in table),
        details=tuple(f"recovery {r.rate} · {r.n_problems} problems" for r in table),
    )


def recovery_by_error_type(store: Store, run_id: int) -> PlotData:
    return _recovery_group(
        store, run_id, "error_type", "recovery-error", "Recovery by error type", "error type"
    )


def recovery_by_position(store: Store, run_id: int) -> PlotData:
    return _recovery_group(
        store, run_id, "step", "recovery-step", "Recovery by perturbed step", "step"
    )


def _seconds(stamp: str, start: datetime) -> float:
    return (datetime.fromisoformat(stamp) - start).total_seconds()


def cost_over_time(store: Store, run_id: int) -> PlotData:
    key, title = "cost", "Cumulative cost over the run"
    calls = store.query(
        "SELECT created_at, cost_usd FROM calls WHERE run_id=? AND cache_hit=0 ORDER BY id",
        (run_id,),
    )
    if not calls:
        return _empty(key, title, "no calls in this run")
    start = datetime.fromisoformat(calls[0]["created_at"])
    total, xs, ys, rows = 0.0, [], [], []
    unpriced = 0
    for c in calls:
        if c["cost_usd"] is None:
            unpriced += 1
        total += c["cost_usd"] or 0.0
        t = _seconds(c["created_at"], start)
        xs.append(t)
        ys.append(total)
        rows.append((round(t, 3), c["cost_usd"], round(total, 6)))
    note = f"{unpriced:,} unpriced calls not counted" if unpriced else ""
    return PlotData(
        key,
        title,
        "line",
        "seconds since first call",
        "USD",
        x=tuple(xs),
        series=(Series("spent", tuple(ys)),),
        columns=("t_s", "cost_usd", "cumulative_usd"),
        rows=tuple(rows),
        note=note,
    )


def latency_histogram(store: Store, run_id: int) -> PlotData:
    key, title = "latency", "Latency of the run's calls"
    timed = store.conn.execute(
        "SELECT c.latency_ms, s.id FROM calls c LEFT JOIN samples s ON s.call_id=c.id"
        " WHERE c.run_id=? AND c.cache_hit=0 AND c.latency_ms IS NOT NULL GROUP BY c.id",
        (run_id,),
    ).fetchall()
    values = [float(r[0]) for r in timed]
    if not values:
        return _empty(key, title, "no timed calls in this run")
    top = max(values) or 1.0
    n_bins = 20
    bins = histogram([v / top for v in values], n_bins=n_bins)
    behind: list[list[int]] = [[] for _ in range(n_bins)]
    for latency, sample_id in timed:
        if sample_id is not None:  # a call whose sample was not recorded has no trace
            behind[histogram_bin(latency / top, n_bins)].append(int(sample_id))
    labels = tuple(f"{b.low * top:.0f}" for b in bins)
    return PlotData(
        key,
        title,
        "bars",
        "latency (ms, bin start)",
        "calls",
        labels=labels,
        series=(Series("calls", tuple(float(b.count) for b in bins)),),
        columns=("low_ms", "high_ms", "calls"),
        rows=tuple((round(b.low * top, 1), round(b.high * top, 1), b.count) for b in bins),
        counts=True,
        drill=tuple(tuple(ids) for ids in behind),
        details=tuple(
            f"{b.count} call{'s' if b.count != 1 else ''} of {b.low * top:.0f}-{b.high * top:.0f} ms"
            for b in bins
        ),
    )


def method_accuracy(store: Store, run_id: int) -> PlotData:
    """Each method, the vote and the oracle, as the metrics layer counts them (one answer
    per problem each); a run that is not a methods run has nothing to show here."""
    key, title = "methods", "Accuracy per method, vote and oracle"
    metrics = run_metrics(store, run_id)
    if metrics.kind != "methods":
        return _empty(key, title, f"a {metrics.kind} run has no methods to compare")
    values = [
        *metrics.of("method_accuracy"),
        *metrics.of("vote_accuracy"),
        *metrics.of("oracle_accuracy"),
    ]
    values = [v for v in values if v.rate.n]
    if not values:
        return _empty(key, title, "no graded vote rows in this run yet")
    labels = tuple(v.key or v.definition.label for v in values)
    votes = tuple(
        r[0]
        for r in store.conn.execute(
            "SELECT id FROM samples WHERE run_id=? AND stage='vote' ORDER BY id", (run_id,)
        )
    )

    def behind(value: Any) -> tuple[int, ...]:
        if value.name != "method_accuracy" or not value.key:
            return votes  # the vote and the oracle are read off the vote rows
        return tuple(
            r[0]
            for r in store.conn.execute(
                "SELECT id FROM samples WHERE run_id=? AND stage!='vote'"
                " AND json_extract(payload,'$.method')=? ORDER BY id",
                (run_id, value.key),
            )
        )

    return PlotData(
        key,
        title,
        "bars",
        "method",
        "accuracy",
        labels=labels,
        series=(Series("accuracy", *_rate_arrays([v.rate for v in values])),),
        columns=("method", "metric", "correct", "n", "accuracy", "low", "high"),
        rows=tuple(
            (lab, v.name, *_rate_cells(v.rate)) for lab, v in zip(labels, values, strict=True)
        ),
        drill=tuple(behind(v) for v in values),
        details=tuple(f"{v.definition.label}: {v.rate}" for v in values),
    )


#: per kind: the metrics drawn side by side per task, with their series names
_BY_TASK: dict[str, tuple[tuple[str, str, str], ...]] = {
    "mistake-finding": (
        ("mistake_location", "", "mistake found"),
        ("no_mistake_accuracy", "", "no mistake"),
    ),
    "backtrack": (
        ("backtrack_fixed", "mistake", "fixed, at the mistake"),
        ("backtrack_fixed", "random", "fixed, at random"),
    ),
}


def by_task(store: Store, run_id: int) -> PlotData:
    """Labelled-trace runs per task: the critic's two accuracies, or what backtracking at
    the labelled mistake fixes against a random step, as the metrics layer counts them."""
    key, title = "task", "Per task"
    metrics = run_metrics(store, run_id)
    wanted = _BY_TASK.get(metrics.kind)
    if wanted is None:
        return _empty(key, title, f"a {metrics.kind} run has no labelled-trace tasks")
    tasks = sorted(
        {v.key.rsplit(" · ", 1)[-1] for name, _, _ in wanted for v in metrics.of(name)}
        - {"", "mistake", "random"}
    )
    if not tasks:
        return _empty(key, title, "nothing graded in this run yet")

    def value(name: str, prefix: str, task: str) -> Rate:
        found = metrics.get(name, f"{prefix} · {task}" if prefix else task)
        return found.rate if found is not None else wilson(0, 0)

    series, rows = [], []
    for name, prefix, label in wanted:
        rates = [value(name, prefix, task) for task in tasks]
        series.append(Series(label, *_rate_arrays(rates)))
        rows += [(task, label, *_rate_cells(r)) for task, r in zip(tasks, rates, strict=True)]
    return PlotData(
        key,
        title,
        "bars",
        "task",
        "accuracy",
        labels=tuple(tasks),
        series=tuple(series),
        columns=("task", "metric", "correct", "n", "accuracy", "low", "high"),
        rows=tuple(rows),
    )


@dataclass(frozen=True)
class PlotSpec:
    key: str
    name: str
    shortcut: str
    build: Callable[[Store, int], PlotData] = field(repr=False)
    short: str = ""  # a one-word name for narrow terminals

    @property
    def short_name(self) -> str:
        return self.short or self.name


PLOTS: tuple[PlotSpec, ...] = (
    # keys no other screen uses (docs/keys.md): h histogram, ! errors, # step, $ cost
    PlotSpec("solve-rate", "Solve rates", "h", solve_rate_hist, "Solve"),
    PlotSpec("recovery-bin", "Recovery by bin", "b", recovery_by_bin, "Bin"),
    PlotSpec(
        "recovery-error", "By error type", "exclamation_mark", recovery_by_error_type, "Error"
    ),
    PlotSpec("recovery-step", "By step", "number_sign", recovery_by_position, "Step"),
    PlotSpec("cost", "Cost over time", "dollar_sign", cost_over_time, "Cost"),
    PlotSpec("latency", "Latency", "L", latency_histogram),
    PlotSpec("methods", "Methods", "m", method_accuracy),
    PlotSpec("task", "Per task", "T", by_task, "Task"),
)
