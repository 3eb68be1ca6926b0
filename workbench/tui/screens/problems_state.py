"""What the Problems screen shows (a frozen view state) and the messages its workers post.

Kept apart from the screen so the mapping onto ``workbench.core.library.problems``
is one function (``ViewState.to_filter``) and easy to test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from textual.message import Message

from workbench.core.library import problems as core
from workbench.core.store import Store
from workbench.core.views.problems import ProblemSample, latest_calibrated_model, question_heads
from workbench.tui.widgets.problem_detail import readable
from workbench.tui.widgets.problem_filters import FACETS, scope_value

#: sortable columns (key understood by core.query_problems, label for the status line)
SORTS: tuple[tuple[str, str], ...] = (
    # the table shows the dataset, then the id within it: the default sorts on both
    ("dataset", "dataset, id"),
    ("source", "source"),
    ("level", "level"),
    ("n_steps", "steps"),
    ("solve_rate", "solve rate"),
)
MAX_SAMPLE = 1_000_000
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass(frozen=True)
class ViewState:
    """Search, filters, sort and sampling seed; equal states mean the same rows."""

    search: str = ""
    source: str | None = None
    level: str | None = None
    subject: str | None = None
    bin: str | None = None
    model: str | None = None  # whose solve rate / bin: the user's choice ...
    default_model: str | None = None  # ... or the latest calibrated model
    has_grade: bool | None = None
    dataset: str | None = None
    problem_set: str | None = None
    only_selected: bool = False
    sort: str = "dataset"
    descending: bool = False
    seed: int = 0

    @property
    def is_everything(self) -> bool:
        """No search and no filter: the whole library."""
        return self == ViewState(
            sort=self.sort,
            descending=self.descending,
            seed=self.seed,
            default_model=self.default_model,
        )

    @property
    def difficulty_model(self) -> str | None:
        """The model whose solve rates and bins are shown."""
        return self.model or self.default_model

    def filter_fields(self) -> dict[str, Any]:
        """The fields a "clear filters" resets."""
        keep = {"sort", "descending", "seed", "default_model"}
        return {f.name: f.default for f in fields(self) if f.name not in keep}

    def to_filter(self) -> core.ProblemFilter:
        """The core filter for search + filters (the selection view does not use it)."""
        return core.ProblemFilter(
            text=self.search,
            source=self.source,
            level=int(self.level) if self.level not in (None, "") else None,
            subject=self.subject,
            bin=self.bin,
            model=self.difficulty_model,
            has_grade=self.has_grade,
            dataset=self.dataset,
            problem_set=self.problem_set,
        )

    def describe(self) -> str:
        label = dict(SORTS).get(self.sort, self.sort)
        parts = [f"sort {label} {'↓' if self.descending else '↑'}"]
        if self.difficulty_model:
            chosen = "" if self.model else " (latest calibrated)"
            parts.insert(0, f"solve/bin: {self.difficulty_model}{chosen}")
        filters = [
            f"{name}={value}"
            for name, value in (
                ("source", self.source),
                ("level", self.level),
                ("subject", self.subject),
                ("bin", self.bin),
                ("dataset", self.dataset),
                ("set", self.problem_set),
            )
            if value is not None
        ]
        if self.has_grade is not None:
            filters.append("graded" if self.has_grade else "ungraded")
        if self.search:
            filters.append(f'"{self.search}"')
        if self.only_selected:
            filters.append("selected only")
        if filters:
            parts.append("filter " + " ".join(filters))
        return "  ·  ".join(parts)


EMPTY_LIBRARY = (
    "No problems yet.  Press i to import the bundled samples, or run `workbench import FILE.jsonl`."
)
NO_MATCH = "No problems match.  c clears the filters, escape clears the search."


def status_line(
    state: ViewState,
    shown: int,
    total: core.MatchCount | None,
    library: int | None,
    n_selected: int,
) -> str:
    """E.g. ``200 of 1,234 shown (library 100,000)  ·  3 selected  ·  sort id ↑``."""
    head = f"{shown:,} of {'…' if total is None else total} shown"
    if library is not None and not state.is_everything:
        head += f" (library {library:,})"
    return "  ·  ".join([head, f"{n_selected:,} selected", state.describe()])


def parse_sample_request(text: str) -> tuple[tuple[int, int] | None, str | None]:
    """``"N"`` or ``"N SEED"`` -> ((n, seed), None), or (None, one-line error)."""
    words = text.replace(",", " ").split()
    if not 1 <= len(words) <= 2 or not all(re.fullmatch(r"\d+", w) for w in words):
        return None, "type a count, optionally followed by a seed: e.g. 50 or 50 7"
    n = int(words[0])
    seed = int(words[1]) if len(words) == 2 else 0
    if not 1 <= n <= MAX_SAMPLE:
        return None, f"the count must be between 1 and {MAX_SAMPLE:,}"
    return (n, seed), None


def validate_set_name(name: str) -> str | None:
    if not _SET_NAME.fullmatch(name):
        return "letters, digits, '.', '_' or '-' (up to 80), starting with a letter or digit"
    return None


def selected_rows(
    store: Store, selected: Sequence[str], *, offset: int, limit: int
) -> list[core.ProblemRow]:
    """One page of light rows for the selection, in selection order.

    The selection lives in memory (at most what a user samples), so paging is
    a slice of it; only that slice is read from the store.
    """
    return core.problem_rows(store, list(selected[offset : offset + limit]))


def fetch_page(
    store: Store, state: ViewState, selection: Sequence[str], *, offset: int, limit: int
) -> tuple[list[core.ProblemRow], dict[str, str]]:
    """One page of rows for ``state`` and a readable question preview for each."""
    if state.only_selected:
        rows = selected_rows(store, selection, offset=offset, limit=limit)
    else:
        rows = core.query_problems(
            store,
            state.to_filter(),
            order_by=state.sort,
            descending=state.descending,
            offset=offset,
            limit=limit,
        )
    return rows, question_previews(store, [row.id for row in rows])


def fetch_counts(store: Store, state: ViewState, n_selected: int) -> tuple[core.MatchCount, int]:
    """(problems matching ``state``, "1,000+" for a common search term; problems in the library)."""
    library = core.count_problems(store, core.ProblemFilter())
    if state.only_selected:
        return core.MatchCount(n_selected), library
    if state.is_everything:
        return core.MatchCount(library), library
    return core.count_matches(store, state.to_filter()), library


def fetch_facets(store: Store) -> dict[str, list[str]]:
    """Filter choices found in the library; models with the latest calibrated one first."""
    facets = {
        name: [str(v) for v in core.distinct_values(store, name) if v is not None]
        for name in FACETS
    }
    latest = latest_calibrated_model(store)
    if latest is not None and latest in facets["model"]:
        facets["model"] = [latest, *(m for m in facets["model"] if m != latest)]
    facets["scope"] = [
        *(scope_value("dataset", str(d)) for d in core.distinct_values(store, "dataset")),
        *(scope_value("set", s.name) for s in core.list_problem_sets(store)),
    ]
    return facets


def question_previews(store: Store, ids: Sequence[str], width: int = 100) -> dict[str, str]:
    """One readable line of each question, for the table's last column."""
    previews = {}
    for head in question_heads(store, ids, chars=width * 2):
        line = " ".join(readable(head.text, head.source).split())
        previews[head.id] = line if len(line) <= width else line[: width - 1] + "…"
    return previews


# -- messages posted by the screen's workers ---------------------------------


@dataclass
class PageLoaded(Message):
    generation: int
    offset: int
    rows: list[core.ProblemRow]
    previews: dict[str, str]


@dataclass
class Counted(Message):
    generation: int
    total: core.MatchCount
    library: int


@dataclass
class FacetsLoaded(Message):
    facets: dict[str, list[str]]


@dataclass
class DetailLoaded(Message):
    problem: core.Problem


@dataclass
class ProblemSamplesLoaded(Message):
    """Every sample of one problem across runs (for ``t`` on Problems)."""

    problem_id: str
    samples: list[ProblemSample]


@dataclass
class Sampled(Message):
    ids: list[str]
    seed: int


@dataclass
class SetSaved(Message):
    name: str
    set_id: int
    size: int


@dataclass
class ProblemsFailed(Message):
    text: str
