"""The problem library: load problems, select them for runs, page through them, name sets.

``select_problems`` serves experiments (full problems).  The screen uses the
paged functions (``query_problems``, ``count_problems``, ``sample_ids``), which
return light rows and never load the whole table.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import ConfigError, InputError, StoreError
from workbench.core.grading import parse_number
from workbench.core.store import Store, dumps, like_pattern, loads, now_iso


class ProblemSelection(BaseModel):
    """Which problems a run uses: a named problem set, or a filter over the library."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: str | None = None  # a named problem set
    dataset: str | None = None
    source: str | None = None
    ids: tuple[str, ...] = ()
    level: tuple[int, ...] = ()
    subject: tuple[str, ...] = ()
    bin: str | None = None  # difficulty bin, with bin_model
    bin_model: str | None = None
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0  # sampling seed when limit is set


_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit


#: sources whose answers are LaTeX expressions (boxed / "Final Answer" style)
MATH_STYLE_SOURCES = ("math", "numina", "ocw", "minerva")


@dataclass(frozen=True)
class Problem:
    id: str
    dataset_id: str
    source: str
    question: str
    solution: str
    answer: str
    subject: str | None
    level: int | None
    steps: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def answer_style(self) -> str:
        """``gsm8k`` (a plain-number answer line) or ``math`` (a LaTeX final answer).

        Known sources decide; for any other source a gold answer that is a plain number
        means the GSM8K style, anything else the MATH style.
        """
        source = self.source.lower()
        if source.startswith("gsm"):
            return "gsm8k"
        if source in MATH_STYLE_SOURCES:
            return "math"
        return "gsm8k" if parse_number(self.answer) is not None else "math"

    @property
    def solve_prompt(self) -> str:
        """The default straight-shot prompt for this problem."""
        return f"solve-{self.answer_style}"


def _problem(row: dict[str, Any]) -> Problem:
    return Problem(
        id=row["id"],
        dataset_id=row["dataset_id"],
        source=row["source"],
        question=row["question"],
        solution=row["solution"],
        answer=row["answer"],
        subject=row["subject"],
        level=row["level"],
        steps=tuple(loads(row["steps"], [])),
        meta=loads(row["meta"], {}),
    )


def find_problem(store: Store, problem_id: str) -> Problem | None:
    """The problem, or None when no problem has that id."""
    row = store.query_one("SELECT * FROM problems WHERE id=?", (problem_id,))
    return None if row is None else _problem(row)


def get_problem(store: Store, problem_id: str) -> Problem:
    problem = find_problem(store, problem_id)
    if problem is None:
        raise StoreError(f"no problem with id {problem_id!r}")
    return problem


def get_problems(store: Store, ids: Sequence[str]) -> list[Problem]:
    """Problems for ``ids``, in that order (unknown ids are left out)."""
    found: dict[str, Problem] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for row in store.query(f"SELECT * FROM problems WHERE id IN ({marks})", chunk):
            found[row["id"]] = _problem(row)
    return [found[i] for i in ids if i in found]


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def select_problems(store: Store, sel: ProblemSelection) -> list[Problem]:
    """Problems for a run: filters, then a seeded sample of ``limit``; deterministic order.

    With a named set the set's order is kept; otherwise problems come in id order.
    """
    where: list[str] = ["1=1"]
    params: list[Any] = []
    order: dict[str, int] = {}
    if sel.set is not None:
        order = {pid: i for i, pid in enumerate(problem_set_ids(store, sel.set))}
    if sel.dataset is not None:
        where.append("p.dataset_id=?")
        params.append(sel.dataset)
    if sel.source is not None:
        where.append("p.source=?")
        params.append(sel.source)
    for column, values in (("p.level", sel.level), ("p.subject", sel.subject), ("p.id", sel.ids)):
        if values:
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if sel.bin is not None:
        clause = "EXISTS (SELECT 1 FROM difficulty d WHERE d.problem_id=p.id AND d.bin=?"
        params.append(sel.bin)
        if sel.bin_model is not None:
            clause += " AND d.model=?"
            params.append(sel.bin_model)
        where.append(clause + ")")
    ids = [
        r[0]
        for r in store.conn.execute(
            f"SELECT p.id FROM problems p WHERE {' AND '.join(where)} ORDER BY p.id", params
        )
    ]
    if sel.set is not None:
        ids = sorted((i for i in ids if i in order), key=order.__getitem__)
    if sel.limit is not None and sel.limit < len(ids):
        keep = set(random.Random(sel.seed).sample(ids, sel.limit))
        ids = [i for i in ids if i in keep]
    return get_problems(store, ids)


def selected_problems(store: Store, selection: ProblemSelection) -> list[Problem]:
    """``select_problems`` for a run: an empty selection is a one-line error before any spend."""
    problems = select_problems(store, selection)
    if not problems:
        if selection.dataset is not None:
            known = [r[0] for r in store.conn.execute("SELECT id FROM datasets ORDER BY id")]
            if selection.dataset not in known:
                raise ConfigError(
                    f"problems.dataset: no dataset '{selection.dataset}' in this workspace "
                    f"(datasets: {', '.join(known) or 'none; import one first'})"
                )
        raise ConfigError("problems: the selection matches no problems; import a dataset first")
    return problems


# -- paged queries for the Problems screen -------------------------------------------


@dataclass(frozen=True)
class ProblemFilter:
    """What the Problems screen shows; every field narrows the list."""

    text: str = ""  # substring of the question or the id
    source: str | None = None
    dataset: str | None = None
    level: int | None = None
    subject: str | None = None
    bin: str | None = None  # difficulty bin (for ``model``, or any model when None)
    model: str | None = None  # whose solve rate / bin to show and filter on
    has_grade: bool | None = None  # True: problems with a graded sample; False: none
    problem_set: str | None = None


@dataclass(frozen=True)
class ProblemRow:
    """One light row of the Problems table (no question text)."""

    id: str
    source: str
    level: int | None
    subject: str | None
    n_steps: int
    solve_rate: float | None
    bin: str | None
    dataset_id: str


ORDER_COLUMNS = {
    "id": "p.id",
    "source": "p.source",
    "dataset": "p.dataset_id",
    "level": "p.level",
    "subject": "p.subject",
    "n_steps": "p.n_steps",
    "solve_rate": "solve_rate",
    "bin": "bin",
}
DISTINCT_COLUMNS = {
    "source": "SELECT DISTINCT source FROM problems",
    "dataset": "SELECT DISTINCT dataset_id FROM problems",
    "dataset_id": "SELECT DISTINCT dataset_id FROM problems",
    "level": "SELECT DISTINCT level FROM problems WHERE level IS NOT NULL",
    "subject": "SELECT DISTINCT subject FROM problems WHERE subject IS NOT NULL",
    "bin": "SELECT DISTINCT bin FROM difficulty",
    "model": "SELECT DISTINCT model FROM difficulty",
}


def _difficulty_source(model: str | None) -> tuple[str, str, str, list[Any]]:
    """(join clause, solve_rate expression, bin expression, join parameters)."""
    if model is not None:
        # a join (not per-row subqueries) so sorting by solve rate reads difficulty once
        join = "LEFT JOIN difficulty d ON d.problem_id=p.id AND d.model=?"
        return join, "d.solve_rate", "d.bin", [model]
    latest = "FROM difficulty d WHERE d.problem_id=p.id ORDER BY d.updated_at DESC LIMIT 1"
    return "", f"(SELECT solve_rate {latest})", f"(SELECT bin {latest})", []


#: the trigram index answers terms of at least this many characters; shorter ones scan
TRIGRAM = 3
#: above this many index hits a term is common: a scan in page order finds a page of it
#: sooner than fetching and sorting every hit
COMMON_TERM_HITS = 20_000


def fts_phrase(term: str) -> str:
    """An FTS5 query matching ``term`` as one substring (a phrase of its trigrams)."""
    return '"' + term.replace('"', '""') + '"'


def search_candidates(store: Store, term: str) -> list[int] | None:
    """Rowids of problems whose id or question may contain ``term``, from the trigram index.

    None when the index cannot narrow the search: the term is shorter than a trigram, or
    so common that scanning in page order is quicker.  Candidates are a superset (the
    index folds case in all of Unicode, LIKE only in ASCII); callers re-check with LIKE.
    """
    if len(term) < TRIGRAM:
        return None
    rows = store.conn.execute(
        "SELECT rowid FROM problems_fts WHERE problems_fts MATCH ? LIMIT ?",
        (fts_phrase(term), COMMON_TERM_HITS + 1),
    ).fetchall()
    if len(rows) > COMMON_TERM_HITS:
        return None
    return [row[0] for row in rows]


def _where(store: Store, flt: ProblemFilter, *, use_index: bool = True) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1=1"]
    params: list[Any] = []
    term = flt.text.strip()
    if term:
        candidates = search_candidates(store, term) if use_index else None
        if candidates is not None:
            clauses.append("p.rowid IN (SELECT value FROM json_each(?))")
            params.append(dumps(candidates))
        pattern = like_pattern(term)
        clauses.append("(p.question LIKE ? ESCAPE '\\' OR p.id LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    for column, value in (
        ("p.source", flt.source),
        ("p.dataset_id", flt.dataset),
        ("p.level", flt.level),
        ("p.subject", flt.subject),
    ):
        if value is not None:
            clauses.append(f"{column}=?")
            params.append(value)
    # IN (subquery) rather than EXISTS: the subquery runs once off its index instead of
    # once per problem, which matters at 100,000 problems
    if flt.bin is not None:
        if flt.model is not None:
            clauses.append("p.id IN (SELECT problem_id FROM difficulty WHERE model=? AND bin=?)")
            params += [flt.model, flt.bin]
        else:
            clauses.append("p.id IN (SELECT problem_id FROM difficulty WHERE bin=?)")
            params.append(flt.bin)
    if flt.has_grade is not None:
        graded = (
            "p.id IN (SELECT s.problem_id FROM grades g JOIN samples s ON s.id=g.sample_id "
            "WHERE g.status='graded' AND s.problem_id IS NOT NULL)"
        )
        clauses.append(graded if flt.has_grade else f"NOT {graded}")
    if flt.problem_set is not None:
        clauses.append(
            "p.id IN (SELECT m.problem_id FROM problem_set_members m "
            "JOIN problem_sets ps ON ps.id=m.set_id WHERE ps.name=?)"
        )
        params.append(flt.problem_set)
    return " AND ".join(clauses), params


def query_problems(
    store: Store,
    flt: ProblemFilter,
    *,
    order_by: str = "id",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    use_index: bool = True,
) -> list[ProblemRow]:
    """One page of light rows matching ``flt`` (``use_index=False``: search by scanning)."""
    if order_by not in ORDER_COLUMNS:
        raise InputError(f"cannot sort problems by {order_by!r} (use {', '.join(ORDER_COLUMNS)})")
    join, rate_sql, bin_sql, dparams = _difficulty_source(flt.model)
    where, wparams = _where(store, flt, use_index=use_index)
    direction = "DESC" if descending else "ASC"
    order = ORDER_COLUMNS[order_by]
    # unknown levels / solve rates sort last either way (NULLS LAST can still use an index)
    order_sql = f"p.id {direction}"
    if order_by != "id":
        order_sql = f"{order} {direction} NULLS LAST, {order_sql}"
    sql = (
        f"SELECT p.id, p.source, p.level, p.subject, p.n_steps, {rate_sql} AS solve_rate, "
        f"{bin_sql} AS bin, p.dataset_id FROM problems p {join} WHERE {where} "
        f"ORDER BY {order_sql} LIMIT ? OFFSET ?"
    )
    rows = store.conn.execute(sql, [*dparams, *wparams, limit, offset]).fetchall()
    return [ProblemRow(*row) for row in rows]


def problem_rows(store: Store, ids: Sequence[str]) -> list[ProblemRow]:
    """Light rows for ``ids``, in the order given (unknown ids are left out)."""
    if not ids:
        return []
    _, rate_sql, bin_sql, _ = _difficulty_source(None)
    marks = ",".join("?" * len(ids))
    sql = (
        f"SELECT p.id, p.source, p.level, p.subject, p.n_steps, {rate_sql}, {bin_sql}, "
        f"p.dataset_id FROM problems p WHERE p.id IN ({marks})"
    )
    found = {row[0]: ProblemRow(*row) for row in store.conn.execute(sql, list(ids))}
    return [found[pid] for pid in ids if pid in found]


@dataclass(frozen=True)
class MatchCount:
    """How many problems match; ``at_least`` when counting stopped at a cap."""

    n: int
    at_least: bool = False

    def __str__(self) -> str:
        return f"{self.n:,}+" if self.at_least else f"{self.n:,}"


def count_problems(store: Store, flt: ProblemFilter, *, use_index: bool = True) -> int:
    """Exactly how many problems match ``flt``."""
    where, params = _where(store, flt, use_index=use_index)
    return int(store.scalar(f"SELECT COUNT(*) FROM problems p WHERE {where}", params))


def count_matches(store: Store, flt: ProblemFilter, cap: int = 1000) -> MatchCount:
    """How many problems match, counting at most ``cap`` of a common search term.

    Counting every row holding a common term reads them all (about a second at a million
    problems, on every keystroke); "1,000+" says as much to a reader.
    """
    where, params = _where(store, flt)
    if not flt.text.strip():
        return MatchCount(
            int(store.scalar(f"SELECT COUNT(*) FROM problems p WHERE {where}", params))
        )
    n = int(
        store.scalar(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM problems p WHERE {where} LIMIT ?)",
            [*params, cap + 1],
        )
    )
    return MatchCount(cap, at_least=True) if n > cap else MatchCount(n)


def distinct_values(store: Store, column: str) -> list[Any]:
    """Values for a filter drop-down: source, dataset, level, subject, bin or model."""
    if column not in DISTINCT_COLUMNS:
        raise InputError(f"no filter values for {column!r} (use {', '.join(DISTINCT_COLUMNS)})")
    return sorted(r[0] for r in store.conn.execute(DISTINCT_COLUMNS[column]))


def matching_ids(store: Store, flt: ProblemFilter, *, use_index: bool = True) -> list[str]:
    where, params = _where(store, flt, use_index=use_index)
    return [
        r[0]
        for r in store.conn.execute(
            f"SELECT p.id FROM problems p WHERE {where} ORDER BY p.id", params
        )
    ]


def sample_ids(store: Store, flt: ProblemFilter, n: int, seed: int = 0) -> list[str]:
    """``n`` ids at random (seeded) among those matching ``flt``, in id order."""
    ids = matching_ids(store, flt)
    if n >= len(ids):
        return ids
    keep = set(random.Random(seed).sample(ids, n))
    return [i for i in ids if i in keep]


# -- problem sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemSetInfo:
    name: str
    note: str
    n_problems: int
    created_at: str


def create_problem_set(store: Store, name: str, ids: Sequence[str], note: str = "") -> int:
    """Create (or replace) a named set with ``ids`` in order; return the set's id."""
    if not name.strip():
        raise InputError("a problem set needs a name")
    unique = list(dict.fromkeys(ids))
    known: set[str] = set()
    for chunk in _chunks(unique):
        marks = ",".join("?" * len(chunk))
        known.update(
            r[0]
            for r in store.conn.execute(f"SELECT id FROM problems WHERE id IN ({marks})", chunk)
        )
    missing = [i for i in unique if i not in known]
    if missing:
        raise InputError(f"problem set {name!r}: no problem with id {missing[0]!r}")
    with store.transaction() as conn:
        conn.execute("DELETE FROM problem_sets WHERE name=?", (name,))
        set_id = store.insert("problem_sets", {"name": name, "note": note, "created_at": now_iso()})
        conn.executemany(
            "INSERT INTO problem_set_members (set_id, problem_id, position) VALUES (?,?,?)",
            [(set_id, pid, pos) for pos, pid in enumerate(unique)],
        )
    return set_id


def list_problem_sets(store: Store) -> list[ProblemSetInfo]:
    rows = store.conn.execute(
        "SELECT ps.name, ps.note, COUNT(m.problem_id), ps.created_at FROM problem_sets ps "
        "LEFT JOIN problem_set_members m ON m.set_id=ps.id GROUP BY ps.id ORDER BY ps.name"
    ).fetchall()
    return [ProblemSetInfo(*row) for row in rows]


def problem_set_ids(store: Store, name: str) -> list[str]:
    set_id = store.scalar("SELECT id FROM problem_sets WHERE name=?", (name,))
    if set_id is None:
        raise InputError(f"no problem set named {name!r}")
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT problem_id FROM problem_set_members WHERE set_id=? ORDER BY position",
            (set_id,),
        )
    ]


def delete_problem_set(store: Store, name: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM problem_sets WHERE name=?", (name,))
