"""App-wide messages: what more than one screen listens to, and navigation across sections.

Screens never import each other: to show something in another section a screen posts
one of the navigation messages below, and the app (which knows every section) handles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from textual.message import Message

if TYPE_CHECKING:  # the views load with the sections, not with the app
    from workbench.core.views.traces import TraceFilter

#: the sections that can show one run
RunSection = Literal["monitor", "traces", "plots"]


@runtime_checkable
class RunOpener(Protocol):
    """A section that can show one run (Traces, Plots): the app calls it on ``OpenRun``."""

    def open_run(self, run_id: int) -> None: ...


@dataclass
class WorkspaceChanged(Message):
    """Problems, sets or prompts were added; the current screen reloads what it shows."""


@dataclass
class SamplesImported(Message):
    """The bundled-sample import finished (``text`` is one line for the user)."""

    text: str
    ok: bool


@dataclass
class OpenRun(Message):
    """Show run ``run_id`` in ``section``: its live monitor, its traces or its plots.

    ``sample_id``: in Traces, open at that sample (a drill-down from a comparison);
    ``trace_filter``: in Traces, show the samples it passes (a drill-down from a plot)."""

    run_id: int
    section: RunSection
    sample_id: int | None = None
    trace_filter: TraceFilter | None = None


@runtime_checkable
class FilteredOpener(Protocol):
    """A section that can show a run's samples under a filter (Traces)."""

    def open_filtered(self, run_id: int, flt: TraceFilter) -> None: ...


@runtime_checkable
class SampleOpener(Protocol):
    """A section that can open one sample of a run (Traces)."""

    def open_sample(self, run_id: int, sample_id: int) -> None: ...


@dataclass
class OpenCompare(Message):
    """Compare run ``run_a`` (A) with run ``run_b`` (B) side by side."""

    run_a: int
    run_b: int


@dataclass
class OpenRunBuilder(Message):
    """Open the run builder over the current screen; a launch comes back as ``LaunchRun``.

    ``config``: a stored config to start from (re-run an edited copy of a run); None: the
    last launch of this session."""

    config: dict[str, Any] | None = None
    title: str = "New run"
