"""One redactor for engine, providers and exports: the same secrets fed through all three."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine_fakes import FakeProvider, items, make_engine, new_run
from workbench.core.analysis import iter_sample_rows
from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.providers import ModelRequest
from workbench.core.providers._common import status_error
from workbench.core.redact import REDACTED, Redactor, env_secrets

ENV_SECRET = "tok-live-0123456789abcdef"  # only known because its variable's name says so
SHAPED_SECRET = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"  # in no variable: caught by its shape


def test_value_drops_secret_fields_and_redacts_strings() -> None:
    data = {
        "a": ["sk-abcdefghijklmnopqrstuv"],
        "Authorization": "x",
        "nested": {"token": 1},
        "skateboardingchampionships": "skateboardingchampionships",
    }
    assert Redactor().value(data) == {
        "a": [REDACTED],
        "nested": {},
        "skateboardingchampionships": "skateboardingchampionships",
    }


def test_env_secrets_by_name_and_length() -> None:
    env = {
        "OPENAI_API_KEY": "sk-short-but-long-enough",
        "GITHUB_TOKEN": "ghp_0123456789",
        "DB_PASSWORD": "hunter2hunter2",
        "FEATURE_KEY": "1",  # too short to be a key
        "HOME": "/root/a/long/path/value",
    }
    assert set(env_secrets(env)) == {
        "sk-short-but-long-enough",
        "ghp_0123456789",
        "hunter2hunter2",
    }


def test_extra_secret_and_longest_first() -> None:
    redactor = Redactor.from_env(["abcd", "abcdefgh"], environ={})
    assert redactor.text("x abcdefgh y abcd") == f"x {REDACTED} y {REDACTED}"


@pytest.mark.parametrize("secret", [ENV_SECRET, SHAPED_SECRET], ids=["env", "shape"])
async def test_same_secret_is_caught_by_engine_provider_and_export(
    secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", ENV_SECRET)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    # provider adapters: an error body that echoes a key the adapter does not hold
    error = status_error("acme", 401, f"Incorrect API key provided: {secret}", None, None)
    assert secret not in str(error) and REDACTED in str(error)

    # engine: the stored error text of a failed call
    def refuse(req: ModelRequest, n: int) -> str:
        raise ProviderError(ErrorKind.AUTH, f"Incorrect API key provided: {secret}", status=401)

    engine, store = make_engine(tmp_path / "a", FakeProvider(script=refuse))
    await engine.run_items(new_run(store), items(1))
    store.close()
    blob = b"".join(p.read_bytes() for p in (tmp_path / "a").glob("wb.db*"))
    assert secret.encode() not in blob

    # export: a model output that happens to contain the key is stored as said, exported redacted
    engine, store = make_engine(
        tmp_path / "b", FakeProvider(script=lambda req, n: f"the key is {secret}")
    )
    run_id = new_run(store)
    await engine.run_items(run_id, items(2))
    rows = list(iter_sample_rows(store, run_id))
    store.close()
    assert len(rows) == 2
    assert secret not in json.dumps(rows) and all(REDACTED in r["output"] for r in rows)


QUOTED_SECRET = 'pa"ss\\word-Ünïcode-123'  # JSON escapes the quote and the backslash


def test_stored_json_redacts_secrets_as_json_spells_them() -> None:
    redactor = Redactor.from_env(environ={"X_SECRET": QUOTED_SECRET})
    for ascii in (True, False):
        data = {"note": f"said {QUOTED_SECRET}", "n": 1, "deep": [{"k": QUOTED_SECRET}]}
        raw = json.dumps(data, ensure_ascii=ascii)
        assert QUOTED_SECRET not in raw  # only an escaped spelling is in the stored text
        parsed = redactor.stored_json(raw, {})
        assert parsed == {"note": f"said {REDACTED}", "n": 1, "deep": [{"k": REDACTED}]}
    assert redactor.stored_json(None, []) == [] and redactor.stored_json("not json", {}) == {}


def test_stored_json_drops_secret_named_keys_at_any_depth() -> None:
    raw = json.dumps({"steps": [{"headers": {"a": 1}, "api_key": "x", "ok": "fine"}], "n": 2})
    assert Redactor().stored_json(raw, {}) == {"steps": [{"ok": "fine"}], "n": 2}
    assert Redactor().stored_json(json.dumps({"output_tokens": 3}), {}) == {"output_tokens": 3}


def test_is_clean_sees_every_secret_and_key_shape() -> None:
    redactor = Redactor.from_env(environ={"X_TOKEN": ENV_SECRET})
    assert redactor.is_clean("nothing to see\x00here")
    assert not redactor.is_clean(f"a\x00{ENV_SECRET}")
    assert not redactor.is_clean(f"a {SHAPED_SECRET}")
    assert not redactor.is_clean("hf_abcdefghijklmnopqrstu")


async def test_export_redacts_payload_labels_and_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path of the export's row builder: clean rows, and rows holding a secret."""
    monkeypatch.setenv("MY_SERVICE_TOKEN", QUOTED_SECRET)
    engine, store = make_engine(
        tmp_path, FakeProvider(script=lambda req, n: f"key {QUOTED_SECRET}")
    )
    run_id = new_run(store)
    await engine.run_items(run_id, items(3))
    with store.transaction() as conn:
        conn.execute(
            "UPDATE samples SET payload=? WHERE run_id=?",
            (json.dumps({"said": QUOTED_SECRET, "authorization": "Bearer x", "ok": 1}), run_id),
        )
        sample_ids = [
            r[0] for r in conn.execute("SELECT id FROM samples WHERE run_id=?", (run_id,))
        ]
        conn.execute(
            "INSERT INTO labels (sample_id, label, created_at) VALUES (?,?,'t')",
            (sample_ids[0], f"see {QUOTED_SECRET}"),
        )
    rows = list(iter_sample_rows(store, run_id))
    store.close()
    for ascii in (True, False):
        text = json.dumps(rows, ensure_ascii=ascii)
        assert QUOTED_SECRET not in text and json.dumps(QUOTED_SECRET)[1:-1] not in text
    assert all(r["payload"] == {"said": REDACTED, "ok": 1} for r in rows)
    assert rows[0]["labels"] == [f"see {REDACTED}"]


def test_stored_json_reads_what_pythons_json_writes() -> None:
    """NaN and Infinity are valid to Python's json (which the store writes with), not to
    orjson: the export must not drop such a payload."""
    raw = json.dumps({"score": float("nan"), "top": float("inf"), "ok": 1})
    parsed = Redactor().stored_json(raw, {})
    assert parsed["ok"] == 1 and parsed["score"] != parsed["score"] and parsed["top"] > 1e308
