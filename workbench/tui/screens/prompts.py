"""Prompts: versions, an editor with live preview, and a playground to try and compare.

The editor renders the draft on a problem from the library on every change and
shows template errors inline.  "Try" saves the draft as a version (the same
text is the same version) and runs the ``perturb-preview`` experiment through
the run engine on the first N problems, so its calls get cache, costs and the
journal like any run.  Results per version can be compared side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.markup import escape
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    TabbedContent,
    TabPane,
    TextArea,
    Tree,
)

from workbench.core.engine import Event, ItemFinished, StageStarted
from workbench.core.errors import WorkbenchError
from workbench.core.experiments.playground import (
    PerturbPreviewConfig,
    PreviewResult,
    final_results,
    latest_results,
    version_pass_rates,
)
from workbench.core.library import ProblemSelection
from workbench.core.prompts import PromptTemplate, parse_template
from workbench.core.prompts.versions import (
    PromptVersion,
    get_version,
    list_prompts,
    save_version,
    seed_defaults,
    versions,
)
from workbench.core.views.problems import StepProblem, problem_set_exists, step_problems
from workbench.core.views.prompt_compare import PromptDiff, prompt_diff
from workbench.tui.commands import PaletteCommand
from workbench.tui.dialogs import ConfirmDialog, TextInputDialog
from workbench.tui.prompt_playground import (
    MAX_LIBRARY_PROBLEMS,
    PREVIEW_SEED,
    TryFailed,
    TryFinished,
    TryProgress,
    cost_text,
    preview_variables,
    rendered_content,
)
from workbench.tui.widgets.prompt_editor import PromptEditorPane
from workbench.tui.widgets.prompt_tree import (
    PromptEntry,
    PromptTree,
    version_name,
    version_numbers,
)
from workbench.tui.widgets.try_pane import TryPane
from workbench.tui.widgets.version_compare import (
    VersionCompare,
    pass_rate_text,
)
from workbench.tui.workspace import Workspace, workspace_of

#: what "prompts: new" puts in the editor: rename it, write the body, save
NEW_PROMPT = """\
+++
name = "new-prompt"
purpose = "solve"
variables = ["question"]
+++
<<user>>
Problem: {{ question }}
"""

# -- the screen ------------------------------------------------------------------------


class PromptsScreen(Screen[None]):
    """Prompt versions, editor + live preview, playground and comparison."""

    PALETTE = (
        PaletteCommand("prompts: new", "Start a new prompt in the editor", "new_prompt"),
        PaletteCommand("prompts: save", "Save the draft as a new prompt version", "save"),
        PaletteCommand("prompts: try", "Try the draft on N problems with a model", "try_draft"),
        PaletteCommand(
            "prompts: next problem", "Preview the draft on the next problem", "next_problem"
        ),
    )
    CSS_PATH = "prompts.tcss"
    #: calls finished and calls planned in the running Try
    try_progress: var[tuple[int, int]] = var((0, 0), init=False)
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="prompts.save"),
        Binding("ctrl+r", "try_draft", "Try", id="prompts.try"),
        Binding("ctrl+n", "next_problem", "Next problem", id="prompts.next_problem"),
        Binding("ctrl+t", "next_tab", "Next tab", id="prompts.next_tab"),
        Binding("ctrl+o", "focus_list", "Versions", id="prompts.focus_list"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.version: PromptVersion | None = None
        self.library: list[StepProblem] = []
        self.problem_pos = 0
        self.results: dict[int, list[PreviewResult]] = {}  # version id -> last Try
        self.try_running = False
        self._followed_set: str | None = None  # the Problems set last put in "set"
        self.try_label = ""
        self.try_started = 0.0
        self.last_error: str | None = None

    @property
    def workspace(self) -> Workspace:
        return workspace_of(self)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="prompts-body"):
            with Vertical(id="prompts-side"):
                yield PromptTree("prompts", id="prompt-tree")
            with TabbedContent(id="prompts-tabs", initial="tab-edit"):
                with TabPane("Edit", id="tab-edit"):
                    yield PromptEditorPane()
                with TabPane("Try", id="tab-try"):
                    yield TryPane(id="try-pane")
                with TabPane("Compare", id="tab-compare"):
                    yield VersionCompare(self.results_for, self.diff_for, id="compare")
        yield Footer()

    @property
    def edit_pane(self) -> PromptEditorPane:
        return self.query_one(PromptEditorPane)

    @property
    def try_pane(self) -> TryPane:
        return self.query_one(TryPane)

    def on_mount(self) -> None:
        self.query_one("#try-model", Input).value = self.workspace.settings.default_model
        seed_defaults(self.workspace.store)
        self._follow_focused_set()
        self.library = self._load_library(self.query_one("#try-set", Input).value.strip())
        # a local model call can take a minute: tick the elapsed time so a Try looks alive
        self.set_interval(1.0, self._show_try_progress)
        self.refresh_tree()
        first = versions(self.workspace.store, "perturb-step")
        if first:
            self.load_version(first[-1])

    def on_screen_resume(self) -> None:
        # Problems may have been imported, or a set chosen, in another section since
        self._follow_focused_set()
        self.library = self._load_library(self.query_one("#try-set", Input).value.strip())
        self.refresh_preview()

    def _follow_focused_set(self) -> None:
        """Try on the problem set last chosen or saved on Problems, not the library's
        first problems (until the user types another set here)."""
        focused = self.workspace.focus.get("problem_set")
        field = self.query_one("#try-set", Input)
        if (
            focused
            and focused != self._followed_set
            and problem_set_exists(self.workspace.store, focused)
        ):
            field.value = focused
            self._followed_set = focused
            self.problem_pos = 0

    # -- library and versions ------------------------------------------------------

    def _load_library(self, problem_set: str = "") -> list[StepProblem]:
        """Problems to preview and try: a named problem set, or the library by id."""
        return step_problems(self.workspace.store, problem_set, limit=MAX_LIBRARY_PROBLEMS)

    @on(Input.Submitted, "#try-set")
    def _set_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if name and not problem_set_exists(self.workspace.store, name):
            self.notify(f"no problem set named '{name}'", severity="error")
            return
        self.library = self._load_library(name)
        self.problem_pos = 0
        self.refresh_preview()
        self.notify(f"{len(self.library)} problem(s) with steps in {name or 'the library'}")

    def refresh_tree(self) -> None:
        store = self.workspace.store
        self.query_one(PromptTree).show(
            PromptEntry(info, versions(store, info.name), version_pass_rates(store, info.name))
            for info in list_prompts(store)
        )

    @on(Tree.NodeSelected, "#prompt-tree")
    def _node_selected(self, event: Tree.NodeSelected[tuple[str, Any]]) -> None:
        data = event.node.data
        if data is None:
            return
        kind, value = data
        if kind == "version":
            chosen: PromptVersion | None = get_version(self.workspace.store, int(value))
        else:
            found = versions(self.workspace.store, str(value))
            chosen = found[-1] if found else None
        if chosen is not None and chosen != self.version:
            self.unless_draft_kept(lambda: self.load_version(chosen))

    @property
    def draft_unsaved(self) -> bool:
        """The editor holds text that no version (nor the fresh-prompt stub) has."""
        loaded = self.version.body if self.version is not None else NEW_PROMPT
        return self.edit_pane.editor.text.rstrip() != loaded.rstrip()

    def unless_draft_kept(self, then: Callable[[], object]) -> None:
        """Run ``then`` (which replaces the editor's text), asking first when the draft has
        unsaved changes: they are lost otherwise."""
        if not self.draft_unsaved:
            then()
            return
        where = self._version_name(self.version) if self.version else "a new prompt"

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(
            ConfirmDialog(
                "Discard the draft?",
                f"The editor has unsaved changes to {where}.  Discard them?  "
                "(keep editing, then ctrl+s saves them as a version)",
                yes="Discard",
                no="Keep editing",
            ),
            answered,
        )

    def _version_name(self, version: PromptVersion) -> str:
        """``perturb-step v3 (@13)``: numbered within its prompt (the id is what runs pin)."""
        numbers = version_numbers(versions(self.workspace.store, version.name))
        return version_name(version, numbers.get(version.id))

    def _title(self, version: PromptVersion) -> str:
        """The editor's border title (markup: the note is escaped)."""
        note = f" · {version.note}" if version.note else ""
        return escape(f"{self._version_name(version)}{note}")

    def load_version(self, version: PromptVersion) -> None:
        self.version = version
        self.edit_pane.load(version.body, self._title(version))
        self.refresh_preview()
        self.refresh_compare_choices()

    # -- live preview ---------------------------------------------------------------

    @property
    def preview_problem(self) -> StepProblem | None:
        if not self.library:
            return None
        return self.library[self.problem_pos % len(self.library)]

    @on(TextArea.Changed, "#editor")
    def _draft_changed(self) -> None:
        self.refresh_preview()

    def draft_template(self) -> PromptTemplate:
        origin = self.version.label if self.version else "draft"
        return parse_template(self.edit_pane.editor.text, origin=origin)

    def refresh_preview(self) -> None:
        problem = self.preview_problem
        preview = self.edit_pane.preview
        if problem is None:
            preview.show_problem(
                "No problems with steps yet, so nothing to preview: "
                "import some in Problems (1, then i)."
            )
        else:
            pos = self.problem_pos % len(self.library) + 1
            preview.show_problem(f"problem {pos}/{len(self.library)}: {problem.id}  (ctrl+n next)")
        try:
            template = self.draft_template()
            if problem is None:  # check the template, but "missing question" is not its fault
                self.show_error(None)
                preview.show_rendered("")
                return
            rendered = template.render(**preview_variables(template, problem))
        except WorkbenchError as exc:
            self.show_error(str(exc))
            return
        self.show_error(None)
        preview.show_rendered(rendered_content(rendered))

    def show_error(self, error: str | None) -> None:
        self.last_error = error
        self.edit_pane.show_error(error)

    def action_next_problem(self) -> None:
        self.problem_pos += 1
        self.refresh_preview()

    # -- saving -----------------------------------------------------------------------

    def save_draft(self, note: str) -> PromptVersion | None:
        """Record the editor text as a version; errors are notified, not raised."""
        text = self.edit_pane.editor.text
        try:
            template = parse_template(text, origin="draft")
            parent = (
                self.version.id if self.version and self.version.name == template.name else None
            )
            vid = save_version(
                self.workspace.store, template.name, text, note=note, parent_id=parent
            )
        except WorkbenchError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return None
        version = get_version(self.workspace.store, vid)
        self.version = version
        self.edit_pane.editor.border_title = self._title(version)
        self.refresh_tree()
        self.refresh_compare_choices()
        return version

    def action_save(self) -> None:
        if self.last_error:
            self.notify(self.last_error, title="Fix the template first", severity="error")
            return

        def done(note: str | None) -> None:
            if note is None:
                return
            version = self.save_draft(note)
            if version is not None:
                self.notify(f"saved {self._version_name(version)}", title="Prompt saved")

        self.app.push_screen(
            TextInputDialog("Save version", "Note for this version:", placeholder="what changed"),
            done,
        )

    def action_new_prompt(self) -> None:
        """A fresh draft in the editor; saving it (ctrl+s) records the prompt's first version."""
        self.unless_draft_kept(self._new_prompt)

    def _new_prompt(self) -> None:
        self.version = None
        self.edit_pane.load(NEW_PROMPT, "new prompt · draft")
        self.query_one("#prompts-tabs", TabbedContent).active = "tab-edit"
        self.edit_pane.editor.focus()
        self.refresh_preview()

    # -- trying ------------------------------------------------------------------------

    @on(Button.Pressed, "#try-run")
    def _try_pressed(self) -> None:
        self.action_try_draft()

    def action_try_draft(self) -> None:
        if self.try_running:
            self.notify("a Try is already running", severity="warning")
            return
        try:
            template = self.draft_template()
        except WorkbenchError as exc:
            self.notify(str(exc), title="Cannot try", severity="error")
            return
        if template.purpose != "perturb":
            self.notify(
                "Try runs perturb prompts; this one is " + template.purpose, severity="warning"
            )
            return
        n_text = self.query_one("#try-n", Input).value.strip() or "3"
        n = max(1, int(n_text)) if n_text.isdigit() else 3
        problems = [p.id for p in self.library[:n]]
        if not problems:
            self.notify("no problems with steps in the library", severity="warning")
            return
        version = self.save_draft("tried in playground")
        if version is None:
            return
        model = (
            self.query_one("#try-model", Input).value.strip()
            or self.workspace.settings.default_model
        )
        self.try_running = True
        self.try_label = f"{self._version_name(version)} with {model}"
        self.try_started = time.monotonic()
        self.try_progress = (0, len(problems))
        self.query_one("#prompts-tabs", TabbedContent).active = "tab-try"
        self._show_try_progress()
        self.run_try(version.id, model, problems)

    @work(exclusive=True, exit_on_error=False, group="playground")
    async def run_try(self, version_id: int, model: str, problem_ids: list[str]) -> None:
        """Run the preview experiment; only posts messages (handlers change widgets)."""
        from workbench.core.experiments import run_experiment

        counts = {"done": 0, "total": 0}

        def on_event(event: Event) -> None:
            if isinstance(event, StageStarted):
                counts["total"] += event.total
                counts["done"] += event.already_done
            elif isinstance(event, ItemFinished):
                counts["done"] += 1
            else:
                return
            self.post_message(TryProgress(counts["done"], counts["total"]))

        error_types, step = self.try_pane.plan_choice()
        config = PerturbPreviewConfig(
            name=f"playground {version_id}",
            prompt=str(version_id),
            model=model,
            problems=ProblemSelection(ids=tuple(problem_ids)),
            seed=PREVIEW_SEED,
            error_types=error_types,
            step=step,
        )
        store = self.workspace.store
        try:
            run_id = await run_experiment(
                store, self.workspace.providers, self.workspace.settings, config, on_event=on_event
            )
            self.post_message(TryFinished(version_id, run_id, final_results(store, run_id)))
        except WorkbenchError as exc:
            self.post_message(TryFailed(version_id, str(exc)))
        except Exception as exc:  # a worker must report, not vanish
            self.post_message(TryFailed(version_id, f"{type(exc).__name__}: {exc}"))

    def on_try_progress(self, message: TryProgress) -> None:
        self.try_progress = (message.done, message.total)

    def watch_try_progress(self) -> None:
        self._show_try_progress()

    def _show_try_progress(self) -> None:
        if not self.try_running:
            return
        done, total = self.try_progress
        elapsed = int(time.monotonic() - self.try_started)
        self.try_pane.show_status(
            f"trying {self.try_label}… {done}/{total} calls finished · "
            f"{elapsed // 60}:{elapsed % 60:02d} elapsed"
        )

    def on_try_failed(self, message: TryFailed) -> None:
        self.try_running = False
        self.try_pane.show_status(
            Content.from_markup("[$text-error]Try failed: $e[/]", e=message.error)
        )
        self.notify(message.error, title="Try failed", severity="error")

    def on_try_finished(self, message: TryFinished) -> None:
        self.try_running = False
        self.results[message.version_id] = message.results
        version = get_version(self.workspace.store, message.version_id)
        totals_cost = [r.cost_usd for r in message.results]
        cost = None if any(c is None for c in totals_cost) else sum(c or 0.0 for c in totals_cost)
        self.try_pane.show_status(
            f"{self._version_name(version)} run {message.run_id}: {pass_rate_text(message.results)} · "
            f"cost {cost_text(cost)}"
        )
        numbers = version_numbers(versions(self.workspace.store, version.name))
        self.try_pane.add_results(
            f"v{numbers.get(version.id, '?')}", message.run_id, message.results
        )
        self.refresh_tree()
        self.refresh_compare_choices()

    # -- comparing ------------------------------------------------------------------------

    def refresh_compare_choices(self) -> None:
        """Versions of the open prompt that have Try results, offered as A and B."""
        if self.version is None:
            return
        name = self.version.name
        ids = set(version_pass_rates(self.workspace.store, name))
        ids |= {v for v in self.results if get_version(self.workspace.store, v).name == name}
        numbers = version_numbers(versions(self.workspace.store, name))
        self.query_one(VersionCompare).set_choices(
            [(f"{name} v{numbers.get(v, '?')} (@{v})", v) for v in sorted(ids)]
        )

    def diff_for(self, a: int, b: int) -> PromptDiff:
        """Version A's text against B's, and the model each was tried with."""
        return prompt_diff(self.workspace.store, a, b)

    def results_for(self, version_id: int) -> list[PreviewResult]:
        if version_id not in self.results:
            self.results[version_id] = latest_results(self.workspace.store, version_id)
        return self.results[version_id]

    # -- navigation -----------------------------------------------------------------------

    def action_next_tab(self) -> None:
        tabs = self.query_one("#prompts-tabs", TabbedContent)
        order = ["tab-edit", "tab-try", "tab-compare"]
        tabs.active = order[(order.index(tabs.active) + 1) % len(order)]
        if tabs.active == "tab-compare":
            self.query_one(VersionCompare).refresh_view()

    def action_focus_list(self) -> None:
        self.query_one("#prompt-tree", Tree).focus()
