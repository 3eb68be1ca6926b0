"""Voting and selection for the methods experiment: pure functions, no I/O.

Self-consistency: cluster one method's sampled answers by equivalence and take
the biggest cluster.  Cross-method vote: an answer wins when at least two
methods agree.  When they do not, a selector model picks a letter among the
candidates (or a reflective re-attempt answers again).  Ties are broken
deterministically (the cluster whose first member came first) and reported.

Equivalence is a parameter: numeric tolerance for GSM8K, the shared grader's
equivalence for MATH/OCW (see ``numeric_equivalence`` / ``grader_equivalence``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from workbench.core.grading.answers import clean_answer, parse_number

Equivalence = Callable[[str, str], bool]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Cluster:
    """Equivalent answers: the first one seen represents the rest."""

    answer: str
    members: tuple[int, ...]  # indices into the voted sequence


@dataclass(frozen=True)
class Vote:
    """The outcome of a majority vote over one sequence of answers."""

    answer: str | None  # None when no answer was given at all
    count: int  # votes for the winner
    valid: int  # answers that were not None
    total: int  # answers including failures
    clusters: tuple[Cluster, ...] = ()  # biggest first, then by first appearance
    tie: bool = False  # the winner shared the top count with another cluster
    winner_index: int | None = None  # index of the first member of the winning cluster

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


def _same(a: str, b: str, same: Equivalence) -> bool:
    return a == b or same(a, b)


def cluster_answers(answers: Sequence[str | None], same: Equivalence) -> list[Cluster]:
    """Group equal answers in order of first appearance (None = no answer, left out)."""
    reps: list[str] = []
    members: list[list[int]] = []
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        for j, rep in enumerate(reps):
            if _same(answer, rep, same):
                members[j].append(i)
                break
        else:
            reps.append(answer)
            members.append([i])
    return [Cluster(r, tuple(m)) for r, m in zip(reps, members, strict=True)]


def majority_vote(answers: Sequence[str | None], same: Equivalence) -> Vote:
    """Self-consistency: the most common answer; a tie goes to the earliest cluster."""
    clusters = cluster_answers(answers, same)
    valid = sum(1 for a in answers if a is not None)
    if not clusters:
        return Vote(None, 0, 0, len(answers))
    ordered = sorted(clusters, key=lambda c: (-len(c.members), c.members[0]))
    best = ordered[0]
    tie = len(ordered) > 1 and len(ordered[1].members) == len(best.members)
    return Vote(
        best.answer,
        len(best.members),
        valid,
        len(answers),
        tuple(ordered),
        tie,
        best.members[0],
    )


# -- across methods ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One method's answer offered to the cross-method vote or the selector."""

    label: str  # A / B / C ...
    method: str
    answer: str


@dataclass(frozen=True)
class MethodVote:
    """Cross-method agreement for one problem.

    ``status``: ``unanimous`` (every method answered, all agree), ``majority``
    (at least two agree), ``disagree`` (two or more answers, no two agree),
    ``single`` (only one method answered), ``none`` (no method answered).
    """

    status: str
    answer: str | None
    agreeing: tuple[str, ...] = ()  # methods in the winning group
    candidates: tuple[Candidate, ...] = ()  # one per answering method, in method order
    tie: bool = False  # two groups of equal size (e.g. 2-2 with four methods)

    @property
    def needs_resolution(self) -> bool:
        return self.status == "disagree"


def cross_method_vote(answers: Mapping[str, str | None], same: Equivalence) -> MethodVote:
    """Answer when at least two methods agree; ``answers`` is ordered (method order)."""
    methods = list(answers)
    present = [m for m in methods if answers[m] is not None]
    candidates = tuple(Candidate(LETTERS[i], m, str(answers[m])) for i, m in enumerate(present))
    if not present:
        return MethodVote("none", None)
    if len(present) == 1:
        return MethodVote("single", answers[present[0]], (present[0],), candidates)
    vote = majority_vote([answers[m] for m in methods], same)
    if vote.count < 2:
        return MethodVote("disagree", None, (), candidates)
    winner = next(c for c in vote.clusters if c.members[0] == vote.winner_index)
    agreeing = tuple(methods[i] for i in winner.members)
    status = "unanimous" if vote.count == len(methods) else "majority"
    return MethodVote(status, vote.answer, agreeing, candidates, vote.tie)


# -- selection -------------------------------------------------------------------------

_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
_SAYS_LETTER = re.compile(  # the phrase in any case, the letter in capitals
    r"(?i:best solution is|answer is|choose|chosen|select|pick|correct (?:one|solution) is)"
    r"\s*:?\s*\(?\**([A-Z])\b"
)


def parse_selection(text: str, n_candidates: int) -> str | None:
    """The letter a selector chose, or None when it named no valid candidate.

    A verdict phrase ("The best solution is (B).") wins; otherwise the last
    letter in parentheses (the verdict comes last), otherwise a bare letter.
    """
    valid = set(LETTERS[:n_candidates])
    text = text or ""
    said: list[str] = [c for c in _SAYS_LETTER.findall(text) if c in valid]
    if said:
        return said[-1]
    parens: list[str] = [c for c in _PAREN_LETTER.findall(text) if c in valid]
    if parens:
        return parens[-1]
    bare = text.strip().strip(".").strip("()*").strip()
    return bare if bare in valid else None


# -- equivalences ------------------------------------------------------------------------


def numeric_equivalence(rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> Equivalence:
    """GSM8K: numbers equal within tolerance; anything else compared as cleaned text."""

    def same(a: str, b: str) -> bool:
        na, nb = parse_number(clean_answer(a)), parse_number(clean_answer(b))
        if na is not None and nb is not None:
            x, y = float(na.value), float(nb.value)
            return abs(x - y) <= max(abs_tol, rel_tol * max(abs(x), abs(y)))
        return clean_answer(a).casefold() == clean_answer(b).casefold()

    return same


@dataclass
class grader_equivalence:
    """MATH/OCW: the shared grader decides (sympy via math-verify); results are cached."""

    timeout_s: float = 5.0
    cache: dict[tuple[str, str], bool] = field(default_factory=dict)

    def __call__(self, a: str, b: str) -> bool:
        if clean_answer(a) == clean_answer(b):
            return True
        key = (a, b) if a <= b else (b, a)
        if key not in self.cache:
            from workbench.core.grading import grade_answer

            grade = grade_answer(a, b, timeout_s=self.timeout_s)
            self.cache[key] = bool(grade.correct)
        return self.cache[key]
