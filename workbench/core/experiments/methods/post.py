"""Post-processing of the methods experiment: parse, execute, grade, vote.

Reads only the store and never calls a model, so every function here can be
re-run (after a grader or sandbox change) on a finished run.  Results land on
the samples' payloads (answer, how it was found, the sandbox record, the
error and its kind) and in one ``vote`` row per problem (stage ``vote``, no
call) holding each method's self-consistency vote, the cross-method vote and
how a disagreement was resolved.  Every answer goes through the shared grader.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.engine import item_key
from workbench.core.experiments.methods.parse import cot_answer, extract_code
from workbench.core.experiments.methods.vote import (
    Equivalence,
    MethodVote,
    cross_method_vote,
    grader_equivalence,
    majority_vote,
    numeric_equivalence,
    parse_selection,
)
from workbench.core.grading import Grade, grade_answer, store_grades
from workbench.core.library import Problem
from workbench.core.payloads import MethodSolvePayload
from workbench.core.sandbox import Limits, run_many
from workbench.core.status import SampleStatus
from workbench.core.store import Store, dumps, now_iso

PLAN = "plan"
SOLVE = "solve"
RESOLVE = "resolve"
VOTE = "vote"

METHOD_NAMES = {
    "cot": "chain of thought",
    "pal": "a program (program-aided)",
    "plan": "plan-then-code",
}


@dataclass(frozen=True)
class PostOptions:
    methods: tuple[str, ...]
    disagreement: str = "select"  # select / reflect / first
    numeric_tolerance: float = 1e-6
    grade_timeout_s: float = 5.0
    limits: Limits = field(default_factory=Limits)


def _program_grade(error: str, kind: str | None) -> Grade:
    """A program that failed is graded as an error outcome with the sandbox's reason."""
    return Grade(None, None, None, "error", "program", f"{kind or 'error'}: {error}")


# -- samples: parse and execute --------------------------------------------------------------


def process_solutions(
    store: Store,
    run_id: int,
    problems: Mapping[str, Problem],
    opts: PostOptions,
    *,
    force: bool = False,
) -> None:
    """Parse / execute / grade every finished solve sample, then write the vote rows.

    Programs whose code is unchanged since their last run keep their recorded
    result unless ``force`` is set.
    """
    rows = [
        s
        for s in store.samples(run_id, SOLVE, status=SampleStatus.DONE)
        if s["problem_id"] in problems
    ]
    updates: dict[int, MethodSolvePayload] = {}
    to_run: list[tuple[dict[str, Any], str, str]] = []
    for row in rows:
        payload, sid = row["payload"], int(row["id"])
        if payload.get("method") == "cot":
            parsed = cot_answer(row["output"] or "", payload.get("style", "gsm8k"))
            missing = parsed.answer is None
            updates[sid] = MethodSolvePayload(
                answer=parsed.answer,
                answer_how=parsed.how,
                answer_error="no final answer line" if missing else None,
                answer_error_kind="no_answer" if missing else None,
            )
            continue
        code = extract_code(row["output"] or "")
        if code is None:
            updates[sid] = MethodSolvePayload(
                answer=None,
                answer_how="program",
                exec=None,
                code_sha=None,
                answer_error="no code in the reply",
                answer_error_kind="no_code",
            )
            continue
        sha = hashlib.sha256(code.encode()).hexdigest()[:16]
        if not force and payload.get("code_sha") == sha and payload.get("exec"):
            continue
        to_run.append((row, code, sha))
    results = run_many([code for _, code, _ in to_run], limits=opts.limits, entry="solution")
    for (row, _, sha), result in zip(to_run, results, strict=True):
        updates[int(row["id"])] = MethodSolvePayload(
            answer=result.answer if result.ok else None,
            answer_how="program",
            code_sha=sha,
            exec=result.to_json(),
            answer_error=result.error,
            answer_error_kind=result.error_kind,
        )
    with store.transaction():
        for sid, values in updates.items():
            store.update_sample_payload(sid, values)
    _grade_samples(store, run_id, problems, opts)
    write_votes(store, run_id, problems, opts)


def _grade_samples(
    store: Store, run_id: int, problems: Mapping[str, Problem], opts: PostOptions
) -> None:
    grades = []
    for row in store.samples(run_id, SOLVE, status=SampleStatus.DONE):
        problem = problems.get(row["problem_id"])
        if problem is None:
            continue
        p = row["payload"]
        if p.get("answer") is None and p.get("answer_error_kind") not in (None, "no_answer"):
            grade = _program_grade(str(p.get("answer_error")), p.get("answer_error_kind"))
        else:
            grade = grade_answer(p.get("answer"), problem.answer, timeout_s=opts.grade_timeout_s)
        grades.append((int(row["id"]), problem.answer, grade))
    if grades:
        store_grades(store, grades)


def process_resolutions(
    store: Store, run_id: int, problems: Mapping[str, Problem], opts: PostOptions
) -> None:
    """Read the selector / re-attempt outputs into the vote rows (re-runnable)."""
    write_votes(store, run_id, problems, opts)


# -- votes -------------------------------------------------------------------------------


def _equivalences(opts: PostOptions) -> dict[str, Equivalence]:
    return {
        "gsm8k": numeric_equivalence(opts.numeric_tolerance, opts.numeric_tolerance),
        "math": grader_equivalence(opts.grade_timeout_s),
    }


def write_votes(
    store: Store, run_id: int, problems: Mapping[str, Problem], opts: PostOptions
) -> None:
    """One ``vote`` row per problem with any solve sample: votes, resolution, final answer."""
    by_problem: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in store.samples(run_id, SOLVE):
        if row["problem_id"] in problems:
            by_problem[row["problem_id"]][row["payload"].get("method", "")].append(row)
    resolves = {s["problem_id"]: s for s in store.samples(run_id, RESOLVE)}
    same_by_style = _equivalences(opts)
    votes: list[tuple[Problem, dict[str, Any], Grade]] = []
    resolve_grades: list[tuple[int, str, Grade]] = []
    for pid, methods in by_problem.items():
        problem = problems[pid]
        style = next(iter(methods.values()))[0]["payload"].get("style", "gsm8k")
        same = same_by_style.get(style, same_by_style["math"])
        per_method, answers = _method_votes(methods, opts, same, problem)
        mv = cross_method_vote(answers, same)
        resolution_row = resolves.get(pid)
        final, resolution = _resolve(mv, resolution_row, opts, style)
        grade = grade_answer(final, problem.answer, timeout_s=opts.grade_timeout_s)
        if resolution_row is not None and resolution_row["status"] == SampleStatus.DONE:
            resolve_grades.append((int(resolution_row["id"]), problem.answer, grade))
        payload = {
            "style": style,
            "status": mv.status,
            "agreeing": list(mv.agreeing),
            "tie": mv.tie,
            "candidates": _candidate_records(mv, per_method),
            "methods": per_method,
            "resolution": resolution,
            "answer": final,
            "correct": grade.verdict,
        }
        votes.append((problem, payload, grade))
    vote_ids = _upsert_votes(store, run_id, [(p, v) for p, v, _ in votes])
    store_grades(store, [(vote_ids[p.id], p.answer, g) for p, _, g in votes])
    if resolve_grades:
        store_grades(store, resolve_grades)


def _method_votes(
    methods: Mapping[str, Sequence[dict[str, Any]]],
    opts: PostOptions,
    same: Equivalence,
    problem: Problem,
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Self-consistency per method (in config order); the method answers for the cross vote."""
    per_method: dict[str, Any] = {}
    answers: dict[str, str | None] = {}
    for method in opts.methods:
        rows = sorted(methods.get(method, []), key=lambda r: int(r["sample_index"]))
        if not rows:  # e.g. plan-then-code without a usable plan: a wrong answer, not a gap
            per_method[method] = {
                "answer": None,
                "count": 0,
                "valid": 0,
                "total": 0,
                "tie": False,
                "clusters": [],
                "sample_id": None,
                "correct": False,
                "errors": {"not_run": 1},
            }
            answers[method] = None
            continue
        given = [
            r["payload"].get("answer") if r["status"] == SampleStatus.DONE else None for r in rows
        ]
        vote = majority_vote(given, same)
        rep = rows[vote.winner_index] if vote.winner_index is not None else None
        grade = grade_answer(vote.answer, problem.answer, timeout_s=opts.grade_timeout_s)
        per_method[method] = {
            "answer": vote.answer,
            "count": vote.count,
            "valid": vote.valid,
            "total": vote.total,
            "tie": vote.tie,
            "clusters": [[c.answer, len(c.members)] for c in vote.clusters[:10]],
            "sample_id": int(rep["id"]) if rep is not None else None,
            "correct": grade.verdict,
            "errors": dict(Counter(_error_kind(r) for r in rows if _error_kind(r))),
        }
        answers[method] = vote.answer
    return per_method, answers


def _error_kind(row: Mapping[str, Any]) -> str | None:
    if row["status"] == SampleStatus.ERROR:
        return "call"
    kind = row["payload"].get("answer_error_kind")
    return str(kind) if kind else None


def _candidate_records(mv: MethodVote, per_method: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": c.label,
            "method": c.method,
            "answer": c.answer,
            "sample_id": per_method[c.method]["sample_id"],
        }
        for c in mv.candidates
    ]


def _resolve(
    mv: MethodVote, row: Mapping[str, Any] | None, opts: PostOptions, style: str
) -> tuple[str | None, dict[str, Any]]:
    """The final answer and a record of how it was reached."""
    if mv.status in ("unanimous", "majority"):
        return mv.answer, {"how": "vote"}
    if mv.status == "single":
        return mv.answer, {"how": "single-method", "method": mv.agreeing[0]}
    if mv.status == "none":
        return None, {"how": "no-answer"}
    first = mv.candidates[0]
    fallback = {"how": "fallback", "method": first.method}
    if opts.disagreement == "first":
        return first.answer, {"how": "first-method", "method": first.method}
    if row is None:
        return None, {"how": "pending"}
    if row["status"] != SampleStatus.DONE:
        reason = f"{opts.disagreement} call failed"
        return first.answer, fallback | {"reason": reason, "sample_id": int(row["id"])}
    if opts.disagreement == "reflect":
        parsed = cot_answer(row["output"] or "", style)
        if parsed.answer is None:
            return first.answer, fallback | {"reason": "re-attempt gave no answer"}
        return parsed.answer, {
            "how": "reflect",
            "answer_how": parsed.how,
            "sample_id": int(row["id"]),
        }
    snapshot = row["payload"].get("candidates", [])
    letter = parse_selection(row["output"] or "", len(snapshot))
    chosen = next((c for c in snapshot if c["label"] == letter), None)
    if chosen is None:
        return first.answer, fallback | {"reason": "selector named no candidate"}
    how = {
        "how": "select",
        "choice": letter,
        "method": chosen["method"],
        "sample_id": int(row["id"]),
    }
    return chosen["answer"], how


def _upsert_votes(
    store: Store, run_id: int, votes: Sequence[tuple[Problem, dict[str, Any]]]
) -> dict[str, int]:
    now = now_iso()
    with store.transaction() as conn:
        for problem, payload in votes:
            conn.execute(
                """
                INSERT INTO samples (run_id, stage, item_key, problem_id, sample_index, role,
                                     status, output, payload, created_at, updated_at)
                VALUES (?,?,?,?,0,'vote','done',?,?,?,?)
                ON CONFLICT(run_id, item_key) DO UPDATE SET
                    output=excluded.output, payload=excluded.payload, updated_at=excluded.updated_at
                """,
                (
                    run_id,
                    VOTE,
                    item_key(VOTE, problem.id),
                    problem.id,
                    payload["answer"],
                    dumps(payload),
                    now,
                    now,
                ),
            )
    return {
        r["problem_id"]: int(r["id"])
        for r in store.query(
            "SELECT id, problem_id FROM samples WHERE run_id=? AND stage=?", (run_id, VOTE)
        )
    }


# -- inputs of the resolve stage -------------------------------------------------------------


def resolve_inputs(store: Store, run_id: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Vote rows that need a resolution, with their candidates ready for the prompt."""
    outputs = {int(s["id"]): s for s in store.samples(run_id, SOLVE, status=SampleStatus.DONE)}
    found = []
    for row in store.samples(run_id, VOTE):
        if row["payload"].get("status") != "disagree":
            continue
        candidates = []
        for c in row["payload"].get("candidates", []):
            sample = outputs.get(c["sample_id"]) if c.get("sample_id") is not None else None
            candidates.append(
                c
                | {
                    "method_name": METHOD_NAMES.get(c["method"], c["method"]),
                    "solution": _solution_text(c["method"], sample, c["answer"]),
                }
            )
        found.append((row, candidates))
    return found


def _solution_text(method: str, sample: Mapping[str, Any] | None, answer: str) -> str:
    if sample is None:
        return f"(solution text unavailable; answer {answer})"
    output = str(sample["output"] or "")
    if method == "cot":
        return output.strip()
    code = extract_code(output) or output.strip()
    return f"```python\n{code}\n```\nThe program returned: {answer}"
