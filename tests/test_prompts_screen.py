"""The prompt editor and playground, driven with Pilot against the loopback stub server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Select, Static, TextArea

from tests.stub_server import StubReply, StubServer
from workbench.core.prompts.versions import versions
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store, dumps, now_iso, open_store
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.dialogs import TextInputDialog
from workbench.tui.screens.prompts import PromptsScreen
from workbench.tui.widgets.step_diff import StepDiff

SIZE = (120, 40)
MODEL = "stub:tiny"
LEAK_MARKER = "ANNOUNCE THE CHANGE"  # a draft containing this gets labelled outputs

PROBLEMS = {
    "t-1": (
        "Janet has 16 eggs, eats 3 and bakes with 4. She sells the rest at $2. How much?",
        [
            "She eats and bakes 3 + 4 = 7 eggs.",
            "She sells 16 - 7 = 9 eggs.",
            "9 * 2 = 18",
            "#### 18",
        ],
        "18",
    ),
    "t-2": (
        "A robe takes 2 bolts of blue fiber and half that much white. How many bolts?",
        ["White fiber is 2 / 2 = 1 bolt.", "Total is 2 + 1 = 3 bolts.", "#### 3"],
        "3",
    ),
    "t-3": (
        "Tom reads 12 pages a day for 5 days. How many pages?",
        ["He reads 12 * 5 = 60 pages.", "#### 60"],
        "60",
    ),
}


def perturber(path: str, body: dict[str, Any]) -> StubReply:
    """A scripted perturber: changes the first number of the requested step."""
    whole = " ".join(str(m.get("content")) for m in body.get("messages", []))
    match = re.search(r"Step \d+ as given:\n(.*)\n", whole)
    step = match.group(1) if match else whole
    changed = re.sub(r"\d+", lambda m: str(int(m.group()) + 5), step, count=1)
    if LEAK_MARKER in whole:
        changed += " (instead of the right value)"
    return StubReply(text=f"<perturbed_step>\n{changed}\n</perturbed_step>")


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(responder=perturber) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "workbench.db") as s:
        with s.transaction():
            s.insert(
                "datasets",
                {
                    "id": "t",
                    "name": "t",
                    "origin": "test",
                    "format": "gsm8k",
                    "imported_at": now_iso(),
                },
            )
            for pid, (question, steps, answer) in PROBLEMS.items():
                s.insert(
                    "problems",
                    {
                        "id": pid,
                        "dataset_id": "t",
                        "source": "gsm8k",
                        "question": question,
                        "answer": answer,
                        "steps": dumps(steps),
                        "n_steps": len(steps),
                        "created_at": now_iso(),
                    },
                )
        yield s


def build(store: Store, stub: StubServer) -> WorkbenchApp:
    settings = Settings(
        providers={
            "stub": ProviderSettings(kind="openai-compatible", base_url=stub.openai_base_url)
        },
        pricing={MODEL: Price(input=1.0, output=2.0)},
        default_model=MODEL,
    )
    return make_app(store, ProviderRegistry(settings), settings)


async def open_prompts(app: WorkbenchApp, pilot: Any) -> PromptsScreen:
    await app.switch_mode("prompts")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PromptsScreen)
    return screen


def text_of(screen: PromptsScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def try_draft(app: WorkbenchApp, pilot: Any, screen: PromptsScreen) -> None:
    screen.query_one("#editor", TextArea).focus()
    await pilot.press("ctrl+r")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_editor_live_preview_and_inline_errors(store: Store, stub: StubServer) -> None:
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_prompts(app, pilot)
        editor = screen.query_one("#editor", TextArea)
        assert 'name = "perturb-step"' in editor.text
        preview = text_of(screen, "#preview")
        assert "Janet has 16 eggs" in preview and "Step 4: #### 18" in preview
        assert "problem 1/3: t-1" in text_of(screen, "#preview-problem")

        await pilot.press("ctrl+n")
        assert "problem 2/3: t-2" in text_of(screen, "#preview-problem")
        assert "A robe takes 2 bolts" in text_of(screen, "#preview")

        editor.load_text(editor.text.replace("{{ question }}", "{{ question }} {{ hint }}"))
        await pilot.pause()
        assert screen.last_error is not None and "undeclared variable 'hint'" in screen.last_error
        assert "undeclared variable 'hint'" in text_of(screen, "#preview-error")
        assert editor.has_class("-invalid")
        await pilot.press("ctrl+s")  # refused while the template is broken
        assert not isinstance(app.screen, TextInputDialog)

        editor.load_text(editor.text.replace(" {{ hint }}", "").replace("{{ step }}", "{{ step }"))
        await pilot.pause()
        assert screen.last_error is not None and re.search(r"line \d+:", screen.last_error)

        editor.load_text(
            editor.text.replace("{{ step }", "{{ step }}").replace("careless", "hurried")
        )
        await pilot.pause()
        assert screen.last_error is None and not editor.has_class("-invalid")

        before = versions(store, "perturb-step")
        editor.focus()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, TextInputDialog)
        await pilot.press(*"hurried wording", "enter")
        await pilot.pause()
        after = versions(store, "perturb-step")
        assert len(after) == len(before) + 1
        assert after[-1].note == "hurried wording" and after[-1].parent_id == before[-1].id
        assert "hurried" in after[-1].body and screen.version == after[-1]

        # preview (and Try) can draw from a named problem set instead of the library
        with store.transaction():
            set_id = store.insert("problem_sets", {"name": "pair", "created_at": now_iso()})
            for pos, pid in enumerate(["t-3", "t-2"]):
                store.insert(
                    "problem_set_members", {"set_id": set_id, "problem_id": pid, "position": pos}
                )
        set_input = screen.query_one("#try-set", Input)
        set_input.value = "pair"
        await set_input.action_submit()
        await pilot.pause()
        assert [p.id for p in screen.library] == ["t-3", "t-2"]
        assert "problem 1/2: t-3" in text_of(screen, "#preview-problem")


async def test_try_two_versions_and_compare(store: Store, stub: StubServer) -> None:
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_prompts(app, pilot)
        screen.query_one("#try-n", Input).value = "2"
        assert screen.query_one("#try-model", Input).value == MODEL

        await try_draft(app, pilot, screen)
        first = screen.version
        assert first is not None
        table = screen.query_one("#try-table", DataTable)
        assert table.row_count == 2
        status = text_of(screen, "#try-status")
        assert "2/2 valid (100%)" in status and "$" in status
        diff = screen.query_one("#try-diff", StepDiff)
        assert diff.original is not None and diff.perturbed is not None
        assert diff.original != diff.perturbed
        assert stub.paid == 2

        # the playground's calls are a run like any other: journal, cost, flags on samples
        run = store.query_one("SELECT id, kind FROM runs ORDER BY id DESC LIMIT 1")
        assert run is not None and run["kind"] == "perturb-preview"
        samples = store.samples(run["id"])
        assert {s["status"] for s in samples} == {"done"}
        assert all(s["payload"]["flags"] == [] for s in samples)
        assert all(s["payload"]["prompt_version_id"] == first.id for s in samples)
        assert all("prefix" in s["payload"] for s in samples)
        assert store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (run["id"],)) == 2

        # a second version whose outputs announce the change: invalid even after the retry
        editor = screen.query_one("#editor", TextArea)
        editor.load_text(editor.text.replace("Rules:", f"{LEAK_MARKER}.\nRules:"))
        await pilot.pause()
        await try_draft(app, pilot, screen)
        second = screen.version
        assert second is not None and second.id != first.id and second.parent_id == first.id
        assert table.row_count == 4
        assert "0/2 valid (0%)" in text_of(screen, "#try-status")
        assert stub.paid == 2 + 4  # two problems, two attempts each
        retry = stub.requests[-1].body["messages"]
        assert "That reply cannot be used" in retry[-1]["content"]

        # trying the first version again is served from the cache
        editor.load_text(first.body)
        await pilot.pause()
        await try_draft(app, pilot, screen)
        assert screen.version == first and stub.paid == 6

        await pilot.press("ctrl+t", "ctrl+t")
        a = screen.query_one("#compare-a", Select)
        b = screen.query_one("#compare-b", Select)
        a.value, b.value = first.id, second.id
        await pilot.pause()
        rates = text_of(screen, "#compare-rates")
        # numbered within the prompt (its first version is v1), with the id runs pin
        assert f"A perturb-step v1 (@{first.id}): 2/2 valid" in rates
        assert f"B perturb-step v2 (@{second.id}): 0/2 valid" in rates
        compare = screen.query_one("#compare-table", DataTable)
        assert compare.row_count == 2
        assert compare.get_row_at(0)[1:] == ["ok", "leaked_label"]
        compare.focus()
        compare.move_cursor(row=1)
        await pilot.pause()
        left = screen.query_one("#compare-diff-a", StepDiff)
        right = screen.query_one("#compare-diff-b", StepDiff)
        assert left.original == right.original
        assert right.perturbed is not None and "(instead of" in right.perturbed


async def test_try_reports_a_bad_model_without_crashing(store: Store, stub: StubServer) -> None:
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_prompts(app, pilot)
        screen.query_one("#try-model", Input).value = "nowhere:model"
        await try_draft(app, pilot, screen)
        assert "Try failed" in text_of(screen, "#try-status")
        assert "nowhere" in text_of(screen, "#try-status")
        assert not screen.try_running and stub.total == 0


async def test_try_says_what_it_does_and_shows_it_is_alive(store: Store, stub: StubServer) -> None:
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_prompts(app, pilot)
        assert "ctrl+r" in text_of(screen, "#try-diff")  # the empty result pane says what to do
        screen.query_one("#try-n", Input).value = "1"
        # what ctrl+r runs, called directly so the status is read before the worker starts
        screen.action_try_draft()
        status = text_of(screen, "#try-status")  # a slow model call still shows progress
        assert "trying perturb-step" in status and MODEL in status
        assert "0/1 calls finished" in status and re.search(r"\d+:\d\d elapsed", status)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "1/1 valid" in text_of(screen, "#try-status")


async def test_empty_library_is_not_a_template_error(tmp_path: Path, stub: StubServer) -> None:
    with Store(tmp_path / "empty.db") as empty:
        app = build(empty, stub)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_prompts(app, pilot)
            assert "nothing to preview" in text_of(screen, "#preview-problem")
            assert screen.last_error is None  # not "missing variable 'question'"
            assert not screen.query_one("#editor", TextArea).has_class("-invalid")
            editor = screen.query_one("#editor", TextArea)
            editor.load_text(editor.text.replace("{{ step }}", "{{ step }"))
            await pilot.pause()
            assert screen.last_error is not None  # a broken template still says so


async def test_an_unsaved_draft_is_not_discarded_without_asking(
    store: Store, stub: StubServer
) -> None:
    """Keys only: edit the draft, pick another prompt in the list: asked first; "n" keeps
    the draft, "y" discards it.  Versions are numbered within their prompt (v1 first)."""
    from textual.widgets import Tree

    from workbench.tui.dialogs import ConfirmDialog

    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptsScreen) and screen.version is not None
        loaded = screen.version
        editor = screen.query_one("#editor", TextArea)
        assert f"{loaded.name} v1 (@{loaded.id})" in str(editor.border_title)
        tree = screen.query_one("#prompt-tree", Tree)
        labels = [str(n.label) for n in tree.root.children[0].children]
        assert labels and labels[-1].startswith("v1 @")  # the oldest is v1, whatever its id
        for _ in range(6):  # tab from the list to the editor
            if app.focused is editor:
                break
            await pilot.press("tab")
        assert app.focused is editor
        await pilot.press("end", *" draft words")
        assert screen.draft_unsaved
        await pilot.press("ctrl+o")
        assert app.focused is tree
        tree.move_cursor(tree.root.children[0])  # the first prompt in the list
        other = tree.cursor_node
        assert other is not None and other.data == ("prompt", other.data[1])
        if other.data[1] == loaded.name:
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # keep editing
        await pilot.pause()
        assert screen.version == loaded and "draft words" in editor.text
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")  # discard
        await pilot.pause()
        assert screen.version != loaded and not screen.draft_unsaved


async def test_try_asks_for_the_chosen_error_type_and_step(store: Store, stub: StubServer) -> None:
    """Keys only: on the Try tab pick an error type and a step, ctrl+r: every problem is
    perturbed at that step (the last perturbable one when shorter) with that error type."""
    from workbench.core.perturb import load_taxonomy

    chosen = load_taxonomy()[1]
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptsScreen)
        await pilot.press("ctrl+t")  # the Try tab
        await pilot.pause()
        error = screen.query_one("#try-error", Select)
        for _ in range(12):  # tab through the Try controls to the error type
            if app.focused is error:
                break
            await pilot.press("tab")
        assert app.focused is error
        await pilot.press("enter", "down", "down", "enter")  # blank, then the 2nd type
        await pilot.press("tab", "2", "ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert error.value == chosen.id
        results = screen.try_pane.rows.values()
        assert {r.error_type for r in results} == {chosen.id}
        steps = {r.problem_id: r.step_index for r in results}
        assert steps == {"t-1": 1, "t-2": 1, "t-3": 0}  # t-3 has one perturbable step
        sent = " ".join(str(m.get("content")) for r in stub.requests for m in r.body["messages"])
        assert chosen.name in sent
        # the stub changes a number, not the formula asked for: each row says so
        table = screen.query_one("#try-table", DataTable)
        assert chosen.id == "wrong-formula"
        flags = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert flags and all("type mismatch" in f for f in flags), flags
        assert "looks like misread-quantity" in str(screen.query_one("#try-diff").render())


async def test_compare_shows_the_text_diff_and_each_sides_model(
    store: Store, stub: StubServer
) -> None:
    """Keys only: save an edited version, Try the old one with one model and the new one
    with another, ctrl+t to Compare: the changed lines and the model each side used."""
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptsScreen) and screen.version is not None
        first = screen.version
        editor = screen.query_one("#editor", TextArea)
        model = screen.query_one("#try-model", Input)
        await pilot.press("ctrl+t")  # Try: the first version with the default model
        model.focus()
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+t", "ctrl+t")  # back to Edit
        await pilot.pause()
        editor.focus()
        await pilot.pause()
        assert app.focused is editor, app.focused
        # to the last line ("down" moves by wrapped lines: more than there are lines)
        await pilot.press(*["down"] * 2 * len(editor.text.splitlines()), "end")
        await pilot.press("enter", *"Keep the units.")
        assert editor.text.rstrip().endswith("Keep the units."), editor.text[-80:]
        await pilot.press("ctrl+t")  # Try the edit with another model
        model.focus()
        await pilot.press("ctrl+u", *"stub:other", "ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.version is not None and screen.version != first
        await pilot.press("ctrl+t")  # Compare: the two newest versions with results
        await pilot.pause()
        shown = text_of(screen, "#compare-prompt-diff")
        assert f"A perturb-step v1 (@{first.id}) · tried with {MODEL}" in shown
        assert "B perturb-step v2" in shown and "tried with stub:other" in shown
        assert "different models" in shown and "+ Keep the units." in shown


async def test_try_follows_the_set_chosen_on_problems(store: Store, stub: StubServer) -> None:
    """Keys only: save a set of two problems on Problems, go to Prompts: the Try set is
    that set and the preview shows its problems, not the library's first ones."""
    app = build(store, stub)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.press("down", "space", "space", "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, TextInputDialog)
        await pilot.press(*"two", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptsScreen)
        assert screen.query_one("#try-set", Input).value == "two"
        assert [p.id for p in screen.library] == ["t-2", "t-3"]
        assert "t-2" in text_of(screen, "#preview-problem")
