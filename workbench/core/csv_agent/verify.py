"""Verify ``@name[value]`` answers against gold answers: scores, run metrics, RL rewards.

Standard library only, with no ``workbench`` or pandas import, so an RL trainer
can import this one file on its own (``trl_reward``, ``verl_compute_score``,
``openrlhf_reward_func`` at the bottom).

Comparison is tight and per type: numbers are equal when their strings are or
when ``|a - b| <= max(atol, rtol * |b|)`` (defaults ``atol=1e-6, rtol=0``);
strings casefolded with whitespace collapsed; bools from true/false/yes/no;
dates by ISO parse; lists as sets unless ``ordered``.  Type ``auto`` is the
DABench rule exactly: equal strings, or both numbers with ``|a - b| < 1e-6``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

AnswerType = Literal[
    "auto", "number", "integer", "string", "bool", "date", "list[number]", "list[string]"
]
ANSWER_TYPES: tuple[str, ...] = (
    "auto",
    "number",
    "integer",
    "string",
    "bool",
    "date",
    "list[number]",
    "list[string]",
)
SubStatus = Literal["correct", "wrong", "no_answer"]

ANSWER_PATTERN = re.compile(r"@(\w+)\[(.*?)\]", re.DOTALL)
DABENCH_TOLERANCE = 1e-6
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


@dataclass(frozen=True)
class AnswerSpec:
    """One entry of a question's ``format``: a named answer with its type and tolerance."""

    name: str
    type: str = "auto"
    description: str = ""
    atol: float = DABENCH_TOLERANCE
    rtol: float = 0.0
    ordered: bool = False  # lists: compare in order instead of as sets

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> AnswerSpec:
        """From a format entry; an answer rounded to ``decimals`` is right within half a unit."""
        if isinstance(data, str):
            return cls(name=data)
        atol = data.get("atol")
        if atol is None:
            decimals = data.get("decimals")
            atol = 0.5 * 10.0 ** -int(decimals) if decimals is not None else DABENCH_TOLERANCE
        return cls(
            name=str(data["name"]),
            type=str(data.get("type") or "auto"),
            description=str(data.get("description") or ""),
            atol=float(atol),
            rtol=float(data.get("rtol") or 0.0),
            ordered=bool(data.get("ordered", False)),
        )


@dataclass(frozen=True)
class SubVerdict:
    name: str
    status: SubStatus
    predicted: str | None
    gold: Any


@dataclass(frozen=True)
class Verdict:
    """One response scored against one question."""

    subs: tuple[SubVerdict, ...]
    parsed: bool  # at least one @name[...] was found

    @property
    def correct(self) -> bool:
        return bool(self.subs) and all(s.status == "correct" for s in self.subs)

    @property
    def score(self) -> float:
        """The proportion of sub-answers that are correct."""
        return sum(s.status == "correct" for s in self.subs) / len(self.subs) if self.subs else 0.0

    def reasons(self) -> list[str]:
        """Why it is not kept: ``wrong:<name>`` and ``no_answer``, in format order."""
        out = [f"wrong:{s.name}" for s in self.subs if s.status == "wrong"]
        if any(s.status == "no_answer" for s in self.subs):
            out.append("no_answer")
        return out


# -- extraction and comparison ---------------------------------------------------------------


def extract_answers(text: str) -> dict[str, str]:
    """``{name: value}`` for each ``@name[value]`` in ``text`` (a later one wins)."""
    return {m.group(1): m.group(2).strip() for m in ANSWER_PATTERN.finditer(text or "")}


def _number(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip().strip("'\"").strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if s.endswith("%"):
        s = s[:-1]
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _text(value: Any) -> str:
    return " ".join(str(value).strip().strip("'\"").split()).casefold()


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    s = _text(value)
    return True if s in _TRUE else False if s in _FALSE else None


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    s = str(value).strip().strip("'\"")
    try:
        parsed = datetime.fromisoformat(s)
    except ValueError:
        try:
            return date.fromisoformat(s)
        except ValueError:
            return None
    return parsed.date() if parsed.time() == datetime.min.time() else parsed  # type: ignore[return-value]


def _items(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    s = str(value).strip()
    if s.startswith("[") and s.endswith("]"):
        try:
            parsed = json.loads(s)
            if isinstance(parsed, list):
                return parsed
        except json.JSONDecodeError:
            s = s[1:-1]
    return [part.strip() for part in s.split(",") if part.strip()]


def numbers_equal(predicted: Any, gold: Any, *, atol: float, rtol: float = 0.0) -> bool:
    if str(predicted).strip() == str(gold).strip():
        return True
    a, b = _number(predicted), _number(gold)
    return a is not None and b is not None and abs(a - b) <= max(atol, rtol * abs(b))


def dabench_equal(predicted: str, gold: Any) -> bool:
    """The benchmark's rule: equal strings, or both numbers with ``|a - b| < 1e-6``."""
    if str(predicted).strip() == str(gold).strip():
        return True
    try:
        return abs(float(predicted) - float(gold)) < DABENCH_TOLERANCE
    except (TypeError, ValueError):
        return False


def compare(predicted: str, gold: Any, spec: AnswerSpec) -> bool:
    """Whether ``predicted`` (the text inside ``@name[...]``) matches ``gold`` under ``spec``."""
    kind = spec.type
    if kind == "auto":
        return dabench_equal(predicted, gold)
    if kind == "number":
        return numbers_equal(predicted, gold, atol=spec.atol, rtol=spec.rtol)
    if kind == "integer":
        a, b = _number(predicted), _number(gold)
        return a is not None and b is not None and a == round(a) and round(a) == round(b)
    if kind == "string":
        return _text(predicted) == _text(gold)
    if kind == "bool":
        a_bool = _bool(predicted)
        return a_bool is not None and a_bool == _bool(gold)
    if kind == "date":
        a_date = _date(predicted)
        return a_date is not None and a_date == _date(gold)
    if kind in ("list[number]", "list[string]"):
        return _lists_equal(_items(predicted), _items(gold), spec)
    raise ValueError(f"unknown answer type '{kind}'")


def _lists_equal(a: list[Any], b: list[Any], spec: AnswerSpec) -> bool:
    if len(a) != len(b):
        return False
    if spec.type == "list[string]":
        left, right = [_text(x) for x in a], [_text(x) for x in b]
        return left == right if spec.ordered else sorted(left) == sorted(right)
    nums_a, nums_b = [_number(x) for x in a], [_number(x) for x in b]
    if any(x is None for x in nums_a) or any(x is None for x in nums_b):
        return False
    fa, fb = (
        [float(x) for x in nums_a if x is not None],
        [float(x) for x in nums_b if x is not None],
    )
    if not spec.ordered:
        fa, fb = sorted(fa), sorted(fb)
    return all(
        abs(x - y) <= max(spec.atol, spec.rtol * abs(y)) for x, y in zip(fa, fb, strict=True)
    )


def verify(
    text: str,
    answers: Mapping[str, Any],
    format: Sequence[AnswerSpec | Mapping[str, Any] | str] = (),
) -> Verdict:
    """Score a final message against gold ``answers``; ``format`` gives types (default auto)."""
    specs = [s if isinstance(s, AnswerSpec) else AnswerSpec.from_json(s) for s in format]
    known = {s.name for s in specs}
    specs += [AnswerSpec(name=n) for n in answers if n not in known]
    found = extract_answers(text)
    subs = []
    for spec in specs:
        if spec.name not in answers:
            continue
        gold = answers[spec.name]
        predicted = found.get(spec.name)
        if predicted is None:
            status: SubStatus = "no_answer"
        else:
            status = "correct" if compare(predicted, gold, spec) else "wrong"
        subs.append(SubVerdict(spec.name, status, predicted, gold))
    return Verdict(subs=tuple(subs), parsed=bool(found))


# -- run metrics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunScores:
    """DABench's three accuracies and the format-parse rate over one response per question."""

    n_questions: int
    abq: float  # accuracy by question: all sub-answers correct
    pasq: float  # proportional by sub-question: mean per-question proportion
    uasq: float  # uniform by sub-question: correct sub-answers over all sub-answers
    parse_rate: float  # responses with at least one @name[...]


def score_run(verdicts: Sequence[Verdict]) -> RunScores:
    n = len(verdicts)
    if not n:
        return RunScores(0, 0.0, 0.0, 0.0, 0.0)
    subs = [s for v in verdicts for s in v.subs]
    return RunScores(
        n_questions=n,
        abq=sum(v.correct for v in verdicts) / n,
        pasq=sum(v.score for v in verdicts) / n,
        uasq=sum(s.status == "correct" for s in subs) / len(subs) if subs else 0.0,
        parse_rate=sum(v.parsed for v in verdicts) / n,
    )


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for a rate; (0, 1) with no trials."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from n attempts of which c are correct."""
    if k > n or n <= 0:
        raise ValueError(f"pass@k needs 1 <= k <= n (k={k}, n={n})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass(frozen=True)
class PassRate:
    """One question's attempts: pass rate with its Wilson interval, and pass@k."""

    n: int
    correct: int
    rate: float
    low: float
    high: float
    pass_at: dict[int, float] = field(default_factory=dict)


def pass_rate(outcomes: Sequence[bool], ks: Iterable[int] = (1,)) -> PassRate:
    n, c = len(outcomes), sum(bool(o) for o in outcomes)
    low, high = wilson(c, n)
    return PassRate(
        n=n,
        correct=c,
        rate=c / n if n else 0.0,
        low=low,
        high=high,
        pass_at={k: pass_at_k(n, c, k) for k in ks if 1 <= k <= n},
    )


# -- DAG overlap and the keep rule -----------------------------------------------------------

_NON_KEY_ARGS = frozenset({"frame", "save_as", "seed"})


def call_key(tool: str, args: Mapping[str, Any]) -> str:
    """A tool call as (tool, key arguments): frame names and seeds do not count."""
    key = {k: v for k, v in args.items() if k not in _NON_KEY_ARGS}
    return f"{tool}:{json.dumps(key, sort_keys=True, separators=(',', ':'))}"


@dataclass(frozen=True)
class Overlap:
    jaccard: float  # of the (tool, key-args) sets
    ordered: float  # longest common subsequence over the DAG's length


def dag_overlap(
    calls: Sequence[tuple[str, Mapping[str, Any]]], dag: Sequence[Mapping[str, Any]]
) -> Overlap:
    """How much of the DAG a trajectory's tool calls retrace (loose: a guide, not a verdict)."""
    a = [call_key(t, args) for t, args in calls]
    b = [call_key(str(n.get("tool")), dict(n.get("args") or {})) for n in dag]
    union = set(a) | set(b)
    jaccard = len(set(a) & set(b)) / len(union) if union else 1.0
    return Overlap(jaccard=jaccard, ordered=_lcs(a, b) / len(b) if b else 1.0)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class KeepDecision:
    keep: bool
    reasons: tuple[str, ...]  # why not kept (empty when kept)
    tags: tuple[str, ...]  # e.g. alt_solution


def keep_decision(
    verdict: Verdict,
    *,
    stop_reason: str = "answered",
    overlap: Overlap | None = None,
    min_overlap: float = 0.5,
) -> KeepDecision:
    """The default keep rule: every sub-answer correct in an answered conversation."""
    reasons = [] if stop_reason == "answered" else [stop_reason]
    reasons += verdict.reasons()
    tags = []
    if not reasons and overlap is not None and overlap.jaccard < min_overlap:
        tags.append("alt_solution")
    return KeepDecision(keep=not reasons, reasons=tuple(reasons), tags=tuple(tags))


# -- reward adapters for RL trainers ---------------------------------------------------------


def _as_text(completion: Any) -> str:
    """A completion as text: a string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        for message in reversed(list(completion)):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                return str(message.get("content") or "")
    return ""


def _as_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value


def _truth(answers: Any, format: Any = None) -> tuple[dict[str, Any], list[Any]]:
    """(answers, format) from a ground truth in any of the exported shapes."""
    data = _as_json(answers)
    if isinstance(data, Mapping) and "answers" in data and isinstance(data["answers"], Mapping):
        return dict(data["answers"]), list(format or data.get("format") or [])
    if isinstance(data, Mapping):
        return dict(data), list(_as_json(format) or [])
    if isinstance(data, list):  # DABench labels: [[name, value], ...]
        return {str(n): v for n, v in data}, list(_as_json(format) or [])
    return {}, []


def trl_reward(
    completions: Sequence[Any], answers: Sequence[Any], format: Sequence[Any], **kw: Any
) -> list[float]:
    """TRL (GRPO) reward function: the proportion of correct sub-answers per completion."""
    out = []
    for completion, gold, spec in zip(completions, answers, format, strict=True):
        truth, specs = _truth(gold, _as_json(spec))
        out.append(float(verify(_as_text(completion), truth, specs).score) if truth else 0.0)
    return out


def verl_compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None
) -> float:
    """verl's ``compute_score``: ground truth is the exported JSON of answers + format + dag."""
    truth, specs = _truth(ground_truth)
    return float(verify(solution_str, truth, specs).score) if truth else 0.0


def openrlhf_reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]
) -> dict[str, Any]:
    """OpenRLHF's remote reward function (``--label_key answers``): rewards per query."""
    rewards = []
    for query, prompt, label in zip(queries, prompts, labels, strict=True):
        response = query[len(prompt) :] if query.startswith(prompt) else query
        truth, specs = _truth(label)
        rewards.append(float(verify(response, truth, specs).score) if truth else 0.0)
    return {"rewards": rewards, "scores": rewards, "extra_logs": {}}
