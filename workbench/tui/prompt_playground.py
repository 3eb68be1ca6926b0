"""Parts of the prompt playground: worker messages, preview variables, table cells."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from textual.content import Content
from textual.message import Message

from workbench.core.engine import format_usd
from workbench.core.experiments.playground import PreviewResult
from workbench.core.perturb import perturb_variables, plan_perturbation
from workbench.core.prompts import PromptTemplate, RenderedPrompt
from workbench.core.views.problems import StepProblem

PREVIEW_SEED = 0  # the preview and Try use the same plan for a problem
MAX_LIBRARY_PROBLEMS = 200


# -- worker messages ---------------------------------------------------------------


@dataclass
class TryProgress(Message):
    """Items finished so far in the running Try (bursty: coalesced)."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TryProgress)


@dataclass
class TryFinished(Message):
    version_id: int
    run_id: int
    results: list[PreviewResult]


@dataclass
class TryFailed(Message):
    version_id: int
    error: str


# -- helpers -------------------------------------------------------------------------


def preview_variables(template: PromptTemplate, problem: StepProblem | None) -> dict[str, Any]:
    """Values for the template's declared variables drawn from ``problem``.

    Only declared names are passed, so a variable the pool cannot fill shows up
    as the template's own "missing variable" error.
    """
    pool: dict[str, Any] = {}
    if problem is not None:
        pool = {"question": problem.question, "answer": problem.answer, "gold": problem.answer}
        if len(problem.steps) >= 2:
            plan = plan_perturbation(problem.steps, seed=PREVIEW_SEED, key=problem.id)
            pool.update(perturb_variables(problem.question, problem.steps, plan))
            original = problem.steps[plan.step_index]
            pool.update(
                original_step=original,
                perturbed_step=f"{original} (perturbed)",
                prefix="\n".join(problem.steps[: plan.step_index + 1]),
                continuation="(the continuation appears here)",
            )
    return {k: pool[k] for k in template.declared if k in pool}


def rendered_content(rendered: RenderedPrompt) -> Content:
    parts: list[Content | str] = []
    turns = ([("system", rendered.system)] if rendered.system else []) + [
        (m.role, m.content) for m in rendered.messages
    ]
    for i, (role, text) in enumerate(turns):
        if i:
            parts.append("\n\n")
        parts.append(Content.from_markup("[$accent bold]── $r ──[/]\n", r=role))
        parts.append(Content(text))
    return Content.assemble(*parts)


def cost_text(value: float | None) -> str:
    return format_usd(value, missing="?")


def short_id(problem_id: str, width: int = 16) -> str:
    """The distinctive tail of a problem id ("gsm8k-test-200/006045a1b4cf" -> "006045a1b4cf")."""
    tail = problem_id.rsplit("/", 1)[-1]
    return tail if len(tail) <= width else tail[: width - 1] + "…"


def editor_language() -> str | None:
    """Markdown highlighting when tree-sitter grammars are installed (textual[syntax])."""
    return "markdown" if importlib.util.find_spec("tree_sitter_markdown") else None
