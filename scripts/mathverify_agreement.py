"""Our grader on Math-Verify's own test cases: agreement, and every disagreement.

    .venv/bin/python scripts/mathverify_agreement.py PATH/TO/Math-Verify [--markdown OUT.md]

Reads the ``(gold, pred, expected)`` cases of ``tests/test_*.py`` in a Math-Verify checkout
(``pytest.mark.parametrize`` literals; cases built at run time are skipped and counted),
grades each ``pred`` as a model response against ``gold`` as a gold answer (its ``\\boxed{}``
or its ``$...$`` content), and prints the agreement with the upstream expectations and
each case where we differ.  Expected values are the upstream project's, not ours.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def cases(checkout: Path) -> tuple[list[dict[str, Any]], int]:
    """Literal parametrize cases with gold / pred / expected (or result); and how many were
    skipped because their values are computed when the tests run."""
    found: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted((checkout / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if not (
                    isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"
                ):
                    continue
                names_value = ast.literal_eval(dec.args[0])
                names = [
                    n.strip()
                    for n in (
                        names_value.split(",") if isinstance(names_value, str) else names_value
                    )
                ]
                if "gold" not in names or "pred" not in names:
                    continue
                try:
                    values = ast.literal_eval(dec.args[1])
                except ValueError:
                    skipped += 1
                    continue
                for value in values:
                    row = dict(zip(names, value, strict=False))
                    row["test"] = f"{path.name}::{node.name}"
                    found.append(row)
    return found, skipped


def gold_answer(gold: str) -> str:
    from workbench.core.grading.answers import last_boxed

    boxed = last_boxed(gold)
    if boxed is not None:
        return boxed
    text = gold.strip()
    for start, end in DELIMITERS:
        if text.startswith(start) and text.endswith(end) and len(text) >= len(start) + len(end):
            return text[len(start) : len(text) - len(end)].strip()
    return text


def main() -> None:
    from workbench.core.grading.grader import grade_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--markdown", type=Path, help="also write the report as Markdown")
    args = parser.parse_args()
    rows, skipped = cases(args.checkout)
    grades = grade_many([(str(r["pred"]), gold_answer(str(r["gold"]))) for r in rows], timeout_s=5)
    agree, differ = 0, []
    for row, grade in zip(rows, grades, strict=True):
        expected = bool(int(row.get("expected", row.get("result", 0))))
        ours = bool(grade.correct)
        if ours == expected:
            agree += 1
        else:
            differ.append((row, expected, ours, grade))
    head = f"{agree}/{len(rows)} cases agree ({agree / len(rows):.1%}); {skipped} parametrize lists skipped (computed values)"
    print(head)
    lines = [
        "| test | gold | pred | upstream | ours | our reading |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row, expected, ours, grade in differ:
        cells = [
            row["test"],
            json.dumps(str(row["gold"]))[1:-1][:80],
            json.dumps(str(row["pred"]))[1:-1][:80],
            "equal" if expected else "different",
            "equal" if ours else "different",
            f"{grade.method}: {grade.reason}"[:100],
        ]
        print(" | ".join(cells))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if args.markdown:
        args.markdown.write_text(f"{head}\n\n" + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
