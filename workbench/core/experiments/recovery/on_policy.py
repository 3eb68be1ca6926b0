"""On-policy prefix: re-complete the completer's own wrong traces, from stored calibration.

No new straight-shot calls: the completer's calibration samples (from
``calibration_run``, or every calibration run in the store) give each problem's
solve rate.  Problems whose rate lies in the middle band (``band``, inclusive)
over at least ``min_samples`` graded samples contribute up to
``traces_per_problem`` of the completer's own wrong traces, cut at ``cut`` of
their steps; the completer continues each ``k`` times.  The recovery rate of
those continuations is the on-policy recovery rate.

Stages: ``continue`` (graded, with recovery detection), ``judge`` (optional).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from workbench.core.analysis import GradedSample, load_outcomes, load_straight_shot, solve_rates
from workbench.core.engine import WorkItem
from workbench.core.errors import ConfigError
from workbench.core.experiments.base import Experiment, ExperimentConfig
from workbench.core.experiments.recovery.continue_stage import (
    JUDGE,
    Prefix,
    PrefixConfig,
    Problems,
    continue_items,
    grade_continuations,
    judge_items,
    rate_summary,
    read_judgements,
    trace_prefix,
)
from workbench.core.library import ProblemSelection, select_problems
from workbench.core.payloads import PrefixPayload
from workbench.core.store import Store

CONTINUE = "continue"


class OnPolicyConfig(PrefixConfig):
    kind: Literal["on-policy"] = "on-policy"
    calibration_run: int | None = None  # None: every calibration run with the completer
    band: tuple[float, float] = (0.2, 0.8)  # inclusive solve-rate band
    min_samples: int = Field(default=5, ge=1)
    traces_per_problem: int = Field(default=1, ge=1)
    cut: float = Field(default=0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _band_ordered(self) -> OnPolicyConfig:
        lo, hi = self.band
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError("band must satisfy 0 <= low <= high <= 1")
        return self


class OnPolicyExperiment(Experiment):
    kind: ClassVar[str] = "on-policy"
    config_model: ClassVar[type[ExperimentConfig]] = OnPolicyConfig
    config: OnPolicyConfig

    def stages(self) -> list[str]:
        return [CONTINUE] + ([JUDGE] if self.config.judge else [])

    def items(self, stage: str, store: Store, run_id: int) -> Iterable[WorkItem]:
        if stage == CONTINUE:
            return continue_items(self.config, store, CONTINUE, self.prefixes(store))
        if stage == JUDGE:
            return judge_items(self.config, store, run_id, CONTINUE)
        return []

    def eligible(self, store: Store) -> dict[str, list[GradedSample]]:
        """problem id -> the completer's wrong traces, for problems in the middle band."""
        c = self.config
        outs = load_straight_shot(store, c.completer, run_id=c.calibration_run)
        if not outs:
            where = f"run {c.calibration_run}" if c.calibration_run else "any calibration run"
            raise ConfigError(
                f"on-policy: no straight-shot samples of {c.completer} in {where}; "
                "run a calibration with that model first"
            )
        if c.problems != ProblemSelection():
            wanted = {p.id for p in select_problems(store, c.problems)}
            outs = [o for o in outs if o.problem_id in wanted]
        lo, hi = c.band
        middle = {
            r.problem_id
            for r in solve_rates(outs)
            if r.rate.n >= c.min_samples and r.rate.rate is not None and lo <= r.rate.rate <= hi
        }
        wrong: dict[str, list[GradedSample]] = defaultdict(list)
        for o in outs:
            if o.problem_id in middle and o.correct is False:
                wrong[o.problem_id].append(o)
        return dict(sorted(wrong.items()))

    def prefixes(self, store: Store) -> Iterator[Prefix]:
        c = self.config
        problems = Problems(store)
        for pid, traces in self.eligible(store).items():
            problem = problems.get(pid)
            rows = {
                r["id"]: r
                for r in store.query(
                    f"SELECT id, output FROM samples WHERE id IN ({','.join('?' * len(traces))})",
                    [o.sample_id for o in traces],
                )
            }
            # a seeded shuffle, so which wrong traces are used is reproducible
            order = sorted(traces, key=lambda o: o.sample_id)
            random.Random(f"{c.seed}:{pid}").shuffle(order)
            taken = 0
            for o in order:
                if taken >= c.traces_per_problem:
                    break
                prefix = trace_prefix(
                    problem,
                    o.sample_id,
                    rows[o.sample_id]["output"] or "",
                    c.cut,
                    PrefixPayload(prefix_kind="on_policy", source_run=o.run_id),
                )
                if prefix is None:
                    continue
                taken += 1
                yield prefix

    def after_stage(self, stage: str, store: Store, run_id: int) -> None:
        if stage == CONTINUE:
            grade_continuations(store, run_id, CONTINUE, self.config)
        elif stage == JUDGE:
            read_judgements(store, run_id)

    def summarise(self, store: Store, run_id: int) -> dict[str, Any]:
        cont = load_outcomes(store, run_id, stage=CONTINUE)
        return {
            "recovery": rate_summary((o, o.correct) for o in cont),
            "problems": len({o.problem_id for o in cont}),
        }
