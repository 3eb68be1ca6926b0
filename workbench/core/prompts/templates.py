"""Prompt templates: Jinja2 bodies with TOML front matter.

A template file looks like::

    +++
    name = "solve-gsm8k"
    purpose = "solve"
    variables = ["question"]          # required
    optional = ["answer_format"]      # may be left out ({% if x is defined %})
    [defaults]                        # default request settings
    temperature = 0.7
    +++
    <<system>>
    You are a careful math tutor.
    <<user>>
    Problem: {{ question }}

Lines ``<<system>>``, ``<<user>>`` and ``<<assistant>>`` split the rendered text into
chat turns; a body without them is one user turn.  Jinja only reacts to ``{{``,
``{%`` and ``{#``, so LaTeX braces in the body stay literal, and variable values
are never re-parsed.  Rendering uses ``StrictUndefined``: a missing, unknown or
undeclared variable is an ``InputError`` naming it.  Store helpers (versions,
import/export) live in ``versions.py``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from workbench.core.errors import InputError
from workbench.core.providers import Message, ModelRequest

TEMPLATE_SUFFIX = ".md.j2"
FRONT_MATTER_FENCE = "+++"
PURPOSES = ("perturb", "solve", "continue", "judge", "select", "critique")  # plus "csv-*"
ROLES = ("system", "user", "assistant")
DEFAULT_NAMES = ("perturb-step", "solve-gsm8k", "solve-math", "continue", "judge-recovery")

#: request settings a template may set in ``[defaults]``
_DEFAULT_KEYS = {"temperature", "top_p", "max_tokens", "stop", "seed"}
_ROLE_LINE = re.compile(r"^<<(system|user|assistant)>>[ \t]*$", re.MULTILINE)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _environment() -> SandboxedEnvironment:
    # Sandboxed: templates are user-edited files.  No autoescape: output is plain text.
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


_ENV = _environment()


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered template: chat turns, and the same content as one flat string."""

    system: str | None
    messages: tuple[Message, ...]
    text: str

    def request(
        self, model: str, defaults: Mapping[str, Any] | None = None, **overrides: Any
    ) -> ModelRequest:
        """A ``ModelRequest`` for ``model`` with the template's defaults, then ``overrides``."""
        settings: dict[str, Any] = {**(defaults or {}), **overrides}
        if "stop" in settings:
            settings["stop"] = tuple(settings["stop"])
        return ModelRequest(model=model, messages=self.messages, system=self.system, **settings)


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template file.  ``source`` is the whole file, front matter included."""

    name: str
    purpose: str
    variables: tuple[str, ...]
    body: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    optional: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    body_line: int = 1  # line of ``source`` where the body starts (for error positions)

    @property
    def declared(self) -> tuple[str, ...]:
        return self.variables + self.optional

    def render(self, **variables: Any) -> RenderedPrompt:
        """Render with exactly the declared variables (optional ones may be left out)."""
        unknown = sorted(set(variables) - set(self.declared))
        if unknown:
            raise InputError(
                f"prompt '{self.name}': unknown variable '{unknown[0]}' "
                f"(declared: {', '.join(self.declared) or 'none'})"
            )
        missing = [v for v in self.variables if v not in variables]
        if missing:
            raise InputError(f"prompt '{self.name}': missing variable '{missing[0]}'")
        try:
            text = _compile(self).render(**variables)
        except jinja2.UndefinedError as exc:
            raise InputError(f"prompt '{self.name}': {exc}") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"prompt '{self.name}': {type(exc).__name__}: {exc}") from None
        return split_roles(text)

    def request(self, model: str, variables: Mapping[str, Any], **overrides: Any) -> ModelRequest:
        """Render and build a request carrying this template's default settings."""
        return self.render(**variables).request(model, self.defaults, **overrides)


_COMPILED: dict[str, jinja2.Template] = {}


def _compile(template: PromptTemplate) -> jinja2.Template:
    # Keyed by body: the editor re-renders the same draft on every keystroke of other fields.
    compiled = _COMPILED.get(template.body)
    if compiled is None:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        compiled = _ENV.from_string(template.body)
        _COMPILED[template.body] = compiled
    return compiled


def split_roles(text: str) -> RenderedPrompt:
    """Split rendered text on ``<<role>>`` lines into a system prompt and chat turns."""
    marks = list(_ROLE_LINE.finditer(text))
    if not marks:
        body = text.strip()
        return RenderedPrompt(None, (Message("user", body),), body)
    system_parts: list[str] = []
    messages: list[Message] = []
    lead = text[: marks[0].start()].strip()
    if lead:  # text before the first role line is a user turn
        messages.append(Message("user", lead))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        content = text[m.end() : end].strip("\n").rstrip()
        if m.group(1) == "system":
            system_parts.append(content)
        else:
            messages.append(Message(m.group(1), content))
    system = "\n\n".join(p for p in system_parts if p) or None
    flat = "\n\n".join([*([system] if system else []), *(msg.content for msg in messages)])
    return RenderedPrompt(system, tuple(messages), flat)


def parse_template(source: str, *, origin: str = "<prompt>") -> PromptTemplate:
    """Parse a template file's text; errors name ``origin`` and the line."""
    source = source.replace("\r\n", "\n")
    lines = source.split("\n")
    if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
        raise InputError(f"{origin}: line 1: expected front matter opening '+++'")
    try:
        close = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER_FENCE)
    except StopIteration:
        raise InputError(f"{origin}: front matter has no closing '+++'") from None
    try:
        front = tomllib.loads("\n".join(lines[1:close]))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{origin}: front matter: {exc}") from None
    body = "\n".join(lines[close + 1 :])
    template = PromptTemplate(
        name=_str_field(front, "name", origin),
        purpose=_str_field(front, "purpose", origin),
        variables=_names_field(front, "variables", origin),
        optional=_names_field(front, "optional", origin),
        description=str(front.get("description", "")),
        defaults=_defaults_field(front, origin),
        body=body,
        source=source,
        body_line=close + 2,
    )
    extra = sorted(
        set(front) - {"name", "purpose", "variables", "optional", "description", "defaults"}
    )
    if extra:
        raise InputError(f"{origin}: front matter: unknown key '{extra[0]}'")
    if not _NAME.match(template.name):
        raise InputError(f"{origin}: name '{template.name}' must be lowercase letters, digits, '-'")
    if template.purpose not in PURPOSES and not template.purpose.startswith("csv-"):
        raise InputError(
            f"{origin}: purpose '{template.purpose}' must be one of {', '.join(PURPOSES)} or csv-*"
        )
    _check_body(template, origin)
    return template


def _check_body(template: PromptTemplate, origin: str) -> None:
    try:
        ast = _ENV.parse(template.body)
        used = meta.find_undeclared_variables(ast)  # compiles: an unknown filter fails here
    except jinja2.TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) too
        line = (exc.lineno or 1) + template.body_line - 1
        raise InputError(f"{origin}: line {line}: {exc.message}") from None
    undeclared = sorted(used - set(template.declared))
    if undeclared:
        raise InputError(
            f"{origin}: template uses undeclared variable '{undeclared[0]}' "
            "(add it to variables or optional)"
        )


def _str_field(front: Mapping[str, Any], key: str, origin: str) -> str:
    value = front.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{origin}: front matter: '{key}' must be a non-empty string")
    return value.strip()


def _names_field(front: Mapping[str, Any], key: str, origin: str) -> tuple[str, ...]:
    value = front.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.isidentifier() for v in value
    ):
        raise InputError(f"{origin}: front matter: '{key}' must be a list of identifiers")
    return tuple(value)


def _defaults_field(front: Mapping[str, Any], origin: str) -> dict[str, Any]:
    value = front.get("defaults", {})
    if not isinstance(value, dict):
        raise InputError(f"{origin}: front matter: 'defaults' must be a table")
    unknown = sorted(set(value) - _DEFAULT_KEYS)
    if unknown:
        raise InputError(
            f"{origin}: front matter: defaults.{unknown[0]} is not a request setting "
            f"({', '.join(sorted(_DEFAULT_KEYS))})"
        )
    return dict(value)


# -- bundled defaults -----------------------------------------------------------


def _defaults_dir() -> Any:
    return resources.files("workbench") / "data" / "prompts"


def _default_files() -> dict[str, Any]:
    """Bundled template files by name; a file in a sub-folder is named ``folder-stem``."""
    found: dict[str, Any] = {}
    for entry in _defaults_dir().iterdir():
        if entry.name.endswith(TEMPLATE_SUFFIX):
            found[entry.name.removesuffix(TEMPLATE_SUFFIX)] = entry
        elif entry.is_dir():
            for p in entry.iterdir():
                if p.name.endswith(TEMPLATE_SUFFIX):
                    found[f"{entry.name}-{p.name.removesuffix(TEMPLATE_SUFFIX)}"] = p
    return found


def list_defaults() -> list[str]:
    """Names of the templates that ship with workbench (``methods-*`` from ``methods/``)."""
    return sorted(_default_files())


def default_source(name: str) -> str:
    """The text of a bundled template file."""
    path = _default_files().get(name)
    if path is None:
        raise InputError(f"no default prompt '{name}' (defaults: {', '.join(list_defaults())})")
    return str(path.read_text(encoding="utf-8"))


def load_default(name: str) -> PromptTemplate:
    """A bundled template, parsed."""
    return parse_template(default_source(name), origin=f"{name}{TEMPLATE_SUFFIX}")
