"""One-line messages for what a user can get wrong: a mistyped --db, a read-only workspace,
an unknown Jinja filter, a missing dataset; and `| head` ends quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stub_server import StubServer
from tests.test_run_cli import REPO, workspace
from workbench.cli.main import main

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["run", "--resume", "1"],
        ["cache", "explain", "1", "solve/x/0"],
        ["export", "1", "--format", "jsonl", "--out", "x.jsonl"],
        ["prompts", "list"],
    ],
)
def test_read_only_commands_on_a_missing_db_fail_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    db = tmp_path / "typo.db"
    assert main(["--db", str(db), *command]) == 2
    err = one_line_error(capsys)
    assert f"{db}: no workspace here" in err and "workbench init" in err
    assert not db.exists()


def test_init_creates_the_workspace_explicitly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    assert main(["--db", str(db), "init"]) == 0
    assert "new workspace" in capsys.readouterr().out and db.exists()
    assert main(["--db", str(db), "init"]) == 0
    assert "already a workspace" in capsys.readouterr().out
    assert main(["--db", str(db), "runs"]) == 0
    assert main(["--db", str(db), "prompts", "list"]) == 0


def test_a_workspace_on_a_read_only_filesystem_is_reported_as_such(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no user+mount namespaces here")
    data, ro = tmp_path / "data", tmp_path / "ro"
    data.mkdir()
    ro.mkdir()
    assert main(["--db", str(data / "wb.db"), "init"]) == 0
    script = (
        f"mount --bind -o ro {data} {ro} && {sys.executable} -m workbench --db {ro / 'wb.db'} runs"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=ENV, capture_output=True, text=True
    )
    err = done.stderr.strip()
    assert done.returncode == 2 and "\n" not in err, err
    assert "read-only filesystem" in err and "not a workbench database" not in err


def test_unknown_jinja_filter_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "bad.md.j2").write_text(
        '+++\nname = "bad"\npurpose = "solve"\nvariables = ["question"]\n+++\n'
        "{{ question | nosuchfilter }}\n"
    )
    assert main(["--db", str(tmp_path / "wb.db"), "prompts", "import", str(folder)]) == 2
    err = one_line_error(capsys)
    assert "bad.md.j2: line 6: No filter named 'nosuchfilter'" in err


def test_missing_dataset_is_named(
    tmp_path: Path, stub_server: StubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workspace(tmp_path, stub_server)
    config.write_text(config.read_text().replace('dataset = "toy"', 'dataset = "gsm8k-typo"'))
    code = main(
        ["--db", str(tmp_path / "wb.db"), "--config", str(tmp_path / "workbench.toml"),
         "run", str(config), "--no-live"]
    )  # fmt: skip
    assert code == 2
    err = one_line_error(capsys)
    assert "no dataset 'gsm8k-typo' in this workspace (datasets: toy)" in err
    assert stub_server.total == 0


def test_run_into_a_closed_pipe_ends_without_a_traceback(
    tmp_path: Path, stub_server: StubServer
) -> None:
    config = workspace(tmp_path, stub_server, samples=10)
    cmd = (
        f"{sys.executable} -m workbench --db {tmp_path / 'wb.db'} "
        f"--config {tmp_path / 'workbench.toml'} run {config} --no-live | head -c 0"
    )
    done = subprocess.run(["bash", "-c", cmd], env=ENV, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert stub_server.paid == 60  # the run itself finished: the reader leaving stops only output
