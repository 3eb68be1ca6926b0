"""Problem search through the trigram index returns exactly what a scan returns.

The index (migration: ``problems_fts``) only narrows the rows LIKE looks at; these tests
hold it to that on a seeded corpus with LaTeX, Unicode, quotes and LIKE wildcards, for
terms of every length (one and two characters are below a trigram and scan), and check
that imports, re-imports and deletions keep it in step with the table.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.library import import_dataset
from workbench.core.library.problems import (
    COMMON_TERM_HITS,
    MatchCount,
    ProblemFilter,
    count_matches,
    count_problems,
    matching_ids,
    query_problems,
    search_candidates,
)
from workbench.core.store import Store

PIECES = [
    "apples",
    "Äpfel",
    "ÉCOLE",
    "école",
    "straße",
    "naïve",
    "日本語の問題",
    "😀 emoji",
    r"\frac{1}{2}",
    r"$x^2 + y_1$",
    r"\sqrt{3}",
    "50% off",
    "a_b",
    'say "hi"',
    "O'Brien",
    "ducks",
    "DUCKS",
    "x",
    "ab",
    "Kelvin",
    "\u212a",  # KELVIN SIGN: case-folds to "k" in Unicode, but LIKE folds ASCII only
]
TERMS = [
    "x",
    "X",
    "ab",
    "AB",
    "%",
    "_",
    "app",
    "APPLES",
    "äpf",
    "ÄPF",
    "école",
    "ÉCOLE",
    "École",
    "straße",
    "STRASSE",
    "日本",
    "日本語",
    "😀 e",
    r"\frac",
    r"{1}{2}",
    "y_1",
    "50%",
    "% off",
    "a_b",
    '"hi"',
    "O'B",
    "duck",
    "kel",
    "\u212a",
    "ks ",
    "nomatchatall",
    "12",
    "/00",
    "corpus/0",
    "CORPUS/A",
]


def corpus(n: int = 400, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = " ".join(rng.choice(PIECES) for _ in range(rng.randint(1, 6)))
        rows.append({"id": f"{i:03d}", "question": f"Q{i}: {words}?", "answer": f"#### {i}"})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    tmp = tmp_path_factory.mktemp("search")
    s = Store(tmp / "w.db")
    report = import_dataset(s, write_jsonl(tmp / "corpus.jsonl", corpus()), name="corpus")
    assert report.n_added == 400, report.errors[:1]
    yield s
    s.close()


def like(term: str, text: str) -> bool:
    """SQLite's LIKE '%term%': case-insensitive for ASCII letters only."""

    def fold(s: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in s)

    return fold(term) in fold(text)


def expected_ids(store: Store, term: str) -> list[str]:
    term = term.strip()  # the search box ignores surrounding blanks
    rows = store.conn.execute("SELECT id, question FROM problems ORDER BY id").fetchall()
    return [pid for pid, question in rows if like(term, question) or like(term, pid)]


@pytest.mark.parametrize("term", TERMS)
def test_search_with_the_index_equals_a_scan(store: Store, term: str) -> None:
    flt = ProblemFilter(text=term)
    truth = expected_ids(store, term)
    assert matching_ids(store, flt) == truth
    assert matching_ids(store, flt, use_index=False) == truth
    assert count_problems(store, flt) == len(truth)
    assert count_problems(store, flt, use_index=False) == len(truth)
    pages = [query_problems(store, flt, offset=o, limit=25) for o in range(0, 400, 25)]
    assert [row.id for page in pages for row in page] == truth
    descending = query_problems(store, flt, order_by="id", descending=True, limit=1000)
    assert [row.id for row in descending] == truth[::-1]
    assert count_matches(store, flt) == MatchCount(len(truth))


def test_the_corpus_exercises_the_terms(store: Store) -> None:
    hits = {term: len(expected_ids(store, term)) for term in TERMS}
    assert hits["nomatchatall"] == 0
    assert sum(1 for n in hits.values() if 0 < n < 400) >= len(TERMS) - 6, hits


def test_the_index_narrows_terms_of_three_characters_or_more(store: Store) -> None:
    assert search_candidates(store, "ab") is None  # below a trigram: a scan
    hits = search_candidates(store, "frac")
    assert hits is not None and 0 < len(hits) < 400
    # case folded across Unicode: a superset that LIKE then trims
    assert len(search_candidates(store, "ÉCOLE") or []) > len(expected_ids(store, "ÉCOLE"))


def test_a_common_term_is_counted_up_to_a_cap(store: Store) -> None:
    flt = ProblemFilter(text="Q")
    assert count_matches(store, flt, cap=50) == MatchCount(50, at_least=True)
    assert str(count_matches(store, flt, cap=50)) == "50+"
    assert count_matches(store, flt, cap=1000) == MatchCount(400)
    assert count_matches(store, ProblemFilter()) == MatchCount(400)


def test_a_term_too_common_for_the_index_still_pages_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.core.library.problems as problems

    s = Store(tmp_path / "w.db")
    import_dataset(s, write_jsonl(tmp_path / "c.jsonl", corpus(120)), name="corpus")
    monkeypatch.setattr(problems, "COMMON_TERM_HITS", 10)
    assert problems.COMMON_TERM_HITS < COMMON_TERM_HITS
    flt = ProblemFilter(text="app")
    assert search_candidates(s, "app") is None  # more than 10 hits: scan in page order
    assert [r.id for r in query_problems(s, flt, limit=500)] == expected_ids(s, "app")
    s.close()


def test_imports_updates_and_deletes_keep_the_index_in_step(tmp_path: Path) -> None:
    s = Store(tmp_path / "w.db")
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [{"question": "zebras graze", "answer": "#### 1"}])
    import_dataset(s, path, name="zoo")
    import_dataset(s, path, name="zoo")  # a re-import (an upsert) leaves one entry
    (pid,) = [r.id for r in query_problems(s, ProblemFilter(text="zebra"))]
    assert s.scalar("SELECT COUNT(*) FROM problems_fts WHERE problems_fts MATCH 'zebra'") == 1
    with s.transaction() as conn:
        conn.execute("UPDATE problems SET question='lions roar' WHERE id=?", (pid,))
    assert query_problems(s, ProblemFilter(text="zebra")) == []
    assert [r.id for r in query_problems(s, ProblemFilter(text="lion"))] == [pid]
    with s.transaction() as conn:
        conn.execute("DELETE FROM datasets WHERE id='zoo'")  # cascades to its problems
    assert query_problems(s, ProblemFilter(text="lion")) == []
    assert s.scalar("SELECT COUNT(*) FROM problems_fts WHERE problems_fts MATCH 'lion'") == 0
    s.close()
