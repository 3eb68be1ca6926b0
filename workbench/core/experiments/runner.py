"""Run an experiment config end to end: stages -> engine -> post-processing -> run status.

The same path serves a fresh run, ``--resume`` (the engine skips items that
already have a finished sample) and ``--retry-failed`` (only the items whose
sample is an error are handed to the engine).

A new run pins its prompts (``pin_prompts``): every prompt field of the config
becomes ``name@ID`` and ``prompt_pins`` records the newest version of every
prompt, and that pinned config is the run's snapshot.  Resumes and retries run
under the snapshot's pins, so a prompt edited mid-run changes nothing in it.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workbench.core.batch import check_stages, run_batch_stage
from workbench.core.engine import (
    CallPlan,
    CostRange,
    Engine,
    EventListener,
    RunEnd,
    RunFinished,
    WorkItem,
)
from workbench.core.engine.lease import RunLease
from workbench.core.errors import ConfigError, WorkbenchError
from workbench.core.experiments.base import (
    Experiment,
    ExperimentConfig,
    former_names,
    prompt_fields,
)
from workbench.core.experiments.estimate import StageEstimate, estimate_plans, project_pending
from workbench.core.experiments.kinds import KINDS
from workbench.core.experiments.preflight import call_plans
from workbench.core.prompts.versions import current_pins, pinned_versions, resolve_version
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.status import RunStatus, SampleStatus
from workbench.core.store import Store, dumps


def load_experiment_config(path_or_dict: str | Path | Mapping[str, Any]) -> ExperimentConfig:
    """A validated config from a TOML file or a dict; one-line ``ConfigError`` otherwise."""
    if isinstance(path_or_dict, Mapping):
        data, source = dict(path_or_dict), "config"
    else:
        path = Path(path_or_dict)
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such experiment config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    kinds = KINDS
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{source}: kind: missing (one of: {', '.join(sorted(kinds))})")
    cls = kinds.get(kind)
    if cls is None:
        raise ConfigError(
            f"{source}: kind: unknown experiment '{kind}' (one of: {', '.join(sorted(kinds))})"
        )
    try:
        return cls.config_model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        old = former_names(cls.config_model, str(err["loc"][0])) if err["loc"] else []
        if err["type"] == "missing" and old:
            where += f" (formerly {' / '.join(old)})"
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None


def make_experiment(config: ExperimentConfig, settings: Settings) -> Experiment:
    cls = KINDS.get(config.kind)
    if cls is None:
        raise ConfigError(f"unknown experiment kind '{config.kind}'")
    experiment = cls(config)
    use_settings = getattr(experiment, "use_settings", None)
    if callable(use_settings):
        use_settings(settings)
    return experiment


def pin_prompts(store: Store, config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with each prompt reference as ``name@ID`` and the store's newest versions
    in ``prompt_pins``; an unknown prompt is a one-line ``InputError`` before any spend."""
    data = config.model_dump(mode="json")
    for field in prompt_fields(type(config)):
        value = data.get(field)
        if isinstance(value, str):
            data[field] = resolve_version(store, value).label
        elif isinstance(value, dict):
            data[field] = {k: resolve_version(store, v).label for k, v in value.items()}
    data["prompt_pins"] = current_pins(store)
    return type(config).model_validate(data)


def _same_prompt(given: object, pinned: object) -> bool:
    """Whether ``given`` (a name, name@ID or ID) is what ``pinned`` (name@ID) was pinned from."""
    if not isinstance(given, str) or not isinstance(pinned, str) or "@" not in pinned:
        return given == pinned
    name, _, vid = pinned.partition("@")
    return given.strip() in (pinned, name, vid)


def pin_like(config: ExperimentConfig, snapshot: ExperimentConfig) -> ExperimentConfig:
    """``config`` with the pins of a run's ``snapshot`` wherever it names the same prompts.

    So a config file given again with ``--resume`` compares equal to the pinned snapshot
    it was created from, and a resume runs with the snapshot's versions.
    """
    data = config.model_dump(mode="json")
    pinned = snapshot.model_dump(mode="json")
    for field in prompt_fields(type(config)):
        value, was = data.get(field), pinned.get(field)
        if isinstance(value, dict) and isinstance(was, dict):
            data[field] = {
                k: was[k] if k in was and _same_prompt(v, was[k]) else v for k, v in value.items()
            }
        elif _same_prompt(value, was):
            data[field] = was
    data["prompt_pins"] = pinned.get("prompt_pins")
    return type(config).model_validate(data)


def _pinned_config(db: Store, run_id: int, config: ExperimentConfig) -> ExperimentConfig:
    """The config a run executes with: its snapshot's pins, taken now if it has none yet
    (a run created by a caller before this one, or by an older workbench)."""
    stored = db.get_run(run_id)["config"]
    if stored.get("prompt_pins") is not None:
        return pin_like(config, load_experiment_config(stored))
    pinned = pin_prompts(db, config)
    with db.transaction():
        db.update("runs", run_id, {"config": dumps(pinned.model_dump(mode="json"))})
    return pinned


@dataclass(frozen=True)
class RunSettings:
    """A run's changeable settings: its budget cap (None: none) and concurrency cap."""

    budget_usd: float | None
    concurrency: int | None


def with_settings(config: ExperimentConfig, change: RunSettings) -> ExperimentConfig:
    """``config`` with ``change``'s budget and concurrency."""
    data = config.model_dump(mode="json")
    data["budget_usd"], data["concurrency"] = change.budget_usd, change.concurrency
    try:
        return type(config).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"run settings: {exc.errors()[0]['msg']}") from None


def without_settings(config: ExperimentConfig) -> dict[str, Any]:
    """``config`` as JSON without the settings a resume may change (to compare configs)."""
    data = config.model_dump(mode="json")
    data.pop("budget_usd", None)
    data.pop("concurrency", None)
    return data


def _apply_settings(db: Store, run_id: int, config: ExperimentConfig, note: str) -> None:
    """Store ``config``'s budget and concurrency on the run, and in its settings history."""
    with db.transaction():
        db.update(
            "runs",
            run_id,
            {"config": dumps(config.model_dump(mode="json")), "budget_usd": config.budget_usd},
        )
        db.record_run_settings(run_id, config.budget_usd, config.concurrency, note)


def _stage_plans(experiment: Experiment, stage: str, plans: list[CallPlan]) -> list[CallPlan]:
    """The plans of the calls ``stage`` makes (all of them when the kind does not say)."""
    roles = experiment.stage_roles(stage)
    return plans if roles is None else [p for p in plans if p.role in roles]


def _project_later(
    db: Store,
    engine: Engine,
    config: ExperimentConfig,
    first: list[WorkItem],
    later: list[str],
    run_id: int,
) -> list[StageEstimate]:
    """Follow-on stages sized from the first stage's items (``project_pending``), less what
    a resumed run already finished of each; a stage it cannot size counts nothing."""
    plans, _ = project_pending(config, first, later)
    out = []
    for est in estimate_plans(db, engine.prices, plans):
        n = est.plan.n_requests
        left = max(0.0, 1.0 - len(db.done_item_keys(run_id, est.plan.stage)) / n) if n else 0.0
        if left < 1.0:
            low = None if est.cost_low is None else est.cost_low * left
            high = None if est.cost_high is None else est.cost_high * left
            est = replace(est, cost_low=low, cost_high=high)
        out.append(est)
    return out


def _later_cost(estimates: list[StageEstimate], stages: list[str]) -> tuple[CostRange, float]:
    """The projected cost of ``stages`` (range, point); an unpriced model counts $0."""
    chosen = [e for e in estimates if e.plan.stage in stages]
    low = sum(e.cost_low or 0.0 for e in chosen)
    high = sum(e.cost_high or 0.0 for e in chosen)
    # with history the mean output is the projection; without, output may run to max_tokens
    point = sum(
        (e.cost_low if e.projected_output_tokens is not None else e.cost_high) or 0.0
        for e in chosen
    )
    return CostRange(low, high), point


async def _run_stages(
    experiment: Experiment,
    engine: Engine,
    db: Store,
    run_id: int,
    retry_keys: set[str] | None,
) -> RunEnd:
    """Each stage's items through the engine, then its post-processing.

    The later stages are projected from the first stage's items, so the live
    projection counts them from the first snapshot on (not after they start)."""
    end = RunEnd(RunStatus.DONE)
    config = experiment.config
    budget = config.budget_usd
    batch = set(config.batch_stages())
    stages = experiment.stages()
    projected: list[StageEstimate] = []
    for index, stage in enumerate(stages):
        items = list(experiment.items(stage, db, run_id))
        if index == 0 and retry_keys is None:  # a retry re-sends errors only: no projection
            projected = _project_later(db, engine, config, items, stages[1:], run_id)
        if retry_keys is not None:
            items = [i for i in items if i.key in retry_keys]
        if stage in batch:  # provider batches replace phase 2 (core/batch/stage.py)
            result = await run_batch_stage(
                engine, db, run_id, stage, items, budget_usd=budget, fallback=config.batch_fallback
            )
        else:
            later, point = _later_cost(projected, stages[index + 1 :])
            result = await engine.run_items(
                run_id, items, budget_usd=budget, later_usd=later, later_point_usd=point
            )
        experiment.after_stage(stage, db, run_id)  # grade what is stored, even if partial
        if result.status.stopped_early:
            return result
        if result.status is RunStatus.FAILED and end.status is RunStatus.DONE:
            end = result  # later stages still run; the first failure is what the run reports
    return end


def _check_problems(db: Store, config: ExperimentConfig) -> None:
    """A named dataset or set that is not in the workspace: one line, before any row."""
    sel = config.problems
    if sel.dataset is not None:
        known = [r[0] for r in db.conn.execute("SELECT id FROM datasets ORDER BY id")]
        if sel.dataset not in known:
            raise ConfigError(
                f"problems.dataset: no dataset '{sel.dataset}' in this workspace "
                f"(datasets: {', '.join(known) or 'none; import one first'})"
            )


def _preflight(db: Store, engine: Engine, experiment: Experiment, *, new_run: bool) -> None:
    """Every stage's models, providers, keys, continuations, prices and batch modes (and,
    for a new run, its problem selection): ``ConfigError`` before any row or request."""
    config = experiment.config
    plans = call_plans(config)
    engine.preflight(plans, budget_usd=config.budget_usd)
    check_stages(
        engine,
        {name: opts.mode for name, opts in config.stages.items()},
        experiment.stages(),
        lambda stage: _stage_plans(experiment, stage, plans),
    )
    if new_run:
        _check_problems(db, config)


def _create_run(db: Store, config: ExperimentConfig) -> int:
    run_id = db.create_run(
        config.name or config.kind,
        config.kind,
        config.model_dump(mode="json"),
        budget_usd=config.budget_usd,
    )
    db.record_run_settings(run_id, config.budget_usd, config.concurrency, "created")
    return run_id


def create_checked_run(
    store: Store, providers: ProviderRegistry, settings: Settings, config: ExperimentConfig
) -> int:
    """Pin, pre-flight and create a new run's row, without sending anything; its id.

    For callers that show the run before it executes (the TUI): a config error raises
    ``ConfigError`` (one line) and leaves no row.  ``run_experiment(..., run_id=id)``
    then executes it under the pinned snapshot stored here.
    """
    db = store.reopen()
    try:
        config = pin_prompts(db, config)
        experiment = make_experiment(config, settings)
        _preflight(db, Engine(db, providers, settings), experiment, new_run=True)
        return _create_run(db, config)
    finally:
        db.close()


async def run_experiment(
    store: Store,
    providers: ProviderRegistry,
    settings: Settings,
    config: ExperimentConfig,
    *,
    run_id: int | None = None,
    on_event: EventListener | None = None,
    engine: Engine | None = None,
    retry_failed: bool = False,
    change: RunSettings | None = None,
) -> int:
    """Run (or resume, with ``run_id``) an experiment; return the run id.

    The final status is on the run record (done / failed / cancelled /
    stopped: budget) and in the ``RunFinished`` event.  Every stage's models,
    providers, keys, continuation methods and prices are checked first: a config
    problem raises ``ConfigError`` before any request, and a new run leaves no row.
    ``change`` sets a resumed run's budget and concurrency (recorded in its history).
    A run has one executor at a time: a second raises ``RunBusyError``.
    """
    db = store.reopen()  # callers may run this on a worker thread
    try:
        if run_id is None:
            config = pin_prompts(db, config)
        else:
            run = db.get_run(run_id)
            if run["kind"] != config.kind:
                raise ConfigError(f"run {run_id} is a {run['kind']} run, not {config.kind}")
            try:
                config = _pinned_config(db, run_id, config)
            except WorkbenchError as exc:  # e.g. the config names a prompt that is gone
                db.set_run_status(run_id, RunStatus.FAILED, error=str(exc))
                raise
        if change is not None:
            config = with_settings(config, change)
        experiment = make_experiment(config, settings)
        if engine is None:
            engine = Engine(db, providers, settings, on_event, concurrency=config.concurrency)
        else:
            engine.reset_controls()
        _preflight(db, engine, experiment, new_run=run_id is None)
        if run_id is None:
            run_id = _create_run(db, config)
        with RunLease(db, run_id, on_lost=engine.cancel):
            if change is not None:
                _apply_settings(db, run_id, config, "resume")
            await _execute(experiment, engine, db, run_id, retry_failed=retry_failed)
        return run_id
    finally:
        db.close()


async def _execute(
    experiment: Experiment, engine: Engine, db: Store, run_id: int, *, retry_failed: bool
) -> None:
    """Run the stages under the lease and store how the run ended."""
    config = experiment.config
    retry_keys = (
        {s["item_key"] for s in db.samples(run_id, status=SampleStatus.ERROR)}
        if retry_failed
        else None
    )
    db.set_run_status(run_id, RunStatus.RUNNING)
    try:
        with pinned_versions(config.prompt_pins or {}):
            end = await _run_stages(experiment, engine, db, run_id, retry_keys)
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        final = (
            RunStatus.CANCELLED
            if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            else RunStatus.FAILED
        )
        db.set_run_status(run_id, final, error=message)
        engine.emit(RunFinished(run_id, final, message))
        raise
    db.set_run_status(run_id, end.status, error=end.error)
    engine.emit(RunFinished(run_id, end.status, end.error))
