"""Runs pin exact prompt versions: a prompt edited mid-run changes nothing in that run."""

from __future__ import annotations

import argparse
from pathlib import Path

import workbench.core.experiments  # noqa: F401  (registers every kind)
from tests.engine_fakes import FakeProvider, add_toy_problems, make_engine
from workbench.cli.run import _config_for
from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.experiments import KINDS
from workbench.core.experiments.base import prompt_fields
from workbench.core.experiments.runner import (
    load_experiment_config,
    pin_like,
    pin_prompts,
    run_experiment,
)
from workbench.core.prompts.templates import default_source
from workbench.core.prompts.versions import (
    latest_version,
    pinned_versions,
    resolve_version,
    save_version,
)
from workbench.core.providers import ModelRequest
from workbench.core.store import Store, dumps, now_iso

MARK = "Edited after the run started."


def _edit(store: Store, name: str) -> int:
    """Save a new version of a bundled prompt whose text carries ``MARK``."""
    resolve_version(store, name)  # seed the bundled one first
    return save_version(store, name, default_source(name).rstrip() + f"\n\n{MARK}\n")


def _failing_once(problem_text: str) -> tuple[FakeProvider, dict[str, bool]]:
    """A provider that rejects requests mentioning ``problem_text`` while the flag is on."""
    failing = {"on": True}

    def script(req: ModelRequest, n: int) -> str:
        sent = "\n".join(m.content for m in req.messages)
        if failing["on"] and problem_text in sent:
            raise ProviderError(ErrorKind.BAD_REQUEST, "rejected", status=400)
        return "#### 3"

    return FakeProvider(script=script), failing


def _sent_text(req: ModelRequest) -> str:
    return "\n".join(m.content for m in req.messages) + (req.system or "")


def _add_stepped_problems(store: Store, n: int) -> None:
    now = now_iso()
    with store.transaction():
        store.insert(
            "datasets",
            {"id": "steps", "name": "steps", "origin": "test", "format": "gsm8k",
             "n_problems": n, "imported_at": now},
        )  # fmt: skip
        for i in range(n):
            steps = [
                f"Tom has {i} apples.",
                f"He buys 2 more, so {i} + 2 = {i + 2}.",
                f"#### {i + 2}",
            ]
            store.insert(
                "problems",
                {"id": f"steps/{i}", "dataset_id": "steps", "source": "gsm8k",
                 "question": f"Tom has {i} apples and buys 2. How many now?",
                 "solution": "\n".join(steps), "answer": str(i + 2), "steps": dumps(steps),
                 "n_steps": len(steps), "created_at": now},
            )  # fmt: skip


async def test_resume_uses_the_pinned_perturb_prompt(tmp_path: Path) -> None:
    provider, failing = _failing_once("Tom has 1 apples")
    engine, store = make_engine(tmp_path, provider)
    _add_stepped_problems(store, 3)
    config = load_experiment_config(
        {"kind": "perturb-preview", "prompt": "perturb-step", "model": "fake:m1",
         "max_attempts": 1, "problems": {"dataset": "steps"}}
    )  # fmt: skip
    run_id = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    pinned = latest_version(store, "perturb-step")
    assert pinned is not None
    assert store.get_run(run_id)["config"]["prompt"] == f"perturb-step@{pinned.id}"
    assert len(store.samples(run_id, status="error")) == 1

    newer = _edit(store, "perturb-step")
    assert newer != pinned.id and resolve_version(store, "perturb-step").id == newer
    failing["on"] = False
    provider.requests.clear()
    stored = load_experiment_config(store.get_run(run_id)["config"])
    await run_experiment(
        store, engine.providers, engine.settings, stored, engine=engine, run_id=run_id
    )
    assert len(provider.requests) == 1 and MARK not in _sent_text(provider.requests[0])
    samples = store.samples(run_id)
    assert len(samples) == 3 and not store.samples(run_id, status="error")
    assert {s["payload"]["prompt_version_id"] for s in samples} == {pinned.id}


async def test_retry_failed_keeps_implicit_default_prompts_pinned(tmp_path: Path) -> None:
    """Calibration picks solve-gsm8k itself (no prompt field): ``prompt_pins`` holds it."""
    provider, failing = _failing_once("2 + 1?")
    engine, store = make_engine(tmp_path, provider)
    add_toy_problems(store, 3)
    original = resolve_version(store, "solve-gsm8k").id
    config = load_experiment_config(
        {"kind": "calibration", "models": ["fake:m1"], "samples": 2, "problems": {"dataset": "toy"}}
    )
    run_id = await run_experiment(store, engine.providers, engine.settings, config, engine=engine)
    snapshot = store.get_run(run_id)["config"]
    assert snapshot["prompt"] is None and snapshot["prompt_pins"]["solve-gsm8k"] == original
    newer = _edit(store, "solve-gsm8k")
    failing["on"] = False
    provider.requests.clear()
    await run_experiment(
        store, engine.providers, engine.settings, load_experiment_config(snapshot),
        engine=engine, run_id=run_id, retry_failed=True,
    )  # fmt: skip
    assert len(provider.requests) == 2
    assert all(MARK not in _sent_text(r) for r in provider.requests)
    versions = {s["payload"]["prompt_version"] for s in store.samples(run_id, "solve")}
    assert versions == {original} and newer not in versions
    assert store.get_run(run_id)["status"] == "done"


async def test_run_created_elsewhere_is_pinned_when_it_starts(tmp_path: Path) -> None:
    """The TUI creates the run row itself; the runner pins it on its first start."""
    engine, store = make_engine(tmp_path, FakeProvider(script=lambda req, n: "#### 3"))
    add_toy_problems(store, 1)
    config = load_experiment_config(
        {"kind": "calibration", "models": ["fake:m1"], "samples": 1,
         "prompt": "solve-gsm8k", "problems": {"dataset": "toy"}}
    )  # fmt: skip
    run_id = store.create_run("tui", "calibration", config.model_dump(mode="json"))
    await run_experiment(
        store, engine.providers, engine.settings, config, engine=engine, run_id=run_id
    )
    version = latest_version(store, "solve-gsm8k")
    assert version is not None
    stored = store.get_run(run_id)["config"]
    assert stored["prompt"] == version.label and stored["prompt_pins"]["solve-gsm8k"] == version.id


def test_config_file_given_again_on_resume_matches_its_pinned_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    path = tmp_path / "run.toml"
    path.write_text(
        'kind = "recovery"\nperturber = "a:b"\ncompleter = "a:c"\nperturb_prompt = "perturb-step"\n'
    )
    given = load_experiment_config(path)
    pinned = pin_prompts(store, given)
    assert pinned.perturb_prompt.startswith("perturb-step@")  # type: ignore[attr-defined]
    assert pinned.continue_prompt.startswith("continue@")  # type: ignore[attr-defined]
    assert pin_like(given, pinned).model_dump() == pinned.model_dump()
    run_id = store.create_run("r", "recovery", pinned.model_dump(mode="json"))
    _edit(store, "perturb-step")  # a newer version does not make the file "differ"
    args = argparse.Namespace(resume=run_id, retry_failed=None, experiment=str(path))
    config, resumed, change = _config_for(args, store)
    assert resumed == run_id and config.model_dump() == pinned.model_dump()
    assert change is None  # budget and concurrency as they were


def test_bare_names_resolve_to_pins_inside_a_pinned_block(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    first = resolve_version(store, "continue").id
    newer = _edit(store, "continue")
    with pinned_versions({"continue": first}):
        assert resolve_version(store, "continue").id == first
        assert resolve_version(store, f"continue@{newer}").id == newer  # explicit wins
        # a bundled default not in the store when pinned resolves to the bundled text
        _edit(store, "judge-recovery")
        assert MARK not in resolve_version(store, "judge-recovery").body
    assert resolve_version(store, "continue").id == newer


def test_every_prompt_field_of_every_kind_holds_references() -> None:
    """The naming convention only catches fields that really hold prompt references."""
    found = {kind: prompt_fields(cls.config_model) for kind, cls in sorted(KINDS.items())}
    assert found["recovery"] == ["continue_prompt", "judge_prompt", "perturb_prompt"]
    assert found["calibration"] == ["prompt"] and found["methods"] == ["prompts"]
    for cls in KINDS.values():
        for name in prompt_fields(cls.config_model):
            annotation = str(cls.config_model.model_fields[name].annotation)
            assert "str" in annotation, (cls.kind, name, annotation)
