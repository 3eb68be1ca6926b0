"""One keymap: docs/keys.md lists every binding once, ids are unique, keys are rebindable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.trace_data import build_recovery_run
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.tui.app import binding_owners, make_app
from workbench.tui.export_dialog import ExportDialog
from workbench.tui.keymap import all_bindings, key_verbs, keys_markdown
from workbench.tui.screens.runs import RunsScreen

DOC = Path(__file__).resolve().parents[1] / "docs" / "keys.md"

#: keys that mean different things on different screens; none are left, and none may return
KNOWN_SHARED: set[str] = set()


def test_the_doc_is_generated_from_the_bindings() -> None:
    assert DOC.read_text(encoding="utf-8") == keys_markdown(binding_owners()), (
        "docs/keys.md is stale: python -m workbench.tui.keys_doc > docs/keys.md"
    )


def test_every_binding_has_one_unique_id() -> None:
    entries = all_bindings(binding_owners())
    assert all(e.id for e in entries), [e for e in entries if not e.id]
    assert not [i for i, n in Counter(e.id for e in entries).items() if n > 1]


def test_no_new_key_gets_a_second_verb() -> None:
    shared = {k for k, verbs in key_verbs(binding_owners()).items() if len(verbs) > 1}
    assert shared <= KNOWN_SHARED, sorted(shared - KNOWN_SHARED)


async def test_keys_are_rebindable_in_workbench_toml(tmp_path: Path) -> None:
    with Store(tmp_path / "wb.db") as store:
        build_recovery_run(store, n_problems=2, k=1)
    settings = Settings.model_validate({"keys": {"runs.export": "ctrl+e", "no.such": "z"}})
    app = make_app(Store(tmp_path / "wb.db"), ProviderRegistry(settings), settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert any("unknown binding id no.such" in n.message for n in app._notifications)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("x")  # rebound away
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("ctrl+e")
        assert isinstance(app.screen, ExportDialog)
