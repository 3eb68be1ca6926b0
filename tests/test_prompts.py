"""Prompt templates (front matter, rendering, LaTeX) and prompt versions in the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.cli.main import main as prompts_main
from workbench.core.errors import InputError, StoreError
from workbench.core.perturb.taxonomy import get_error_type, load_taxonomy, parse_taxonomy
from workbench.core.prompts.templates import (
    DEFAULT_NAMES,
    list_defaults,
    load_default,
    parse_template,
)
from workbench.core.prompts.versions import (
    export_prompts,
    get_version,
    import_prompts,
    list_prompts,
    resolve_version,
    save_version,
    seed_defaults,
    versions,
)
from workbench.core.store import Store

SIMPLE = """+++
name = "simple"
purpose = "solve"
variables = ["question"]
optional = ["hint"]
[defaults]
temperature = 0.2
max_tokens = 64
stop = ["####"]
+++
<<system>>
Use $\\boxed{}$ and \\frac{a}{b} freely.
<<user>>
Q: {{ question }}
{% if hint is defined %}Hint: {{ hint }}{% endif %}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "wb.db")
    yield s
    s.close()


def test_defaults_ship_and_parse() -> None:
    assert set(DEFAULT_NAMES) <= set(list_defaults())
    purposes = {name: load_default(name).purpose for name in DEFAULT_NAMES}
    assert purposes == {
        "perturb-step": "perturb",
        "solve-gsm8k": "solve",
        "solve-math": "solve",
        "continue": "continue",
        "judge-recovery": "judge",
    }


def test_render_keeps_latex_literal_in_body_and_values() -> None:
    t = parse_template(SIMPLE)
    question = r"Compute $\frac{1}{2} + \left\{ x \right\}$ where {{x}} and {% raw %} stay text."
    r = t.render(question=question)
    assert r.system == r"Use $\boxed{}$ and \frac{a}{b} freely."
    assert len(r.messages) == 1 and r.messages[0].role == "user"
    assert r.messages[0].content == f"Q: {question}"
    assert r.text == f"{r.system}\n\nQ: {question}"
    with_hint = t.render(question="x", hint="{{ y }}")
    assert with_hint.messages[0].content.endswith("Hint: {{ y }}")


def test_solve_math_default_keeps_boxed() -> None:
    r = load_default("solve-math").render(question=r"Find $\sqrt{x^{2}}$.")
    assert r"$\boxed{answer}$" in r.messages[0].content
    assert r"Find $\sqrt{x^{2}}$." in r.messages[0].content


def test_missing_unknown_and_undeclared_variables_are_named() -> None:
    t = parse_template(SIMPLE)
    with pytest.raises(InputError, match="missing variable 'question'"):
        t.render()
    with pytest.raises(InputError, match="unknown variable 'qestion'"):
        t.render(question="x", qestion="typo")
    body = SIMPLE.replace("Q: {{ question }}", "Q: {{ question }} {{ answer }}")
    with pytest.raises(InputError, match="undeclared variable 'answer'"):
        parse_template(body, origin="draft")


def test_template_errors_name_the_line() -> None:
    bad = SIMPLE.replace("Q: {{ question }}", "Q: {{ question }")
    with pytest.raises(InputError, match=r"draft: line 1[0-9]"):
        parse_template(bad, origin="draft")
    with pytest.raises(InputError, match="front matter opening"):
        parse_template("hello", origin="draft")
    with pytest.raises(InputError, match=r"defaults\.temp is not a request setting"):
        parse_template(SIMPLE.replace("temperature", "temp"))
    with pytest.raises(InputError, match="purpose 'solving'"):
        parse_template(SIMPLE.replace('purpose = "solve"', 'purpose = "solving"'))
    with pytest.raises(InputError, match="unknown key 'model'"):
        parse_template(SIMPLE.replace('purpose = "solve"', 'purpose = "solve"\nmodel = "x"'))


def test_request_carries_defaults() -> None:
    t = parse_template(SIMPLE)
    req = t.request("gpt-x", {"question": "2+2"}, temperature=0.9)
    assert req.temperature == 0.9 and req.max_tokens == 64 and req.stop == ("####",)
    assert req.system and req.messages[0].content == "Q: 2+2"


def test_body_without_role_lines_is_one_user_turn() -> None:
    t = parse_template(
        '+++\nname = "x"\npurpose = "csv-ask"\nvariables = ["a"]\n+++\nSay {{ a }}.\n'
    )
    r = t.render(a="hi")
    assert r.system is None and r.messages[0].content == "Say hi." and r.text == "Say hi."


def test_versions_are_immutable_hashed_and_deduplicated(store: Store) -> None:
    first = save_version(store, "simple", SIMPLE, note="first")
    assert save_version(store, "simple", SIMPLE, note="again") == first
    assert save_version(store, "simple", SIMPLE.replace("\n", "\r\n")) == first
    second = save_version(store, "simple", SIMPLE.replace("Q:", "Question:"), note="wording")
    assert second != first
    v2 = get_version(store, second)
    assert v2.parent_id == first and v2.note == "wording" and v2.name == "simple"
    assert [v.id for v in versions(store, "simple")] == [first, second]
    assert get_version(store, first).body == SIMPLE  # the old text is untouched
    with pytest.raises(InputError, match="name = 'simple'"):
        save_version(store, "other", SIMPLE)
    with pytest.raises(StoreError, match="parent version 999"):
        save_version(store, "simple", SIMPLE + "\n.", parent_id=999)
    with pytest.raises(StoreError, match="no prompt version with id 12345"):
        get_version(store, 12345)


def test_seed_defaults_is_idempotent(store: Store) -> None:
    ids = seed_defaults(store)
    assert seed_defaults(store) == ids
    names = [p.name for p in list_prompts(store)]
    assert set(DEFAULT_NAMES) <= set(names)
    assert all(p.n_versions == 1 for p in list_prompts(store))


def test_resolve_version_refs(store: Store) -> None:
    seeded = resolve_version(store, "perturb-step")  # seeds the default on first use
    assert seeded.name == "perturb-step"
    assert resolve_version(store, seeded.id) == seeded
    assert resolve_version(store, f"perturb-step@{seeded.id}") == seeded
    with pytest.raises(InputError, match="belongs to 'perturb-step'"):
        resolve_version(store, f"solve-math@{seeded.id}")
    with pytest.raises(InputError, match="no prompt named 'nope'"):
        resolve_version(store, "nope")


def test_export_import_roundtrip(store: Store, tmp_path: Path) -> None:
    seed_defaults(store)
    save_version(store, "simple", SIMPLE)
    files = export_prompts(store, tmp_path / "out")
    assert {f.name for f in files} >= {"simple.md.j2", "perturb-step.md.j2"}
    other = Store(tmp_path / "other.db")
    try:
        ids = import_prompts(other, tmp_path / "out")
        assert len(ids) == len(files)
        assert (
            get_version(other, ids[0]).body.rstrip()
            == get_version(
                store, versions(store, get_version(other, ids[0]).name)[-1].id
            ).body.rstrip()
        )
        # editing a file in git and importing it again adds a version
        (tmp_path / "out" / "simple.md.j2").write_text(SIMPLE.replace("Q:", "Problem:"))
        again = import_prompts(other, tmp_path / "out" / "simple.md.j2")
        assert len(versions(other, "simple")) == 2 and again[0] == versions(other, "simple")[-1].id
        # one broken file imports nothing
        (tmp_path / "out" / "broken.md.j2").write_text("+++\nname = 1\n+++\n")
        before = other.scalar("SELECT COUNT(*) FROM prompt_versions")
        with pytest.raises(InputError, match=r"broken\.md\.j2: front matter: 'name'"):
            import_prompts(other, tmp_path / "out")
        assert other.scalar("SELECT COUNT(*) FROM prompt_versions") == before
    finally:
        other.close()


def test_prompts_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    assert prompts_main(["--db", db, "init"]) == 0  # read-only commands need a workspace
    capsys.readouterr()
    assert prompts_main(["--db", db, "prompts", "list"]) == 0
    out = capsys.readouterr().out
    assert "perturb-step" in out and "perturb" in out
    assert prompts_main(["--db", db, "prompts", "show", "solve-gsm8k"]) == 0
    assert 'name = "solve-gsm8k"' in capsys.readouterr().out
    assert prompts_main(["--db", db, "prompts", "export", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "continue.md.j2").exists()
    (tmp_path / "x" / "continue.md.j2").write_text(
        load_default("continue").source.replace("careful", "patient")
    )
    assert prompts_main(["--db", db, "prompts", "import", str(tmp_path / "x")]) == 0
    assert "continue" in capsys.readouterr().out
    assert prompts_main(["--db", db, "prompts", "show", "nope"]) == 2
    assert "no prompt named 'nope'" in capsys.readouterr().err


def test_taxonomy() -> None:
    types = load_taxonomy()
    ids = {t.id for t in types}
    assert {
        "arithmetic-slip",
        "wrong-formula",
        "sign-error",
        "dropped-term",
        "misread-quantity",
        "wrong-unit-conversion",
        "off-by-one",
        "invalid-inference",
        "wrong-case-split",
    } <= ids
    assert all(t.description and t.example for t in types)
    assert get_error_type("sign error").id == "sign-error"
    with pytest.raises(InputError, match="unknown error type 'nope'"):
        get_error_type("nope")
    with pytest.raises(InputError, match=r"error #1: 'example'"):
        parse_taxonomy('[[error]]\nid="a"\nname="a"\ndescription="d"\n')
