"""Run builder: pick an experiment, problems, models, prompts, samples, limits; see the cost.

Two tabs (``ctrl+t`` switches): "run" holds what every run has (experiment, problems,
models, samples, concurrency, budget); "settings" holds every other field of the chosen
experiment's config, one visible field each, prefilled with its default.  A field the
validator rejects is marked and named.  The builder opens with the last launched
config of this session (or a run's config, to re-run an edited copy of it).

Every change re-plans the run in a thread worker: the config is validated
(one-line errors), missing API keys are reported (``ProviderRegistry.check_ready``),
and the planned requests and cost range are shown before anything is sent.
Launching above ``settings.confirm_above_usd`` asks for an explicit confirm.
"""

from __future__ import annotations

import contextlib
import tomllib
import types
import typing
from dataclasses import dataclass
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static, TabbedContent, TabPane
from textual.widgets.select import InvalidSelectValueError

from workbench.core.errors import WorkbenchError
from workbench.core.experiments import experiment_kinds, load_experiment_config
from workbench.core.experiments.estimate import (
    Estimate,
    estimate_items,
    plan_experiment,
    project_pending,
)
from workbench.core.library.problems import ProblemSelection, list_problem_sets
from workbench.tui.dialogs import ConfirmDialog
from workbench.tui.live_runs import LaunchRequest
from workbench.tui.workspace import Workspace, workspace_of

#: form role -> config fields that take it, in order of preference
ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "perturber": ("perturber",),
    "completer": ("completer",),
    "solver": ("solver", "solvers"),
    "judge": ("judge",),
}
SAMPLE_FIELDS = ("samples",)
ALL_PROBLEMS = "__all__"
#: config fields the "run" tab edits (or that are never edited by hand)
BASIC_FIELDS = frozenset(
    {"kind", "name", "problems", "budget_usd", "concurrency", "prompt_pins", *SAMPLE_FIELDS}
    | {f for fields in ROLE_FIELDS.values() for f in fields}
)


@dataclass
class PlanReady(Message):
    token: int
    config: Any
    refs: tuple[str, ...]
    estimate: Estimate
    problems: list[str]


@dataclass
class PlanFailed(Message):
    token: int
    error: str


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not type(None))


def _parse_pairs(text: str, where: str) -> dict[str, Any]:
    """``a=1, b="x", c=[1,2]`` -> dict; values are TOML, bare words are strings."""
    out: dict[str, Any] = {}
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise WorkbenchError(f"{where}: '{part}' is not key=value")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def _is_text(annotation: Any) -> bool:
    """A field whose value is a string (or a choice of strings): typed text is taken as is."""
    if annotation is str:
        return True
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return all(isinstance(a, str) for a in args)
    unions = (typing.Union, types.UnionType)  # str | None; never list[str] or dict[str, str]
    return typing.get_origin(annotation) in unions and bool(args) and all(map(_is_text, args))


def setting_fields(cls: Any) -> list[str]:
    """The config fields of ``cls`` the "settings" tab shows, in declaration order."""
    return [f for f in cls.config_model.model_fields if f not in BASIC_FIELDS]


def setting_text(value: Any) -> str:
    """A config value as the text its field shows (TOML for lists and tables)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "model_dump"):
        return setting_text(value.model_dump(mode="json"))
    return str(value)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return setting_text(value)


def parse_setting(cls: Any, name: str, text: str) -> Any:
    """A settings field's text as a config value: strings as typed, anything else as TOML."""
    annotation = cls.config_model.model_fields[name].annotation
    if _is_text(annotation):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # the validator names the field and says what it wants


def default_text(cls: Any, name: str) -> str:
    info = cls.config_model.model_fields[name]
    return "" if info.is_required() else setting_text(info.get_default(call_default_factory=True))


def build_config_data(cls: Any, form: dict[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The config dict for experiment class ``cls`` from the form's strings, and its models.

    ``form`` holds the "run" tab's fields by name and each setting as ``setting:NAME``
    (included when it differs from the default)."""
    fields = cls.config_model.model_fields
    data: dict[str, Any] = {"kind": cls.kind}
    if form.get("name"):
        data["name"] = form["name"]
    problems: dict[str, Any] = {}
    if form.get("set") and form["set"] != ALL_PROBLEMS:
        problems["set"] = form["set"]
    if form.get("limit"):
        try:
            problems["limit"] = int(form["limit"])
        except ValueError:
            raise WorkbenchError(f"problems: limit '{form['limit']}' is not a number") from None
    if problems:
        data["problems"] = problems
    refs: list[str] = []
    for role, candidates in ROLE_FIELDS.items():
        value = form.get(role, "").strip()
        field = next((f for f in candidates if f in fields), None)
        if not value or field is None:
            continue
        values = [v.strip() for v in value.split(",") if v.strip()]
        refs += values
        data[field] = values if _is_sequence(fields[field].annotation) else values[0]
    sample_field = next((f for f in SAMPLE_FIELDS if f in fields), None)
    if form.get("samples") and sample_field:
        try:
            data[sample_field] = int(form["samples"])
        except ValueError:
            raise WorkbenchError(f"samples: '{form['samples']}' is not a number") from None
    for key, label in (("concurrency", "concurrency"), ("budget", "budget_usd")):
        if form.get(key):
            try:
                data[label] = int(form[key]) if key == "concurrency" else float(form[key])
            except ValueError:
                raise WorkbenchError(f"{key}: '{form[key]}' is not a number") from None
    for name in setting_fields(cls):
        text = form.get(f"setting:{name}", "").strip()
        if text and text != default_text(cls, name):
            data[name] = parse_setting(cls, name, text)
    if form.get("problems_extra"):
        extra = tomllib.loads(f"v = {form['problems_extra']}")["v"]  # written by setting_text
        data["problems"] = {**extra, **problems}
    for key in ("judge", "checker"):  # models named in the extra settings count too
        if isinstance(data.get(key), str) and data[key] not in refs:
            refs.append(data[key])
    return data, tuple(dict.fromkeys(refs))


def validate_config(data: dict[str, Any]) -> Any:
    return load_experiment_config(data)


class RunBuilderScreen(ModalScreen[LaunchRequest | None]):
    """Returns a ``LaunchRequest`` (or None when cancelled).

    ``initial``: a config (as stored) to start from: a run to re-run, or the last launch."""

    DEFAULT_CLASSES = "dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Back", id="builder.cancel"),
        Binding("ctrl+l", "launch", "Launch", id="builder.launch"),
        Binding("ctrl+t", "next_tab", "Next tab", id="builder.next_tab"),
    ]

    def __init__(self, initial: dict[str, Any] | None = None, *, title: str = "New run") -> None:
        super().__init__()
        self.kinds = experiment_kinds(launchable=True)
        self.initial = dict(initial or {})
        self.title_text = title
        self.plan: PlanReady | None = None
        self._token = 0
        self._debounce: Timer | None = None
        self._parked: dict[str, str] = {}  # role -> model typed before its field was disabled
        self._settings_kind: str | None = None  # the kind the settings tab shows
        self._problems_extra = ""  # a cloned selection's keys the form has no field for

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def _row(self, label: str, widget: Any) -> Horizontal:
        return Horizontal(Label(label, classes="builder-label"), widget, classes="builder-row")

    def compose(self) -> ComposeResult:
        sets = [s.name for s in list_problem_sets(self.workspace.store)]
        set_options = [("all problems", ALL_PROBLEMS)] + [(name, name) for name in sets]
        kinds = sorted(self.kinds)
        default_model = self.workspace.settings.default_model
        with Vertical(classes="dialog-box builder-box") as box:
            box.border_title = self.title_text
            with TabbedContent(id="builder-tabs", initial="tab-run"):
                with (
                    TabPane("run", id="tab-run"),
                    VerticalScroll(id="builder-form", can_focus=False),
                ):
                    yield self._row(
                        "experiment",
                        Select(
                            [(k, k) for k in kinds],
                            # the day starts with calibration; other kinds sort around it
                            value="calibration" if "calibration" in kinds else Select.NULL,
                            allow_blank=not kinds,
                            id="b-kind",
                        ),
                    )
                    yield self._row("name", Input(placeholder="optional", id="b-name"))
                    yield self._row(
                        "problem set",
                        Select(
                            set_options,
                            value=sets[0] if sets else ALL_PROBLEMS,
                            allow_blank=False,
                            id="b-set",
                        ),
                    )
                    yield self._row("limit", Input(placeholder="all", id="b-limit", type="integer"))
                    for role in ROLE_FIELDS:
                        yield self._row(role, Input(default_model, id=f"b-{role}"))
                    yield self._row(
                        "samples", Input(placeholder="default", id="b-samples", type="integer")
                    )
                    yield self._row(
                        "concurrency",
                        Input(placeholder="provider default", id="b-concurrency", type="integer"),
                    )
                    yield self._row(
                        "budget (USD)", Input(placeholder="no cap", id="b-budget", type="number")
                    )
                    yield Static("", id="b-problems-extra", markup=False)
                with (
                    TabPane("settings", id="tab-settings"),
                    VerticalScroll(id="builder-settings", can_focus=False),
                ):
                    yield Static("", id="settings-note")
            yield Static("planning…", id="builder-estimate")
            yield Static("", id="builder-problems")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch", variant="primary", id="b-launch", disabled=True)
                yield Button("Cancel", id="b-cancel")
            yield Static(
                "ctrl+l launch · ctrl+t run / settings · escape back", classes="dialog-hint"
            )

    async def on_mount(self) -> None:
        if self.initial.get("kind") in self.kinds:
            self.query_one("#b-kind", Select).value = self.initial["kind"]
        await self._kind_changed()
        self._fill(self.initial)
        self._schedule()
        # start on the first field: a focused scroll container swallows typing unseen
        self.query_one("#b-kind", Select).focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # CSS :focus-within does not refresh on tab here, so mark the focused row by hand
        for row in self.query(".builder-row"):
            row.set_class(event.widget in row.walk_children(), "-focused")

    def action_next_tab(self) -> None:
        tabs = self.query_one("#builder-tabs", TabbedContent)
        tabs.active = "tab-settings" if tabs.active == "tab-run" else "tab-run"
        pane = "#builder-settings" if tabs.active == "tab-settings" else "#builder-form"
        first = self.query_one(pane).query("Input, Select").first()
        first.focus()

    # -- form --------------------------------------------------------------------

    def form(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in ("name", "limit", *ROLE_FIELDS, "samples", "concurrency", "budget"):
            values[name] = self.query_one(f"#b-{name}", Input).value.strip()
        for name in ("kind", "set"):
            value = self.query_one(f"#b-{name}", Select).value
            values[name] = "" if value is Select.NULL else str(value)
        for box in self.query_one("#builder-settings").query(Input):
            if box.id and box.id.startswith("bs-"):
                values[f"setting:{box.id[3:]}"] = box.value.strip()
        if self._problems_extra:
            values["problems_extra"] = self._problems_extra
        return values

    def _fill(self, config: dict[str, Any]) -> None:
        """Put a stored config's values into the fields (a re-run, or the last launch)."""
        if not config:
            return
        cls = self.kinds.get(self.form()["kind"])
        if cls is None or config.get("kind") != cls.kind:
            return
        fields = cls.config_model.model_fields
        if config.get("name"):
            self.query_one("#b-name", Input).value = str(config["name"])
        problems = dict(config.get("problems") or {})
        chosen_set = problems.pop("set", None)
        if chosen_set is not None:
            with contextlib.suppress(InvalidSelectValueError):  # a set deleted since
                self.query_one("#b-set", Select).value = chosen_set
        limit = problems.pop("limit", None)
        self.query_one("#b-limit", Input).value = "" if limit is None else str(limit)
        defaults = ProblemSelection().model_dump(mode="json")
        extra = {k: v for k, v in problems.items() if v != defaults.get(k)}
        self._problems_extra = setting_text(extra) if extra else ""
        self.query_one("#b-problems-extra", Static).update(
            f"problems also: {self._problems_extra}" if extra else ""
        )
        for role, candidates in ROLE_FIELDS.items():
            used = next((f for f in candidates if f in fields), None)
            if used is not None and config.get(used):
                value = config[used]
                text = ", ".join(value) if isinstance(value, list | tuple) else str(value)
                self.query_one(f"#b-{role}", Input).value = text
        for name, key in (("samples", "samples"), ("concurrency", "concurrency"),
                          ("budget", "budget_usd")):  # fmt: skip
            value = config.get(key)
            self.query_one(f"#b-{name}", Input).value = "" if value is None else setting_text(value)
        for name in setting_fields(cls):
            if name in config:
                self.query_one(f"#bs-{name}", Input).value = setting_text(config[name])

    async def _kind_changed(self) -> None:
        cls = self.kinds.get(self.form()["kind"])
        fields = cls.config_model.model_fields if cls else {}
        kind = self.form()["kind"] or "this experiment"
        for role, candidates in ROLE_FIELDS.items():
            box = self.query_one(f"#b-{role}", Input)
            used = next((f for f in candidates if f in fields), None)
            if used is None and not box.disabled:
                # an unused role showing a model reads as if that model will be called
                self._parked[role], box.value = box.value, ""
            elif used is not None and box.disabled and not box.value:
                box.value = self._parked.pop(role, self.workspace.settings.default_model)
            box.disabled = used is None
            box.placeholder = "" if used else f"not used by {kind}"
            box.tooltip = f"config field: {used}" if used else f"not used by {kind}"
        if cls is not None and cls.kind != self._settings_kind:
            await self._show_settings(cls)

    async def _show_settings(self, cls: Any) -> None:
        """One visible field per setting of ``cls``, prefilled with its default."""
        self._settings_kind = cls.kind
        pane = self.query_one("#builder-settings", VerticalScroll)
        await pane.query(".builder-row").remove()
        rows = []
        for name in setting_fields(cls):
            info = cls.config_model.model_fields[name]
            box = Input(
                default_text(cls, name),
                placeholder="required" if info.is_required() else "default",
                id=f"bs-{name}",
            )
            kind = typing.get_args(info.annotation) or info.annotation
            constraints = " ".join(str(m) for m in info.metadata)
            box.tooltip = f"{name}: {getattr(info.annotation, '__name__', kind)} {constraints}"
            rows.append(self._row(name.replace("_", " "), box))
        await pane.mount_all(rows)
        self.query_one("#settings-note", Static).update(
            f'{len(rows)} settings of {cls.kind} · empty = default · lists as ["a", "b"]'
        )

    @on(Select.Changed)
    async def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "b-kind":
            await self._kind_changed()
        self._schedule()

    @on(Input.Changed)
    def _input_changed(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        """Re-plan shortly after the last keystroke."""
        self.query_one("#b-launch", Button).disabled = True
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.25, self._replan)

    def _replan(self) -> None:
        self._token += 1
        form = self.form()
        cls = self.kinds.get(form["kind"])
        if cls is None:
            self._failed(self._token, "no experiment kinds are available")
            return
        self.query_one("#builder-estimate", Static).update("planning…")
        self._plan(self._token, cls, form)

    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-plan")
    def _plan(self, token: int, cls: Any, form: dict[str, str]) -> None:
        from workbench.core.engine import PriceTable
        from workbench.core.providers import ProviderRegistry

        settings = self.workspace.settings
        try:
            data, refs = build_config_data(cls, form)
            config = validate_config(data)
            problems = ProviderRegistry(settings).check_ready(list(refs))
            store = self.workspace.store.reopen()
            try:
                items, pending = plan_experiment(store, config)
                projected, pending = project_pending(config, items, pending)
                estimate = estimate_items(
                    store,
                    PriceTable.load(settings),
                    items,
                    pending_stages=pending,
                    projected=projected,
                )
            finally:
                store.close()
        except Exception as exc:  # validation and planning errors are one line
            self.post_message(
                PlanFailed(token, str(exc).splitlines()[0] if str(exc) else repr(exc))
            )
            return
        self.post_message(PlanReady(token, config, refs, estimate, problems))

    @on(PlanFailed)
    def _plan_failed(self, message: PlanFailed) -> None:
        self._failed(message.token, message.error)

    def _failed(self, token: int, error: str) -> None:
        if token != self._token:
            return
        # "config: temperature: Input should be…": mark the field the validator names
        field = error.split(": ")[1] if error.startswith("config: ") else ""
        for row in self.query(".builder-row"):
            box = row.query(Input).first() if row.query(Input) else None
            ids = {f"bs-{field}", f"b-{field}"}
            row.set_class(box is not None and box.id in ids, "-invalid")
        self.plan = None
        self.query_one("#builder-estimate", Static).update("")
        self.query_one("#builder-problems", Static).update(error)
        self.query_one("#b-launch", Button).disabled = True

    @on(PlanReady)
    def _plan_ready(self, message: PlanReady) -> None:
        if message.token != self._token:
            return  # the form changed since
        for row in self.query(".builder-row.-invalid"):
            row.remove_class("-invalid")
        self.plan = message
        est = message.estimate
        lines = [f"planned: {est.summary()}"]
        for s in est.stages:
            proj = (
                f"~{s.projected_output_tokens:,} out ({s.history_calls} earlier calls)"
                if s.projected_output_tokens is not None
                else "out ≤ max_tokens"
            )
            cost = (
                "unpriced"
                if s.cost_high is None
                else f"${s.cost_low or 0:,.2f}–${s.cost_high:,.2f}"
            )
            version = f" (prompt {s.plan.prompt_version})" if s.plan.prompt_version else ""
            n = s.plan.n_requests
            lines.append(
                f"  {s.plan.stage}{version} · {s.plan.model_ref}: "
                f"{n:,} request{'' if n == 1 else 's'}, ~{s.plan.input_tokens:,} in, {proj}, {cost}"
            )
        high = est.cost_high or 0.0
        cap = message.config.budget_usd
        if cap is not None and est.cost_high is not None and est.cost_high > cap:
            low = est.cost_low or 0.0
            lines.append(
                f"warning: the estimate {'exceeds' if low > cap else 'may exceed'} the "
                f"${cap:,.2f} budget cap; the run stops near the cap (raise it on resume)"
            )
        if high > self.workspace.settings.confirm_above_usd:
            lines.append(
                f"above ${self.workspace.settings.confirm_above_usd:,.2f}: launch asks to confirm"
            )
        self.query_one("#builder-estimate", Static).update("\n".join(lines))
        problems = "\n".join(f"missing: {p}" for p in message.problems)
        self.query_one("#builder-problems", Static).update(problems)
        self.query_one("#b-launch", Button).disabled = bool(message.problems)

    # -- launching -------------------------------------------------------------

    @on(Button.Pressed, "#b-launch")
    def action_launch(self) -> None:
        plan = self.plan
        if plan is None or plan.problems or self.query_one("#b-launch", Button).disabled:
            self.notify("fix the problems shown before launching", severity="warning", timeout=3)
            return
        request = LaunchRequest(plan.config, plan.refs, plan.estimate)
        memory = self.workspace.last_launch  # the next builder opens with these values
        memory.clear()
        memory.update(plan.config.model_dump(mode="json", exclude_defaults=True))
        memory["kind"] = plan.config.kind  # a default too, but the builder keys on it
        high = plan.estimate.cost_high or 0.0
        threshold = self.workspace.settings.confirm_above_usd
        if high <= threshold:
            self.dismiss(request)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.dismiss(request)

        self.app.push_screen(
            ConfirmDialog(
                "Confirm launch",
                f"This run may cost up to ${high:,.2f} (threshold ${threshold:,.2f}). Launch?",
                yes="Launch",
                no="Back",
            ),
            confirmed,
        )

    @on(Button.Pressed, "#b-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
