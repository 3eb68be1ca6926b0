"""What the three recovery experiments share: continue from a prefix, grade, detect, judge.

Perturb-and-recover, weak-model prefix and on-policy prefix differ only in
where the prefix comes from.  Each turns its prefixes into ``Prefix`` values;
this module makes the completer's work items (k continuations each, the
continuation method from the config and recorded on every call), grades the
stored outputs, runs recovery detection on them, and builds and reads the
optional LLM-judge stage.  Everything after the model calls reads only the
store, so it can be re-run after changing the grader.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import Field

from workbench.core.analysis import load_outcomes
from workbench.core.engine import WorkItem, item_key
from workbench.core.experiments.base import (
    ContinuationChoice,
    ExperimentConfig,
    draw_seed,
    renamed,
)
from workbench.core.grading import grade_many, store_grades
from workbench.core.grading.detection import detect_recovery, parse_judge
from workbench.core.library import Problem, get_problem, join_steps, stepify
from workbench.core.payloads import ContinuationPayload, JudgePayload, PrefixPayload, SetAsideFields
from workbench.core.prompts import resolve_version
from workbench.core.providers import Continuation, ModelRequest, split_model_ref
from workbench.core.status import SampleStatus
from workbench.core.store import Store, dumps, now_iso

COMPLETER = "completer"
JUDGE = "judge"


class PrefixConfig(ExperimentConfig):
    """Fields of every experiment whose completer continues from a prefix."""

    completer: str  # "provider:model"
    # continuations per prefix (formerly ``k``)
    samples: int = Field(default=4, ge=1, le=10_000, validation_alias=renamed("samples", "k"))
    continuation: ContinuationChoice = "auto"  # raw / prefill / emulate / auto (adapter's best)
    continue_prompt: str = "continue"  # prompt name, "name@version" or a version id
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=1)
    judge: str | None = None  # a model ref turns on the judge stage
    judge_prompt: str = "judge-recovery"
    grade_timeout_s: float = Field(default=5.0, gt=0)


@dataclass(frozen=True)
class Prefix:
    """A partial solution to continue, the sample it came from, and what to store with it."""

    problem: Problem
    parent_id: int | None
    text: str
    payload: PrefixPayload = field(default_factory=lambda: PrefixPayload())


def problem_steps(problem: Problem) -> list[str]:
    """The problem's stored steps, or its solution stepified now."""
    return list(problem.steps) or stepify(problem.solution, source=problem.source)


class Problems:
    """A per-call cache of ``get_problem`` (post-processing looks problems up per sample)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, Problem] = {}

    def get(self, problem_id: str) -> Problem:
        if problem_id not in self._cache:
            self._cache[problem_id] = get_problem(self.store, problem_id)
        return self._cache[problem_id]


def cut_trace(text: str, fraction: float, *, source: str = "auto") -> tuple[str, int, int] | None:
    """A prefix of a model's own solution: (prefix text, steps kept, steps in the trace).

    Keeps ``round(fraction * n)`` steps, at least one, and never the last step (it
    holds the final answer).  None when the trace has fewer than two steps.
    """
    steps = stepify(text, source=source)
    n = len(steps)
    if n < 2:
        return None
    keep = min(max(1, round(fraction * n)), n - 1)
    return join_steps(steps[:keep]) + "\n", keep, n


def trace_prefix(
    problem: Problem,
    sample_id: int,
    output: str,
    fraction: float,
    identity: PrefixPayload,
) -> Prefix | None:
    """A model's own (wrong) trace cut by ``cut_trace``, as a prefix to continue.

    ``identity`` says where the trace came from (``prefix_kind`` ...); the cut
    itself is recorded after it.  None when the trace is too short to cut.
    """
    cut = cut_trace(output, fraction, source=problem.source)
    if cut is None:
        return None
    text, keep, n = cut
    payload = PrefixPayload(
        truncate_at=keep,
        n_steps=n,
        last_prefix_step=text.rstrip("\n").rsplit("\n", 1)[-1],
        perturbed=True,
    )
    return Prefix(problem, sample_id, text, identity | payload)


def continuation_of(config: PrefixConfig) -> Continuation | None:
    return None if config.continuation == "auto" else Continuation(config.continuation)


def continue_items(
    config: PrefixConfig,
    store: Store,
    stage: str,
    prefixes: Iterable[Prefix],
    *,
    model_ref: str | None = None,
    k: int | None = None,
    role: str = COMPLETER,
) -> Iterator[WorkItem]:
    """``config.samples`` (or ``k``) continuations of each prefix by the completer (or ``model_ref``).

    Seeds come from the stage's own stream (``draw_seed``), so a check or a control never
    shares a cache key with a continuation of the same prefix.
    """
    version = resolve_version(store, config.continue_prompt)
    template = version.template
    ref = model_ref or config.completer
    _, model = split_model_ref(ref)
    for p in prefixes:
        variables = {"question": p.problem.question}
        for i in range(config.samples if k is None else k):
            request = template.request(
                model,
                variables,
                prefix=p.text,
                continuation=continuation_of(config),
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=draw_seed(config.seed, i, stage),  # own stream: see base.SEED_STREAMS
            )
            yield WorkItem(
                key=item_key(stage, p.problem.id, i, p.parent_id if p.parent_id else "-"),
                stage=stage,
                role=role,
                model_ref=ref,
                request=request,
                problem_id=p.problem.id,
                sample_index=i,
                parent_id=p.parent_id,
                payload=_continuation_payload(p.payload, version.id, config.continuation),
            )


def _continuation_payload(
    prefix: PrefixPayload, prompt_version: int, requested: str
) -> ContinuationPayload:
    """A continuation's payload: its prefix's, and how it was asked for."""
    payload = ContinuationPayload(prompt_version=prompt_version, continuation_requested=requested)
    return cast(ContinuationPayload, prefix | payload)


def grade_stage(
    store: Store, run_id: int, stage: str, problems: Problems, *, timeout_s: float = 5.0
) -> list[tuple[dict[str, Any], bool | None]]:
    """Grade every finished sample of ``stage`` against its problem's answer (re-runnable).

    Returns (sample row, correct) pairs for the caller's own bookkeeping.
    """
    samples = [s for s in store.samples(run_id, stage, status=SampleStatus.DONE) if s["problem_id"]]
    by_source: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_source.setdefault(problems.get(s["problem_id"]).source, []).append(s)
    results: list[tuple[dict[str, Any], bool | None]] = []
    for source, group in by_source.items():
        golds = [problems.get(s["problem_id"]).answer for s in group]
        grades = grade_many(
            [(s["output"] or "", g) for s, g in zip(group, golds, strict=True)],
            source=source,
            timeout_s=timeout_s,
        )
        store_grades(
            store, [(s["id"], g, gr) for s, g, gr in zip(group, golds, grades, strict=True)]
        )
        results += [(s, gr.verdict) for s, gr in zip(group, grades, strict=True)]
    return results


def grade_continuations(
    store: Store, run_id: int, stage: str, config: PrefixConfig, *, detect: bool = True
) -> None:
    """Grade a stage of continuations and, with ``detect``, store recovery detection on each."""
    problems = Problems(store)
    graded = grade_stage(store, run_id, stage, problems, timeout_s=config.grade_timeout_s)
    if detect:
        detect_stage(store, graded, problems)


def detect_stage(
    store: Store, graded: Sequence[tuple[dict[str, Any], bool | None]], problems: Problems
) -> None:
    """Store recovery detection (kind, spans) on each graded continuation's payload."""
    stamp = now_iso()
    with store.transaction() as conn:
        for s, correct in graded:
            p = s["payload"]
            problem = problems.get(s["problem_id"])
            # numbers of the question and of the untouched steps before the perturbed one
            # are no evidence of a recomputation when they reappear
            before = problem_steps(problem)[: int(p["step_index"])] if "step_index" in p else []
            context = "\n".join([problem.question, *before])
            found = detect_recovery(
                s["output"] or "",
                correct=correct,
                original_step=p.get("original_step"),
                perturbed_step=p.get("perturbed_step"),
                context=context,
            )
            detected = ContinuationPayload(detection=found.to_payload(), recovery_kind=found.kind)
            payload = {**p, **detected}
            conn.execute(
                "UPDATE samples SET payload=?, updated_at=? WHERE id=?",
                (dumps(payload), stamp, s["id"]),
            )


def judge_items(config: PrefixConfig, store: Store, run_id: int, stage: str) -> Iterator[WorkItem]:
    """One judge request per finished continuation of ``stage`` (when a judge is configured)."""
    if config.judge is None:
        return
    version = resolve_version(store, config.judge_prompt)
    template = version.template
    _, model = split_model_ref(config.judge)
    problems = Problems(store)
    for s in store.samples(run_id, stage, status=SampleStatus.DONE):
        p = s["payload"]
        problem = problems.get(s["problem_id"])
        variables = {
            "question": problem.question,
            "original_step": p.get("original_step") or "(unknown: the prefix is a model's own)",
            "perturbed_step": p.get("perturbed_step") or p.get("last_prefix_step") or "",
            "continuation": s["output"] or "",
            "error_type": p.get("error_type_name") or p.get("error_type") or "mistake",
        }
        request: ModelRequest = template.request(model, variables)
        yield WorkItem(
            key=item_key(JUDGE, s["problem_id"], s["sample_index"], s["id"]),
            stage=JUDGE,
            role=JUDGE,
            model_ref=config.judge,
            request=request,
            problem_id=s["problem_id"],
            sample_index=s["sample_index"],
            parent_id=s["id"],
            payload=JudgePayload(prompt_version=version.id, judged_stage=stage),
        )


def read_judgements(store: Store, run_id: int) -> None:
    """Parse each judge reply and store the verdict on the judged continuation too."""
    rows = store.samples(run_id, JUDGE, status=SampleStatus.DONE)
    with store.transaction():
        for s in rows:
            verdict = parse_judge(s["output"] or "")
            store.update_sample_payload(s["id"], JudgePayload(noticed=verdict))
            if s["parent_id"] is not None:
                store.update_sample_payload(
                    s["parent_id"], ContinuationPayload(judge_noticed=verdict)
                )


def set_aside(store: Store, sample_id: int, status: SampleStatus, kind: str, reason: str) -> None:
    """Mark a sample as set aside (status ``invalid`` / ``skipped``) with its reason."""
    with store.transaction():
        store.update_sample_payload(
            sample_id, SetAsideFields(set_aside=reason, set_aside_kind=kind)
        )
        store.update("samples", sample_id, {"status": status})


def stage_rate(store: Store, run_id: int, stage: str) -> dict[str, Any]:
    """``rate_summary`` of a stage's graded samples (newest grade of each)."""
    return rate_summary((o, o.correct) for o in load_outcomes(store, run_id, stage=stage))


def rate_summary(graded: Iterable[tuple[Any, bool | None]]) -> dict[str, Any]:
    """{n, correct, rate} over graded pairs (None verdicts left out)."""
    verdicts = [c for _, c in graded if c is not None]
    n = len(verdicts)
    k = sum(verdicts)
    return {"n": n, "correct": k, "rate": k / n if n else None}
