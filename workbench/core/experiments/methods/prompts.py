"""Prompt templates of the methods experiment (``workbench/data/prompts/methods/``).

Templates are resolved through the prompt store like every other prompt, so
a run records the exact version it used and users can edit them; the bundled
ones are saved into the store on first use (idempotent, like
``prompts.versions.seed_defaults``).  Their few-shot questions are read back from
the rendered template so the experiment can leave those problems out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from workbench.core.prompts import PromptVersion, resolve_version
from workbench.core.prompts.templates import PromptTemplate, default_source
from workbench.core.store import Store

ROLES = ("cot", "pal", "plan", "plan_code", "select", "reflect")

ANSWER_LINES = {
    "gsm8k": "The answer is N.  (N a plain number)",
    "math": "Final Answer: The final answer is X. I hope it is correct.",
}

_QUESTION = re.compile(r"^(?:Question|Problem):\s*(.+?)(?:\n\nPlan:|\Z)", re.S)


def bundled_source(name: str) -> str:
    return default_source(name)


def default_ref(role: str, style: str) -> str:
    """The bundled template for a role and answer style, e.g. ``methods-cot-gsm8k``."""
    if role in ("select", "reflect"):
        return f"methods-{role}"
    return f"methods-{role.replace('_', '-')}-{style}"


def resolve(store: Store, ref: str) -> PromptVersion:
    """A prompt version from a name / ``name@id`` / id; bundled templates are seeded on first use."""
    return resolve_version(store, ref)


def few_shot_questions(template: PromptTemplate, variables: dict[str, Any]) -> set[str]:
    """Questions of the worked examples (every user turn but the last), whitespace-normalised."""
    rendered = template.render(**variables)
    users = [m.content for m in rendered.messages if m.role == "user"][:-1]
    found = set()
    for text in users:
        m = _QUESTION.match(text.strip())
        if m:
            found.add(normalise_question(m.group(1)))
    return found


def normalise_question(text: str) -> str:
    return " ".join(text.split())


def example_questions(templates: Iterable[PromptTemplate]) -> set[str]:
    """Few-shot questions over several templates (placeholder values for their variables)."""
    questions: set[str] = set()
    for t in templates:
        placeholder: dict[str, Any] = {v: "" for v in t.variables}
        if "candidates" in placeholder:
            continue  # selection / reflection prompts have no worked examples
        questions |= few_shot_questions(t, placeholder)
    return questions
