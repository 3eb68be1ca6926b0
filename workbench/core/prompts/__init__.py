"""Prompt templates (Jinja2 with TOML front matter) and their immutable, content-hashed versions."""

from workbench.core.prompts.templates import PromptTemplate, RenderedPrompt, parse_template
from workbench.core.prompts.versions import (
    PromptVersion,
    list_prompts,
    resolve_version,
    save_version,
    seed_defaults,
)

__all__ = [
    "PromptTemplate",
    "PromptVersion",
    "RenderedPrompt",
    "list_prompts",
    "parse_template",
    "resolve_version",
    "save_version",
    "seed_defaults",
]
