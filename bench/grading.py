"""Answers graded per second on MATH-500, against a plain math-verify call.

Two sets of 500 (response, gold) pairs: the reference solution (gold vs the
extracted ``\\boxed{}`` answer, all equal) and a perturbed variant (the boxed
answer changed, so mostly unequal and mostly needing sympy).  Each set is graded
by ``grade_many`` (in-process fast path + worker pool) and by the plain
math-verify recipe ``verify(parse(gold), parse(response))`` in this process, and
the script prints pairs per second, the ratio, and where the two disagree.

Run: ``.venv/bin/python bench/grading.py``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.core.grading import grade_many
from workbench.core.grading.answers import last_boxed
from workbench.core.grading.pool import shared_pool

REPO = Path(__file__).resolve().parents[1]
MATH500 = REPO.parent / "shared" / "datasets" / "math500" / "test.jsonl"
SAMPLE = REPO / "workbench" / "data" / "samples" / "math500-100.jsonl"


def perturb(answer: str) -> str:
    """A wrong variant of an answer: bump the first integer, else append '+1'."""
    m = re.search(r"\d+", answer)
    if m:
        return f"{answer[: m.start()]}{int(m.group()) + 1}{answer[m.end() :]}"
    return f"{answer}+1"


def with_boxed(solution: str, new_answer: str) -> str:
    """The solution with its last ``\\boxed{...}`` content replaced."""
    old = last_boxed(solution) or ""
    i = solution.rfind("\\boxed{" + old + "}")
    if i < 0:
        return solution + f" \\boxed{{{new_answer}}}"
    return solution[:i] + "\\boxed{" + new_answer + "}" + solution[i + len(old) + 8 :]


def plain_math_verify(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    start = time.perf_counter()
    out = [bool(verify(parse(f"${gold}$"), parse(text))) for text, gold in pairs]
    return out, time.perf_counter() - start


def main() -> None:
    path = MATH500 if MATH500.exists() else SAMPLE
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    print(f"{len(rows)} problems from {path.name}")
    start = time.perf_counter()
    shared_pool().run([("\\sqrt{4}", "2")] * shared_pool().size, 60)  # start the workers
    print(f"pool start ({shared_pool().size} workers): {time.perf_counter() - start:.2f}s")
    sets = {
        "gold vs extracted": [(r["solution"], r["answer"]) for r in rows],
        "perturbed variant": [
            (with_boxed(r["solution"], perturb(last_boxed(r["solution"]) or "")), r["answer"])
            for r in rows
        ],
    }
    for name, pairs in sets.items():
        start = time.perf_counter()
        grades = grade_many(pairs, timeout_s=10)
        ours = time.perf_counter() - start
        plain, theirs = plain_math_verify(pairs)
        n = len(pairs)
        methods: dict[str, int] = {}
        for g in grades:
            key = g.method.split("+")[-1]
            methods[key] = methods.get(key, 0) + 1
        disagree = [
            (p[1], g.extracted, g.correct, mv)
            for p, g, mv in zip(pairs, grades, plain, strict=True)
            if g.correct is not mv
        ]
        print(f"\n{name}:")
        print(f"  workbench grade_many : {n / ours:8.1f} pairs/s  ({ours:.2f}s)")
        print(f"  plain math-verify    : {n / theirs:8.1f} pairs/s  ({theirs:.2f}s)")
        print(f"  speed ratio          : {theirs / ours:8.1f}x")
        print(f"  correct: workbench {sum(bool(g.correct) for g in grades)}/{n}, "
              f"math-verify {sum(plain)}/{n}; statuses "
              f"{sorted({g.status for g in grades})}; methods {methods}")  # fmt: skip
        print(f"  disagreements: {len(disagree)}")
        for gold, extracted, ours_ok, mv_ok in disagree[:8]:
            print(
                f"    gold {gold!r} answer {extracted!r}: workbench {ours_ok}, math-verify {mv_ok}"
            )


if __name__ == "__main__":
    main()
