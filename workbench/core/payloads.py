"""Sample payloads: the JSON each stage stores in ``samples.payload``, defined once.

Writers (experiments, ``perturb``) build these dicts and readers (``views.traces``,
``analysis``) read them through the same definitions, so a key that no writer
writes cannot be read without mypy saying so.  Stored JSON stays plain dicts: the
TypedDicts only name the keys and their types.

The engine adds ``EngineFields`` to each when it stores the sample.
A continuation's payload starts as a copy of its prefix's (``PrefixPayload``), so
readers that merge a sample with its ancestors see ``TracePayload``: every key any
stage writes, all optional.
"""

from __future__ import annotations

from typing import Any, TypedDict

# -- pieces ---------------------------------------------------------------------------


class PlanFields(TypedDict):
    """What to perturb, decided before any call (``PerturbPlan.to_payload``)."""

    step_index: int  # 0-based index of the perturbed step
    error_type: str  # taxonomy id


class CheckFields(TypedDict):
    """A perturber's output after validation (``PerturbCheck.to_payload``)."""

    perturbed_step: str | None
    flags: list[str]
    flag_reasons: list[str]
    valid: bool


class TruncationSpec(TypedDict):
    strategy: str  # after / after_k / random
    k: int  # original steps kept after the perturbed one
    cut: int  # steps in the prefix


class TruncationFields(TypedDict):
    """Where a valid perturbation is cut (``Truncation.to_payload``)."""

    truncation: TruncationSpec
    truncate_at: int  # number of steps kept in the prefix
    prefix: str


class ValidationFields(TypedDict, total=False):
    """``check_and_truncate``: the check (``CheckFields``), and the truncation
    (``TruncationFields``) when the output is valid."""

    perturbed_step: str | None
    flags: list[str]
    flag_reasons: list[str]
    valid: bool
    truncation: TruncationSpec
    truncate_at: int
    prefix: str


class SetAsideFields(TypedDict, total=False):
    """A sample left out of the experiment, and why (status ``invalid`` / ``skipped``)."""

    set_aside: str
    set_aside_kind: str  # invalid / no_steps / too_easy / too_short


class EngineFields(TypedDict, total=False):
    """What the engine adds to every stage's payload when it stores the sample
    (``engine.records``)."""

    finish_reason: str | None
    continuation: str  # the continuation method used, when continuing a prefix
    completions: list[str]  # every completion, when a request asked for several
    error_kind: str  # an error sample's ``ErrorKind``
    error: str | None


# -- one per stage --------------------------------------------------------------------


class SolvePayload(SetAsideFields, total=False):
    """A straight-shot solve (calibration ``solve``, weak-prefix ``weak-solve``)."""

    prompt_version: int
    # imported published traces (``published_traces``)
    imported: str
    source_field: str
    source_is_correct: bool
    test_index: int


class PerturbExtras(TypedDict, total=False):
    """What a perturb item records beside its plan (``payload_for``'s ``extra``)."""

    attempt: int  # 1 = first try; later attempts carry the validation feedback
    prompt_version: int  # recovery
    error_type_name: str  # recovery
    prompt_version_id: int  # the prompt playground
    gold: str  # the prompt playground: the problem's answer, for the check


class PerturbPayload(PlanFields, ValidationFields, SetAsideFields, PerturbExtras, total=False):
    """A perturb attempt (recovery ``perturb`` / retries, the prompt playground)."""

    original_step: str
    n_steps: int


class PrefixPayload(TypedDict, total=False):
    """What a continuation is continued from (``continue_stage.Prefix.payload``)."""

    prefix_kind: str  # perturbed / original / weak / on_policy
    perturbed: bool
    truncate_at: int
    n_steps: int
    # from a perturbation (off-policy)
    step_index: int
    error_type: str
    original_step: str
    perturbed_step: str | None
    # from the model's own trace (weak-prefix, on-policy)
    last_prefix_step: str
    prefix_model: str
    source_run: int


class ContinuationPayload(PrefixPayload, total=False):
    """A completer's continuation (``continue`` / ``check`` / ``control`` stages)."""

    prompt_version: int
    continuation_requested: str
    detection: dict[str, Any]  # ``RecoveryDetection.to_payload``
    recovery_kind: str
    judge_noticed: bool | None  # copied from the judge's verdict


class JudgePayload(TypedDict, total=False):
    """An LLM judge's look at one continuation."""

    prompt_version: int
    judged_stage: str
    noticed: bool | None


class ExecPayload(TypedDict):
    """One sandbox execution of a program (``SandboxResult.to_json``)."""

    ok: bool
    answer: str | None
    result: Any
    result_repr: str | None
    result_type: str | None
    error: str | None
    error_kind: str | None
    limit_hit: str | None
    duration_s: float
    stdout: str
    stderr: str
    violations: list[str]
    isolation: str  # sandbox.Isolation: bwrap / namespace / rlimits-only
    syscall_filter: bool


class MethodSolvePayload(TypedDict, total=False):
    """One methods-experiment solve (cot / pal / plan), then its parsed answer."""

    method: str
    style: str
    prompt: str
    temperature: float
    plan_mode: str
    plan_index: int
    answer: str | None
    answer_how: str | None
    answer_error: str | None
    answer_error_kind: str | None
    code_sha: str | None
    exec: ExecPayload | None


class StepLabelFields(TypedDict, total=False):
    """A labelled trace's ground truth (BIG-Bench Mistake, ProcessBench), copied onto each
    sample that reads the trace."""

    task: str | None
    answer_kind: str  # exact / numeric / option (library.formats.AnswerKind)
    mistake_index: int | None  # 0-based first wrong step; None: labelled free of mistakes
    n_steps: int


class CritiquePayload(StepLabelFields, total=False):
    """A critic's reading of a labelled trace (``locate``), or of one step (``step-check``)."""

    prompt_version: int
    variant: str  # direct (which step?) / step (is this step correct?)
    step_index: int  # step-check: the step asked about
    verdict: bool | None  # step-check: yes (correct) / no; None: unreadable
    predicted_index: int | None  # locate: the first wrong step named; None: "no mistake"
    readable: bool


class BacktrackPayload(StepLabelFields, total=False):
    """A labelled trace redrawn from one step (``resample``) and continued (``backtrack``)."""

    prompt_version: int
    continuation_requested: str
    arm: str  # mistake (at the labelled step) / random (the control)
    cut: int  # steps kept before the redrawn one
    original_step: str
    original_correct: bool  # the trace's own final answer is right
    new_step: str | None
    same_step: bool  # the redraw reproduced the original step


class TracePayload(
    SolvePayload,
    ContinuationPayload,
    JudgePayload,
    MethodSolvePayload,
    CritiquePayload,
    BacktrackPayload,
    EngineFields,
    total=False,
):
    """A sample's payload merged over its ancestors' (what trace and analysis readers see).

    Every key any stage writes, all optional: ``PerturbPayload``'s keys beyond those a
    prefix already carries are repeated here.
    """

    flags: list[str]
    flag_reasons: list[str]
    valid: bool
    truncation: TruncationSpec
    prefix: str
    attempt: int
    error_type_name: str
    prompt_version_id: int
    gold: str
