"""Every stage's models, providers, keys, continuation methods and prices are checked before
the first call: each late-stage config error below used to fail only after the perturb
stage had paid.  Counted at the loopback stub: nothing reaches it, and no run row is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_fakes import add_toy_problems
from tests.stub_server import StubServer
from workbench.cli.main import main
from workbench.core.store import Store

KEY_ENV = "WB_PREFLIGHT_TEST_KEY"

BASE = {
    "perturber": '"stub:m"',
    "completer": '"claude:claude-3-haiku"',
    "continuation": '"emulate"',
    "check_too_easy": "true",
}


def workspace(tmp_path: Path, stub: StubServer, **fields: str) -> Path:
    with Store(tmp_path / "wb.db") as store:
        add_toy_problems(store, 4)
    (tmp_path / "workbench.toml").write_text(
        f"""
[providers.stub]
kind = "openai-compatible"
base_url = "{stub.openai_base_url}"

[providers.claude]
kind = "anthropic"
base_url = "{stub.anthropic_base_url}"
api_key_env = "{KEY_ENV}"

[pricing."stub:m"]
input = 1.0
output = 2.0

[pricing."claude:claude-3-haiku"]
input = 1.0
output = 2.0
"""
    )
    body = "\n".join(f"{k} = {v}" for k, v in {**BASE, **fields}.items() if v)
    config = tmp_path / "rec.toml"
    config.write_text(
        f'kind = "recovery"\nname = "pre"\nsamples = 2\n{body}\n[problems]\ndataset = "toy"\n'
    )
    return config


def cli(tmp_path: Path, *args: str) -> int:
    return main(
        ["--db", str(tmp_path / "wb.db"), "--config", str(tmp_path / "workbench.toml"), *args]
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (  # the completer cannot do the continuation asked for
            {"completer": '"stub:m"', "continuation": '"prefill"', "check_too_easy": "false"},
            "completer stub:m: stub:m does not support continuation 'prefill'",
        ),
        (  # prefill suits the completer, but the too-easy check continues with the perturber
            {"continuation": '"prefill"'},
            "checker stub:m: stub:m does not support continuation 'prefill'",
        ),
        ({"completer": '"nowhere:m"'}, "completer nowhere:m: unknown provider 'nowhere'"),
        ({"unset_key": "1"}, f"completer claude:claude-3-haiku: no API key found; set {KEY_ENV}"),
        (
            {"completer": '"claude:claude-3-unpriced"', "budget_usd": "1.0"},
            "completer claude:claude-3-unpriced: no known price",
        ),
    ],
)
def test_late_stage_config_errors_fail_before_any_request(
    tmp_path: Path,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, str],
    message: str,
) -> None:
    if not fields.pop("unset_key", None):
        monkeypatch.setenv(KEY_ENV, "sk-preflight")
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    config = workspace(tmp_path, stub_server, **fields)
    assert cli(tmp_path, "run", str(config), "--no-live") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert stub_server.total == 0  # counted at the stub: not one request
    with Store(tmp_path / "wb.db") as store:
        assert store.query("SELECT id FROM runs") == []  # no 'failed' run left behind


def test_the_valid_config_does_send(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same workspace with a sound config passes the checks and runs."""
    monkeypatch.setenv(KEY_ENV, "sk-preflight")
    config = workspace(tmp_path, stub_server)
    cli(tmp_path, "run", str(config), "--no-live")
    assert stub_server.total > 0
    with Store(tmp_path / "wb.db") as store:
        assert store.scalar("SELECT COUNT(*) FROM runs") == 1
