"""Perturbation pipeline: seeded choices, parsing, validation flags, retries, truncation."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.stub_server import StubReply, StubServer
from workbench.core.engine import Engine
from workbench.core.errors import InputError
from workbench.core.experiments.playground import (
    PerturbPreview,
    PerturbPreviewConfig,
    final_results,
)
from workbench.core.library import ProblemSelection
from workbench.core.payloads import EngineFields, PerturbPayload
from workbench.core.perturb.plan import (
    ANSWER_LEAKED,
    LEAKED_LABEL,
    REWROTE_OTHER_STEPS,
    UNCHANGED,
    UNPARSEABLE,
    UNRELATED,
    build_prefix,
    check_perturbation,
    choose_error_type,
    choose_step,
    eligible_steps,
    parse_perturbation,
    perturb_variables,
    perturb_with_retries,
    plan_perturbation,
    truncate,
    validate_perturbation,
)
from workbench.core.prompts.templates import load_default
from workbench.core.providers import ModelRequest, ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store, dumps, now_iso
from workbench.core.views.traces import load_trace

GSM = (
    "Janet's ducks lay 16 eggs per day and she eats 3 for breakfast.",
    "She bakes muffins with 4 eggs, so she uses 3 + 4 = 7 eggs.",
    "She sells 16 - 7 = 9 eggs a day.",
    "She makes 9 * 2 = $18 every day at the farmers' market.",
    "#### 18",
)
MATH = (
    r"We have $x^2 - 5x + 6 = 0$, which factors as $(x-2)(x-3) = 0$.",
    r"So the roots are $x = 2$ and $x = 3$.",
    r"Their sum is $2 + 3 = 5$, and their product is $2 \cdot 3 = 6$.",
    r"Therefore the answer is $\boxed{11}$.",
)


def tag(text: str) -> str:
    return f"<perturbed_step>\n{text}\n</perturbed_step>"


# (name, output, steps, index, gold answer, expected flags)
CASES: list[tuple[str, str, tuple[str, ...], int, str | None, set[str]]] = [
    # -- good outputs -------------------------------------------------------------
    ("good arithmetic slip", tag("She sells 16 - 7 = 8 eggs a day."), GSM, 2, "18", set()),
    (
        "good misread quantity, chatter outside the tags",
        "Sure! Here it is:\n" + tag("She bakes muffins with 5 eggs, so she uses 3 + 5 = 8 eggs."),
        GSM,
        1,
        "18",
        set(),
    ),
    ("good json", '{"perturbed_step": "She sells 16 - 7 = 10 eggs a day."}', GSM, 2, "18", set()),
    (
        "good fenced json",
        '```json\n{"perturbed_step": "She makes 9 * 3 = $27 every day at the market."}\n```',
        GSM,
        3,
        "18",
        set(),
    ),
    (
        "good latex sign error",
        tag(r"Their sum is $2 + 3 = 5$, and their product is $2 \cdot 3 = -6$."),
        MATH,
        2,
        "11",
        set(),
    ),
    (
        "good with step label stripped, stop cut the closing tag",
        "<perturbed_step>Step 3: She sells 16 - 4 = 12 eggs a day.",
        GSM,
        2,
        "18",
        set(),
    ),
    (
        "good wrong formula rewrites half the step",
        tag("The area is $2 \\pi r = 6\\pi$."),
        ("The radius is $r = 3$.", "The area is $\\pi r^2 = 9\\pi$.", "#### 9\\pi"),
        1,
        None,
        set(),
    ),
    # -- bad outputs --------------------------------------------------------------
    (
        "echoed placeholder from a weak base model",
        "<perturbed_step>\n<perturbed_step>\nthe rewritten step\n</perturbed_step>\nStep 2 as given:",
        GSM,
        2,
        "18",
        {UNRELATED},
    ),
    ("no tags at all", "She sells 16 - 7 = 8 eggs a day.", GSM, 2, "18", {UNPARSEABLE}),
    ("empty tags", tag(""), GSM, 2, "18", {UNPARSEABLE}),
    ("broken json", '{"perturbed_step": "She sells 8 eggs', GSM, 2, "18", {UNPARSEABLE}),
    (
        "bracket label",
        tag("She sells 16 - 7 = 8 eggs a day. [Perturbation: arithmetic slip]"),
        GSM,
        2,
        "18",
        {LEAKED_LABEL},
    ),
    (
        "instead of",
        tag("She sells 16 - 7 = 8 (instead of 9) eggs a day."),
        GSM,
        2,
        "18",
        {LEAKED_LABEL},
    ),
    (
        "announces the mistake",
        tag("She sells 16 - 7 = 8 eggs a day (an incorrect subtraction, a deliberate mistake)."),
        GSM,
        2,
        "18",
        {LEAKED_LABEL},
    ),
    (
        "names the error type",
        tag("Error type: sign error. Their sum is $2 - 3 = -1$."),
        MATH,
        2,
        "11",
        {LEAKED_LABEL},
    ),
    ("unchanged", tag("She sells 16 - 7 = 9 eggs a day."), GSM, 2, "18", {UNCHANGED}),
    ("unchanged but spacing", tag("She  sells 16 - 7 = 9 eggs a day"), GSM, 2, "18", {UNCHANGED}),
    (
        "continues into the next step",
        tag(
            "She sells 16 - 7 = 8 eggs a day.\n"
            "She makes 9 * 2 = $18 every day at the farmers' market."
        ),
        GSM,
        2,
        "18",
        {REWROTE_OTHER_STEPS},
    ),
    (
        "rewrites the wrong step",
        tag("She makes 9 * 2 = $20 every day at the farmers' market."),
        GSM,
        2,
        "18",
        {REWROTE_OTHER_STEPS},
    ),
    (
        "two tagged blocks",
        tag("She sells 16 - 7 = 8 eggs a day.") + tag("She makes 8 * 2 = $16 every day."),
        GSM,
        2,
        "18",
        {REWROTE_OTHER_STEPS},
    ),
    (
        "states the final answer",
        tag("She sells 16 - 7 = 8 eggs a day, so the answer is 16.\n#### 16"),
        GSM,
        2,
        "18",
        {ANSWER_LEAKED},
    ),
    (
        "contains the gold answer",
        tag("She sells 16 - 7 = 18 eggs a day."),
        GSM,
        2,
        "18",
        {ANSWER_LEAKED},
    ),
    (
        "boxed answer in a middle step",
        tag(r"So the roots are $x = 2$ and $x = -3$, giving $\boxed{5}$."),
        MATH,
        1,
        "11",
        {ANSWER_LEAKED},
    ),
    (
        "label and answer together",
        tag("She sells 16 - 7 = 18 eggs a day <- changed"),
        GSM,
        2,
        "18",
        {LEAKED_LABEL, ANSWER_LEAKED},
    ),
]


@pytest.mark.parametrize(
    ("output", "steps", "index", "answer", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_validation_flags(
    output: str, steps: tuple[str, ...], index: int, answer: str | None, expected: set[str]
) -> None:
    check = check_perturbation(output, steps, index, answer=answer)
    assert set(check.flags) == expected, check.reasons
    assert len(check.reasons) == len(check.flags)
    assert validate_perturbation(output, steps, index, answer=answer) == list(check.flags)


def test_words_already_in_the_original_are_not_leaks() -> None:
    steps = ("The error in the estimate is 3 cm, instead of 5 cm.", "#### 3")
    out = tag("The error in the estimate is 4 cm, instead of 5 cm.")
    assert validate_perturbation(out, steps, 0, answer="3") == []


def test_parse_reports_format() -> None:
    parsed = parse_perturbation(tag("x = 1"))
    assert parsed is not None and parsed.step == "x = 1" and parsed.format == "tag"
    parsed = parse_perturbation('{"step": "x = 2"}')
    assert parsed is not None and parsed.format == "json"
    assert parse_perturbation("nothing here") is None
    nested = parse_perturbation("<perturbed_step>\n<perturbed_step>\nx = 3\n</perturbed_step>")
    assert nested is not None and nested.step == "x = 3"


def test_choose_step_is_deterministic_and_never_final() -> None:
    picks = [choose_step(5, seed=7, key=f"p{i}") for i in range(200)]
    assert picks == [choose_step(5, seed=7, key=f"p{i}") for i in range(200)]
    assert set(picks) == {0, 1, 2, 3}  # index 4 is the final-answer line
    assert picks != [choose_step(5, seed=8, key=f"p{i}") for i in range(200)]
    assert 4 in {choose_step(5, seed=1, key=f"p{i}", allow_final=True) for i in range(200)}
    with pytest.raises(InputError, match="no step to perturb"):
        choose_step(1, seed=0)
    assert eligible_steps(1, allow_final=True) == [0]


def test_middle_weighting_prefers_middle_steps() -> None:
    counts = Counter(choose_step(8, seed=3, key=str(i), weighting="middle") for i in range(3000))
    # eligible 0..6, tent weights 1,2,3,4,3,2,1: the middle step is drawn about 4x the ends
    assert counts[3] > 2.5 * counts[0] and counts[3] > 2.5 * counts[6]
    uniform = Counter(choose_step(8, seed=3, key=str(i)) for i in range(3000))
    assert max(uniform.values()) < 1.4 * min(uniform.values())


def test_error_type_choice_is_seeded_and_restrictable() -> None:
    a = [choose_error_type(seed=1, key=str(i)).id for i in range(50)]
    assert a == [choose_error_type(seed=1, key=str(i)).id for i in range(50)]
    assert len(set(a)) > 3
    only = {choose_error_type(seed=1, key=str(i), allowed=["sign-error"]).id for i in range(10)}
    assert only == {"sign-error"}
    with pytest.raises(InputError, match="unknown error type 'nope'"):
        choose_error_type(seed=1, allowed=["nope"])


def test_plan_feeds_the_perturb_prompt() -> None:
    plan = plan_perturbation(GSM, seed=0, key="gsm8k/1")
    variables = perturb_variables("How much?", GSM, plan)
    rendered = load_default("perturb-step").render(**variables)
    text = rendered.messages[0].content
    assert (
        f"Rewrite step {plan.step_index + 1} so that it contains one {plan.error_type.name}" in text
    )
    assert f"Step 5: {GSM[4]}" in text


def test_truncation_strategies() -> None:
    bad = "She sells 16 - 7 = 8 eggs a day."
    after = truncate(GSM, 1, bad)
    assert after.prefix_steps == (GSM[0], bad) and after.cut == 2 and after.k == 0
    assert after.prefix == f"{GSM[0]}\n{bad}\n"
    assert after.to_payload()["truncate_at"] == 2
    k1 = truncate(GSM, 1, bad, strategy="after_k", k=1)
    assert k1.prefix_steps == (GSM[0], bad, GSM[2]) and k1.k == 1
    capped = truncate(GSM, 1, bad, strategy="after_k", k=10)
    assert capped.prefix_steps[-1] == GSM[3] and capped.k == 2  # never the "#### 18" line
    with_final = truncate(GSM, 1, bad, strategy="after_k", k=10, allow_final=True)
    assert with_final.prefix_steps[-1] == GSM[4]
    randoms = {truncate(GSM, 0, bad, strategy="random", seed=1, key=str(i)).k for i in range(60)}
    assert randoms == {0, 1, 2, 3}
    again = [truncate(GSM, 0, bad, strategy="random", seed=1, key=str(i)).k for i in range(60)]
    assert again == [
        truncate(GSM, 0, bad, strategy="random", seed=1, key=str(i)).k for i in range(60)
    ]
    assert (
        truncate(GSM, 0, bad, strategy="random", seed=2, key="x").to_payload()["truncation"][
            "strategy"
        ]
        == "random"
    )
    with pytest.raises(InputError, match="unknown truncation strategy 'middle'"):
        truncate(GSM, 1, bad, strategy="middle")  # type: ignore[arg-type]
    assert build_prefix([]) == ""


async def test_retry_loop_feeds_back_and_stops() -> None:
    replies = iter(
        [
            "I changed 9 to 8.",  # unparseable
            tag("She sells 16 - 7 = 8 (instead of 9) eggs a day."),  # leaked label
            tag("She sells 16 - 7 = 8 eggs a day."),  # valid
        ]
    )
    seen: list[ModelRequest] = []

    async def call(request: ModelRequest) -> str:
        seen.append(request)
        return next(replies)

    base = ModelRequest(
        model="m", messages=load_default("solve-gsm8k").render(question="q").messages
    )
    outcome = await perturb_with_retries(call, base, GSM, 2, answer="18", max_attempts=3)
    assert outcome.status == "valid" and len(outcome.attempts) == 3
    assert [a.check.flags for a in outcome.attempts] == [(UNPARSEABLE,), (LEAKED_LABEL,), ()]
    assert len(seen[2].messages) == len(base.messages) + 4
    feedback = seen[1].messages[-1].content
    assert feedback.startswith("That reply cannot be used: no <perturbed_step> block")
    assert "step 3" in feedback

    async def always_bad(request: ModelRequest) -> str:
        return tag(GSM[2])

    failed = await perturb_with_retries(always_bad, base, GSM, 2, max_attempts=2)
    assert failed.status == "failed" and len(failed.attempts) == 2
    assert failed.reason == "step 3 is unchanged"


# -- the perturb-preview experiment through the real engine and the stub server ---------


def _seed_problems(store: Store) -> None:
    with store.transaction():
        store.insert(
            "datasets",
            {"id": "t", "name": "t", "origin": "test", "format": "gsm8k", "imported_at": now_iso()},
        )
        for pid, steps in (("p1", GSM), ("p2", GSM[1:])):
            store.insert(
                "problems",
                {
                    "id": pid,
                    "dataset_id": "t",
                    "source": "gsm8k",
                    "question": "How much does Janet make?",
                    "answer": "18",
                    "steps": dumps(list(steps)),
                    "n_steps": len(steps),
                    "created_at": now_iso(),
                },
            )


async def test_preview_experiment_validates_and_retries(
    tmp_path: Path, stub_server: StubServer
) -> None:
    replies = {"n": 0}

    def responder(path: str, body: dict[str, Any]) -> StubReply:
        replies["n"] += 1
        whole = " ".join(str(m.get("content")) for m in body.get("messages", []))
        step = re.search(r"Step \d+ as given:\n(.*)\n", whole)
        assert step is not None
        changed = re.sub(r"\d+", "11", step.group(1), count=1)
        if "cannot be used" in whole:  # the feedback turn: now a clean rewrite
            return StubReply(text=tag(changed))
        return StubReply(text=tag(changed + " [Perturbation: arithmetic slip]"))

    stub_server.responder = responder
    settings = Settings(
        providers={
            "stub": ProviderSettings(kind="openai-compatible", base_url=stub_server.openai_base_url)
        }
    )
    with Store(tmp_path / "wb.db") as store:
        _seed_problems(store)
        config = PerturbPreviewConfig(
            prompt="perturb-step",
            model="stub:tiny",
            problems=ProblemSelection(ids=("p1", "p2")),
            max_attempts=2,
            truncation="after_k",
            truncation_k=1,
        )
        experiment = PerturbPreview(config)
        assert experiment.stages() == ["perturb", "retry-1"]
        run_id = store.create_run("preview", "perturb-preview", config.model_dump(mode="json"))
        providers = ProviderRegistry(settings)
        engine = Engine(store, providers, settings)
        try:
            for stage in experiment.stages():
                items = list(experiment.items(stage, store, run_id))
                assert len(items) == 2
                await engine.run_items(run_id, items)
                experiment.after_stage(stage, store, run_id)
        finally:
            engine.close()
            await providers.aclose()
        first = store.samples(run_id, "perturb")
        assert {s["status"] for s in first} == {"invalid"}
        assert all(s["payload"]["flags"] == [LEAKED_LABEL] for s in first)
        retried = store.samples(run_id, "retry-1")
        assert {s["status"] for s in retried} == {"done"}
        assert {s["parent_id"] for s in retried} == {s["id"] for s in first}
        for s in retried:
            p = s["payload"]
            assert p["attempt"] == 2 and p["flags"] == [] and p["valid"] is True
            assert p["truncation"]["strategy"] == "after_k"
            assert p["prefix"].splitlines()[p["step_index"]] == p["perturbed_step"]
            assert p["truncate_at"] == len(p["prefix"].splitlines())
            # what the writers store is what the payload type names, and what the trace
            # view reads back
            written = PerturbPayload.__required_keys__ | PerturbPayload.__optional_keys__
            assert set(p) <= written | EngineFields.__optional_keys__
            view = load_trace(store, s["id"])
            assert view.perturbed_index == p["step_index"]
            assert view.truncate_at == p["truncate_at"]
            assert view.perturbed_step == p["perturbed_step"]
        summary = experiment.summarise(store, run_id)
        assert summary["valid"] == 2 and summary["valid_first_try"] == 0
        assert summary["pass_rate"] == 1.0
        results = final_results(store, run_id)
        assert [r.attempt for r in results] == [2, 2] and all(r.valid for r in results)
        assert replies["n"] == 4
