"""The metrics layer: every number a user reads, defined once.

Each ``MetricDefinition`` names the experiment kinds it applies to, the stages and
sample kinds it counts, its numerator and denominator in words, its interval
method and a one-line description a screen can show.  ``compute_metrics`` turns a
run's graded samples into ``MetricValue`` rows (pure); ``run_metrics`` loads them
through ``queries``.  The Runs headline, the monitor's result, the Plots and their
CSVs, the trace badges, ``workbench analyse --json``, ``compare``, ``runs`` and the
exports all read these values, so the same number is the same everywhere.

``docs/metrics.md`` is generated from ``METRICS`` (``metrics_markdown``); a test
fails when the page is stale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workbench.core.analysis.rates import GradedSample
from workbench.core.analysis.stats import Rate, format_bound, format_percent, wilson

__all__ = [
    "METRICS",
    "IntervalMethod",
    "MetricDefinition",
    "MetricValue",
    "OutcomeLabel",
    "RunMetrics",
    "SampleKind",
    "compute_metrics",
    "definition",
    "f1_scores",
    "format_interval",
    "format_percent",
    "format_rate",
    "headline_counts",
    "metrics_markdown",
    "outcome_label",
    "result_lines",
    "sample_kind",
]


class SampleKind(StrEnum):
    """What a stored sample is, for counting (decided by ``sample_kind``)."""

    STRAIGHT_SHOT = "straight_shot"  # a solve from the question alone (calibration, weak solver)
    PERTURBED_CONTINUATION = "perturbed_continuation"  # continues a perturbed / wrong prefix
    CONTROL_CONTINUATION = "control_continuation"  # continues the untouched prefix
    CHECK = "check"  # the too-easy check (selection, never a measurement)
    JUDGE_VERDICT = "judge_verdict"  # an LLM judge's reading of a continuation
    PERTURBATION = "perturbation"  # a perturber's rewritten step
    METHOD_SAMPLE = "method_sample"  # one sample of one reasoning method
    VOTE = "vote"  # the methods experiment's final answer per problem (no call)
    RESOLUTION = "resolution"  # a selector's pick / a re-attempt after disagreement
    CRITIQUE = "critique"  # a critic's pick of a labelled trace's first wrong step (or none)
    STEP_VERDICT = "step_verdict"  # a critic's yes / no on one step (step-level finding)
    RESAMPLED_STEP = "resampled_step"  # a step drawn again where a trace is backtracked
    BACKTRACK = "backtrack"  # a labelled trace continued from a resampled step
    OTHER = "other"


class IntervalMethod(StrEnum):
    WILSON = "wilson"  # Wilson score interval, 95%


@dataclass(frozen=True)
class MetricDefinition:
    """One metric: what it counts and how, in words a reader can check."""

    name: str
    label: str  # short, for headlines and chart legends
    kinds: tuple[str, ...]  # experiment kinds that report it
    stages: tuple[str, ...]
    sample_kinds: tuple[SampleKind, ...]
    numerator: str
    denominator: str
    per: str  # run / model / method
    description: str
    interval: IntervalMethod = IntervalMethod.WILSON
    #: which of the counted samples it reads, by their labelled trace ("" = all of them)
    subset: str = ""


#: subsets of samples by what their labelled trace is (``MetricDefinition.subset``)
SUBSETS: dict[str, str] = {
    "with_mistake": "traces whose label marks a first mistake",
    "without_mistake": "traces labelled free of mistakes",
    "originally_wrong": "traces whose own final answer is wrong",
    "originally_right": "traces whose own final answer is right",
}


def in_subset(subset: str, payload: Any) -> bool:
    """Whether a sample (its merged payload) belongs to a metric's ``subset``."""
    p = payload if isinstance(payload, dict) else {}
    if subset == "with_mistake":
        return p.get("mistake_index") is not None
    if subset == "without_mistake":
        return "mistake_index" in p and p.get("mistake_index") is None
    if subset == "originally_wrong":
        return p.get("original_correct") is False
    if subset == "originally_right":
        return p.get("original_correct") is True
    return True


RECOVERY_KINDS = ("recovery", "weak-prefix", "on-policy")
_GRADED = (
    "graded {what} (no extractable answer counts as wrong; grader timeouts and errors are left out)"
)

METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        "accuracy",
        "accuracy",
        ("calibration",),
        ("solve",),
        (SampleKind.STRAIGHT_SHOT,),
        "straight-shot samples graded correct",
        _GRADED.format(what="straight-shot samples"),
        "model",
        "How often the model solves a problem from the question alone, pooled over samples.",
    ),
    MetricDefinition(
        "recovery",
        "recovery",
        RECOVERY_KINDS,
        ("continue",),
        (SampleKind.PERTURBED_CONTINUATION,),
        "continuations of a perturbed (or wrong) prefix whose final answer is correct",
        _GRADED.format(what="continuations of perturbed prefixes"),
        "run",
        "How often the completer reaches the right answer after a bad prefix.",
    ),
    MetricDefinition(
        "control",
        "control",
        ("recovery",),
        ("control",),
        (SampleKind.CONTROL_CONTINUATION,),
        "continuations of the untouched prefix whose final answer is correct",
        _GRADED.format(what="control continuations"),
        "run",
        "The same cut with the original step: the baseline recovery is compared with.",
    ),
    MetricDefinition(
        "judge_noticed",
        "judge: noticed",
        RECOVERY_KINDS,
        ("judge",),
        (SampleKind.JUDGE_VERDICT,),
        "judge verdicts saying the continuation noticed the error",
        "judge replies with a readable verdict",
        "run",
        "How often the LLM judge says a continuation noticed the injected error.",
    ),
    MetricDefinition(
        "solver_accuracy",
        "solver accuracy",
        ("weak-prefix",),
        ("weak-solve",),
        (SampleKind.STRAIGHT_SHOT,),
        "the weak solver's straight-shot samples graded correct",
        _GRADED.format(what="weak-solver samples"),
        "run",
        "How often the weaker model solves on its own (its wrong traces become prefixes).",
    ),
    MetricDefinition(
        "method_accuracy",
        "accuracy",
        ("methods",),
        ("vote",),
        (SampleKind.VOTE,),
        "problems whose method answer (its self-consistency vote) is correct",
        "problems with a vote row (a method with no answer counts as wrong)",
        "method",
        "Each reasoning method on its own, one answer per problem.",
    ),
    MetricDefinition(
        "sample_accuracy",
        "per-sample accuracy",
        ("methods",),
        ("solve",),
        (SampleKind.METHOD_SAMPLE,),
        "single samples of the method graded correct",
        _GRADED.format(what="samples of the method"),
        "method",
        "Each method's single samples, before self-consistency voting.",
    ),
    MetricDefinition(
        "vote_accuracy",
        "vote",
        ("methods",),
        ("vote",),
        (SampleKind.VOTE,),
        "problems whose final answer (vote, then selector / re-attempt) is correct",
        "problems with a graded vote row",
        "run",
        "The methods experiment's final answer: the cross-method vote, resolved on disagreement.",
    ),
    MetricDefinition(
        "oracle_accuracy",
        "oracle",
        ("methods",),
        ("vote",),
        (SampleKind.VOTE,),
        "problems where at least one method's answer is correct",
        "problems with a vote row",
        "run",
        "An upper bound for any way of combining the methods.",
    ),
    MetricDefinition(
        "mistake_location",
        "mistake found",
        ("mistake-finding",),
        ("locate",),
        (SampleKind.CRITIQUE,),
        "critiques naming exactly the labelled first wrong step",
        "critiques of traces whose label marks a first mistake",
        "task",
        "How often the critic finds the first mistake where the label puts it (BIG-Bench "
        "Mistake's location accuracy; ProcessBench's accuracy on erroneous samples).",
        subset="with_mistake",
    ),
    MetricDefinition(
        "no_mistake_accuracy",
        "no mistake",
        ("mistake-finding",),
        ("locate",),
        (SampleKind.CRITIQUE,),
        'critiques answering "no mistake"',
        "critiques of traces labelled free of mistakes",
        "task",
        "How often the critic leaves a correct trace alone (ProcessBench's accuracy on "
        "correct samples; their harmonic mean with mistake_location is its F1).",
        subset="without_mistake",
    ),
    MetricDefinition(
        "backtrack_fixed",
        "fixed",
        ("backtrack",),
        ("backtrack",),
        (SampleKind.BACKTRACK,),
        "continuations from a resampled step whose final answer is correct",
        "continuations of traces whose own final answer is wrong",
        "arm",
        "Accuracy gained: wrong traces made right by backtracking at the labelled mistake "
        "(arm mistake) or at a random step (arm random, the control).",
        subset="originally_wrong",
    ),
    MetricDefinition(
        "backtrack_kept",
        "kept",
        ("backtrack",),
        ("backtrack",),
        (SampleKind.BACKTRACK,),
        "continuations from a resampled step whose final answer is still correct",
        "continuations of traces whose own final answer is right",
        "arm",
        "Accuracy kept on right traces (1 - kept is the accuracy lost) in each arm.",
        subset="originally_right",
    ),
)

#: the metric each kind leads with (Runs list, monitor result, ``runs`` CLI)
HEADLINE: dict[str, str] = {
    "calibration": "accuracy",
    "recovery": "recovery",
    "weak-prefix": "recovery",
    "on-policy": "recovery",
    "methods": "vote_accuracy",
    "mistake-finding": "mistake_location",
    "backtrack": "backtrack_fixed",
}

_BY_NAME = {m.name: m for m in METRICS}


def definition(name: str) -> MetricDefinition:
    return _BY_NAME[name]


# -- what a sample is ----------------------------------------------------------------


def sample_kind(stage: str, payload: Any, *, run_kind: str = "") -> SampleKind:
    """The kind of a sample from its stage and (merged) payload."""
    p = payload if isinstance(payload, dict) else {}
    if stage == "continue":
        if p.get("perturbed") is False or p.get("prefix_kind") == "original":
            return SampleKind.CONTROL_CONTINUATION
        return SampleKind.PERTURBED_CONTINUATION
    if stage.startswith("perturb"):
        return SampleKind.PERTURBATION
    if stage in ("solve", "plan"):
        if run_kind == "methods" or p.get("method"):
            return SampleKind.METHOD_SAMPLE
        return SampleKind.STRAIGHT_SHOT
    return _KIND_OF_STAGE.get(stage, SampleKind.OTHER)


#: stages whose samples are one kind whatever their payload
_KIND_OF_STAGE: dict[str, SampleKind] = {
    "control": SampleKind.CONTROL_CONTINUATION,
    "check": SampleKind.CHECK,
    "judge": SampleKind.JUDGE_VERDICT,
    "vote": SampleKind.VOTE,
    "resolve": SampleKind.RESOLUTION,
    "weak-solve": SampleKind.STRAIGHT_SHOT,
    "locate": SampleKind.CRITIQUE,
    "step-check": SampleKind.STEP_VERDICT,
    "resample": SampleKind.RESAMPLED_STEP,
    "backtrack": SampleKind.BACKTRACK,
}


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValue:
    """One metric's value: ``rate`` (k of n with its interval) for ``key`` (a model, a
    method, or "" for the whole run)."""

    name: str
    key: str
    rate: Rate

    @property
    def definition(self) -> MetricDefinition:
        return _BY_NAME[self.name]

    @property
    def label(self) -> str:
        d = self.definition
        return f"{d.label} · {self.key}" if self.key and d.per != "run" else d.label

    def text(self) -> str:
        """``recovery 32.0% (23/72)``: the one way a rate is written."""
        return f"{self.label} {format_rate(self.rate)}"

    def to_json(self) -> dict[str, Any]:
        r = self.rate
        return {
            "metric": self.name,
            "key": self.key,
            "label": self.label,
            "k": r.k,
            "n": r.n,
            "rate": r.rate,
            "low": r.low,
            "high": r.high,
            "interval": self.definition.interval.value,
            "text": format_rate(r),
        }


@dataclass(frozen=True)
class RunMetrics:
    """Every metric of one run, in ``METRICS`` order (keys sorted within a metric)."""

    run_id: int
    kind: str
    values: tuple[MetricValue, ...]

    def get(self, name: str, key: str = "") -> MetricValue | None:
        return next((v for v in self.values if v.name == name and v.key == key), None)

    def of(self, name: str) -> list[MetricValue]:
        return [v for v in self.values if v.name == name]

    @property
    def headline(self) -> list[MetricValue]:
        """The kind's headline metric (one value per model for calibration)."""
        values = [v for v in self.of(HEADLINE.get(self.kind, "")) if v.rate.n]
        per = values[0].definition.per if values else ""
        if per == "task":  # all tasks together
            return [v for v in values if v.key == ""]
        if per == "arm":  # each arm, not each arm's tasks
            return [v for v in values if " · " not in v.key]
        return values

    def headline_text(self) -> str:
        """One line for a list cell: the headline values, or "–" when nothing is graded."""
        values = self.headline
        if not values:
            return "–"
        if len(values) == 1:  # one model or the whole run: the metric's own label
            return f"{values[0].definition.label} {format_rate(values[0].rate)}"
        return " · ".join(f"{v.key} {format_rate(v.rate)}" for v in values)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "run_id": self.run_id,
            "kind": self.kind,
            "headline": [v.to_json() for v in self.headline],
            "headline_text": self.headline_text(),
            "metrics": [v.to_json() for v in self.values],
        }
        if self.of("mistake_location"):
            doc["f1"] = f1_scores(self)
        return doc


def headline_counts(kind: str, o: GradedSample) -> bool:
    """Whether the kind's headline metric counts this sample (``compare`` pairs these)."""
    name = HEADLINE.get(kind)
    if name is None:
        return o.correct is not None
    d = _BY_NAME[name]
    return o.stage in d.stages and sample_kind(o.stage, o.payload, run_kind=kind) in d.sample_kinds


def _rate(verdicts: Sequence[bool]) -> Rate:
    return wilson(sum(verdicts), len(verdicts))


def compute_metrics(run_id: int, kind: str, outcomes: Iterable[GradedSample]) -> RunMetrics:
    """Every metric that applies to ``kind`` from the run's samples (pure).

    ``outcomes`` are the run's finished samples with their newest grade
    (``queries.load_outcomes``); each is counted by the metrics whose stages and
    sample kinds it matches, and by no other.
    """
    by_kind: dict[SampleKind, list[GradedSample]] = defaultdict(list)
    for o in outcomes:
        by_kind[sample_kind(o.stage, o.payload, run_kind=kind)].append(o)
    values: list[MetricValue] = []
    for d in METRICS:
        if kind not in d.kinds:
            continue
        rows = [
            o
            for sk in d.sample_kinds
            for o in by_kind.get(sk, [])
            if o.stage in d.stages and in_subset(d.subset, o.payload)
        ]
        values += _values(d, rows)
    return RunMetrics(run_id, kind, tuple(values))


def _values(d: MetricDefinition, rows: list[GradedSample]) -> list[MetricValue]:
    if d.name == "judge_noticed":
        verdicts = [bool(o.payload.get("noticed")) for o in rows if _noticed(o) is not None]
        return [MetricValue(d.name, "", _rate(verdicts))] if rows else []
    if d.name in ("method_accuracy", "oracle_accuracy"):
        return _vote_table(d, rows)
    if d.per == "model":
        per: dict[str, list[bool]] = defaultdict(list)
        for o in graded(rows):
            per[o.model or "-"].append(bool(o.correct))
        for o in rows:  # a model with nothing graded yet still gets its (empty) row
            per.setdefault(o.model or "-", [])
        return [MetricValue(d.name, m, _rate(v)) for m, v in sorted(per.items())]
    if d.per in ("task", "arm"):
        return _grouped(d, rows)
    if d.per == "method":
        per = defaultdict(list)
        for o in rows:
            per.setdefault(str(o.payload.get("method") or "-"), [])
        for o in graded(rows):
            per[str(o.payload.get("method") or "-")].append(bool(o.correct))
        return [MetricValue(d.name, m, _rate(v)) for m, v in per.items()]
    if not rows:
        return []
    return [MetricValue(d.name, "", _rate([bool(o.correct) for o in graded(rows)]))]


def _grouped(d: MetricDefinition, rows: list[GradedSample]) -> list[MetricValue]:
    """Per task: all tasks ("") then each task.  Per arm: each arm, then each arm · task."""
    if not rows:
        return []
    groups: dict[str, list[bool]] = {}
    for o in rows:
        task = str(o.payload.get("task") or "-")
        keys = ["", task] if d.per == "task" else [str(o.payload.get("arm") or "-")]
        if d.per == "arm":
            keys.append(f"{keys[0]} · {task}")
        for key in keys:
            verdicts = groups.setdefault(key, [])
            if o.correct is not None:
                verdicts.append(bool(o.correct))
    ordered = sorted(groups, key=lambda k: (k.count(" · "), k != "", k))
    return [MetricValue(d.name, key, _rate(groups[key])) for key in ordered]


def f1_scores(metrics: RunMetrics) -> dict[str, float | None]:
    """ProcessBench's F1 per task key: the harmonic mean of ``mistake_location`` and
    ``no_mistake_accuracy`` (None where either is undefined or both are zero)."""
    scores: dict[str, float | None] = {}
    for found in metrics.of("mistake_location"):
        clean = metrics.get("no_mistake_accuracy", found.key)
        a, b = found.rate.rate, clean.rate.rate if clean is not None else None
        scores[found.key] = None if a is None or b is None or a + b == 0 else 2 * a * b / (a + b)
    return scores


def graded(rows: Iterable[GradedSample]) -> list[GradedSample]:
    """Samples with a verdict (True / False); timeouts and grader errors are left out."""
    return [o for o in rows if o.correct is not None]


def _noticed(o: GradedSample) -> bool | None:
    value = o.payload.get("noticed")
    return value if isinstance(value, bool) else None


def _vote_table(d: MetricDefinition, rows: list[GradedSample]) -> list[MetricValue]:
    """Per-method and oracle accuracy from the vote rows' per-method answers."""
    if not rows:
        return []
    per: dict[str, list[bool]] = {}
    for o in rows:
        methods = o.payload.get("methods") or {}
        if not isinstance(methods, dict):
            continue
        if d.name == "oracle_accuracy":
            per.setdefault("", []).append(
                any(isinstance(m, dict) and bool(m.get("correct")) for m in methods.values())
            )
            continue
        for name, m in methods.items():
            per.setdefault(str(name), []).append(isinstance(m, dict) and bool(m.get("correct")))
    return [MetricValue(d.name, k, _rate(v)) for k, v in per.items()]


# -- writing numbers ---------------------------------------------------------------------


def format_rate(rate: Rate) -> str:
    """``32.0% (23/72)``; "–" when nothing is graded."""
    if not rate.n:
        return "–"
    return f"{format_percent(rate.k, rate.n)} ({rate.k:,}/{rate.n:,})"


def format_interval(rate: Rate) -> str:
    """``[25.0%, 40.0%]``: the interval with the rate's own number of decimals."""
    if not rate.n:
        return ""
    return f"[{format_bound(rate.low, rate.n)}, {format_bound(rate.high, rate.n)}]"


def result_lines(metrics: RunMetrics) -> list[str]:
    """The run's metrics as aligned lines: label, rate, interval (the monitor's result)."""
    rows = [(v.label, format_rate(v.rate), format_interval(v.rate)) for v in metrics.values]
    for key, f1 in f1_scores(metrics).items() if metrics.of("mistake_location") else ():
        label = f"F1 · {key}" if key else "F1 (ProcessBench)"
        rows.append((label, "–" if f1 is None else f"{f1:.3f}", ""))
    if not rows:
        return []
    width = max(len(r[0]) for r in rows)
    return [f"{a:<{width}}  {b}  {c}".rstrip() for a, b, c in rows]


# -- what happened in one sample ---------------------------------------------------------


@dataclass(frozen=True)
class OutcomeLabel:
    """What a trace's sample shows happened: ``text`` for the badge, ``tone`` for its colour
    (good / bad / neutral), ``how`` (explicit correction / silent) for a recovery."""

    text: str
    tone: str
    how: str = ""


def outcome_label(
    kind: SampleKind,
    correct: bool | None,
    recovery_kind: str | None = None,
    payload: Any = None,
) -> OutcomeLabel:
    """One definition of a sample's outcome label, from the same sample kinds as the metrics.

    ``correct`` is the verdict the metrics count (``grading.verdict``: a response with no
    answer is wrong).  A perturbed continuation is recovered / not recovered (and how:
    explicit correction or silent); a critique found the labelled step, missed it, or
    raised a false alarm (its ``payload`` says which); anything else is correct / wrong.
    """
    if correct is None:
        return OutcomeLabel("ungraded", "neutral")
    if kind is SampleKind.CRITIQUE:
        return _critique_label(correct, payload if isinstance(payload, dict) else {})
    if kind is SampleKind.PERTURBED_CONTINUATION:
        if not correct:
            return OutcomeLabel("not recovered", "bad")
        how = {"explicit": "explicit correction", "silent": "silent"}.get(recovery_kind or "", "")
        return OutcomeLabel("recovered", "good", how)
    return OutcomeLabel("correct" if correct else "wrong", "good" if correct else "bad")


def _critique_label(correct: bool, payload: dict[str, Any]) -> OutcomeLabel:
    label, pick = payload.get("mistake_index"), payload.get("predicted_index")

    def step(index: Any) -> str:
        return f"step {int(index) + 1}" if isinstance(index, int) else "none"

    if correct:
        return OutcomeLabel(
            "no mistake: agreed" if label is None else f"found {step(label)}", "good"
        )
    if payload.get("readable") is False:
        return OutcomeLabel("no pick", "bad")
    if label is None:
        return OutcomeLabel(f"false alarm: {step(pick)}", "bad")
    if pick is None:
        return OutcomeLabel(f"missed {step(label)}: said none", "bad")
    return OutcomeLabel(f"wrong step: {step(pick)}, label {step(label)}", "bad")


# -- the generated docs page ------------------------------------------------------------------


def metrics_markdown() -> str:
    """``docs/metrics.md``: what each number means, written from ``METRICS``."""
    lines = [
        "# What each number means",
        "",
        "<!-- generated from workbench/core/analysis/metrics.py by"
        " `python -m workbench.core.analysis.metrics > docs/metrics.md`; do not edit -->",
        "",
        "Every rate a screen, the CLI or an export shows comes from one of these definitions.",
        "Rates are written `32.0% (23/72)`: the percent is rounded half up from the exact",
        "fraction, with one decimal below 1,000 samples and none above. Intervals are 95%.",
        "",
        "| metric | kinds | counts (stages: sample kinds) | numerator | denominator | per | interval |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in METRICS:
        counts = f"{', '.join(d.stages)}: {', '.join(k.value for k in d.sample_kinds)}"
        if d.subset:
            counts += f" ({SUBSETS[d.subset]})"
        lines.append(
            f"| `{d.name}` | {', '.join(d.kinds)} | {counts} | {d.numerator} | {d.denominator}"
            f" | {d.per} | {d.interval.value} |"
        )
    lines += ["", "## In one line", ""]
    lines += [f"- **{d.name}** ({d.label}): {d.description}" for d in METRICS]
    lines += [
        "- **F1** (mistake finding): the harmonic mean of `mistake_location` and "
        "`no_mistake_accuracy` per task, as ProcessBench reports it; a score, with no interval.",
    ]
    lines += ["", "## Headline per experiment kind", ""]
    lines += [f"- {kind}: `{name}`" for kind, name in HEADLINE.items()]
    lines += [
        "",
        "## Outcome labels on traces",
        "",
        "- perturbed continuation: recovered (explicit correction / silent) or not recovered",
        "- control continuation, straight-shot solve, method sample, backtrack: correct or wrong",
        "- critique of a labelled trace: found step N, no mistake: agreed, false alarm: step N,",
        "  missed step N: said none, wrong step, or no pick (an unreadable reply)",
        "- a reply with no extractable answer is wrong on the trace, as the metrics count it",
        "- anything without a verdict: ungraded",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the docs page generator
    print(metrics_markdown(), end="")
