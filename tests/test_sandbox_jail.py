"""The jail against programs that first switch the in-process guard off.

Every program here starts by walking its frames to the child's ``Guard`` and
setting it inactive (the escape the audit hook alone could not stop), prints
``GUARD OFF`` to prove it got there, then tries one thing.  Each test asserts
the specific effect did not happen on this machine: the file was not read,
written or deleted, no process outlived the run, nothing from the parent
leaked in.  They need the bubblewrap jail and skip cleanly where it cannot run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.sandbox import Isolation, Limits, SandboxResult, jail_status, run_code
from workbench.core.sandbox.jail import BWRAP_ENV, reset_jail_status
from workbench.core.store import Store

FAST = Limits(wall_s=15, cpu_s=5)

GUARD_OFF = """\
import collections
sys = collections._sys
os = sys.modules['os']
importlib = sys.modules['importlib']
def _find_guard():
    try:
        raise RuntimeError
    except RuntimeError as exc:
        # library code touches tb_frame, so the hook does not see the program do it
        frame = [f for f, _ in sys.modules['traceback'].walk_tb(exc.__traceback__)][0]
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if type(value).__name__ == 'Guard':
                return value
        frame = frame.f_back
    raise SystemExit('no guard found')
GUARD = _find_guard()
GUARD.active = False
print('GUARD OFF', flush=True)
def attempt(label, fn):
    try:
        print(label, repr(fn()), flush=True)
    except BaseException as exc:
        print(label, 'refused:', type(exc).__name__, exc, flush=True)
"""


def hostile(body: str, limits: Limits = FAST) -> SandboxResult:
    out = run_code(GUARD_OFF + body, limits=limits)
    assert "GUARD OFF" in out.stdout, (out.error, out.stderr[-2000:])
    return out


@pytest.fixture(autouse=True)
def _needs_jail() -> None:
    if jail_status().isolation is not Isolation.BWRAP:
        pytest.skip(f"no bubblewrap jail here: {jail_status().reason}")


def _tampering_recorded(out: SandboxResult) -> None:
    assert not out.ok
    assert out.error_kind == "tampering", out.error
    assert out.isolation is Isolation.BWRAP


# -- files -------------------------------------------------------------------------------


def test_secrets_home_and_workspace_db_are_not_visible(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".ssh"
    home.mkdir(parents=True)
    (home / "id_rsa").write_text("SECRET-KEY-MATERIAL")
    db = tmp_path / "workbench.db"
    Store(db).close()
    targets = [home / "id_rsa", db, Path("/etc/shadow"), Path("/etc/passwd"), Path.home()]
    body = "".join(
        f"attempt({str(p)!r}, lambda: open({str(p)!r}, 'rb').read()[:200])\n" for p in targets
    )
    body += f"attempt('listdir', lambda: os.listdir({str(tmp_path)!r}))\n"
    body += "attempt('root', lambda: sorted(os.listdir('/')))\n"
    body += "attempt('etc', lambda: sorted(os.listdir('/etc')))\n"
    out = hostile(body)
    assert "SECRET-KEY-MATERIAL" not in out.stdout
    assert "SQLite format 3" not in out.stdout
    assert "root:" not in out.stdout  # neither /etc/shadow nor /etc/passwd
    assert "workbench.db" not in out.stdout.split("listdir", 1)[1]
    etc_line = next(line for line in out.stdout.splitlines() if line.startswith("etc "))
    assert "shadow" not in etc_line and "passwd" not in etc_line
    _tampering_recorded(out)


def test_writing_and_deleting_outside_its_folder_fail(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    db = tmp_path / "workbench.db"
    Store(db).close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    created = tmp_path / "created.txt"
    body = (
        f"attempt('remove', lambda: os.remove({str(victim)!r}))\n"
        f"attempt('write', lambda: open({str(victim)!r}, 'w').write('gone'))\n"
        f"attempt('create', lambda: open({str(created)!r}, 'w').write('x'))\n"
        f"attempt('db', lambda: open({str(db)!r}, 'r+b').write(b'x' * 100))\n"
        "attempt('etc', lambda: open('/etc/evil', 'w').write('x'))\n"
        "attempt('own', lambda: open('mine.txt', 'w').write('fine'))\n"
    )
    out = hostile(body)
    assert victim.read_text() == "keep"
    assert not created.exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert "own 4" in out.stdout  # its own folder stays writable
    _tampering_recorded(out)


def test_data_files_stay_read_only_with_the_guard_off(tmp_path: Path) -> None:
    data = tmp_path / "tips.csv"
    data.write_text("bill,tip\n10,2\n")
    body = "attempt('w', lambda: open('tips.csv', 'w').write('gone'))\n"
    out = run_code(GUARD_OFF + body, limits=FAST, files=[data])
    assert "w refused: OSError" in out.stdout  # EROFS
    assert data.read_text() == "bill,tip\n10,2\n"


# -- processes ---------------------------------------------------------------------------


def test_os_system_exec_and_fork_do_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    body = (
        f"attempt('system', lambda: os.system('echo pwned; touch {marker}'))\n"
        "attempt('execv', lambda: os.execv(sys.executable, "
        "[sys.executable, '-c', 'print(\"pwned\")']))\n"
        "attempt('posix_spawn', lambda: os.posix_spawn(sys.executable, "
        "[sys.executable, '-c', 'print(\"pwned\")'], {}))\n"
        "def forked():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        print('pwned from the fork', flush=True)\n"
        "        os._exit(0)\n"
        "    return os.waitpid(pid, 0)\n"
        "attempt('fork', forked)\n"
    )
    out = hostile(body)
    assert "pwned" not in out.stdout.replace("echo pwned", "")
    assert "fork refused: PermissionError" in out.stdout  # the syscall filter
    assert "execv refused: PermissionError" in out.stdout
    assert not marker.exists()
    assert out.syscall_filter
    _tampering_recorded(out)


ORPHANS = """\
def orphan():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:  # double fork: the grandchild is nobody's child
            open('/proc/self/comm', 'w').write({token!r})
            import time
            time.sleep(60)
        os._exit(0)
    os.waitpid(pid, 0)
    return 'orphaned'
attempt('orphan', orphan)
"""


def _processes_named(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path("/proc", entry, "comm").read_text().strip() == token:
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.fixture
def token() -> Iterator[str]:
    name = "wb" + uuid.uuid4().hex[:12]
    yield name
    for pid in _processes_named(name):  # never leave a test's escapee running
        os.kill(pid, 9)


@pytest.mark.parametrize("syscall_filter", [True, False], ids=["filtered", "pid-namespace-only"])
def test_setsid_double_fork_orphans_do_not_outlive_the_run(
    token: str, syscall_filter: bool
) -> None:
    limits = Limits(wall_s=15, cpu_s=5, syscall_filter=syscall_filter)
    out = hostile(ORPHANS.format(token=token), limits)
    if not syscall_filter:
        assert "orphan 'orphaned'" in out.stdout  # the fork worked: only the jail holds
    deadline = time.monotonic() + 5
    while _processes_named(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_named(token) == []


def test_ptrace_and_other_processes_memory_are_refused() -> None:
    body = (
        "ctypes = importlib.import_module('ctypes')\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "attempt('attach', lambda: (libc.ptrace(16, 1, 0, 0), ctypes.get_errno()))\n"
        "attempt('traceme', lambda: (libc.ptrace(0, 0, 0, 0), ctypes.get_errno()))\n"
        "attempt('pids', lambda: sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
        "attempt('self', lambda: open('/proc/self/mem', 'r+b').close())\n"
    )
    out = hostile(body)
    assert "attach (-1, 1)" in out.stdout  # EPERM from the syscall filter
    assert "traceme (-1, 1)" in out.stdout
    pids = out.stdout.split("pids ", 1)[1].splitlines()[0]
    # the program is the namespace's init: no other process (no reaper whose memory it
    # could rewrite through /proc/1/mem) and nothing outside the jail is in view
    assert pids == "[1]"
    assert "self None" in out.stdout  # its own memory is its own business


def test_clearing_the_parent_death_signal_does_not_outlive_a_timeout(token: str) -> None:
    body = (
        "ctypes = importlib.import_module('ctypes')\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "attempt('pdeathsig', lambda: libc.prctl(1, 0, 0, 0, 0))\n"  # PR_SET_PDEATHSIG 0
        f"open('/proc/self/comm', 'w').write({token!r})\n"
        "import time\n"
        "time.sleep(60)\n"
    )
    out = hostile(body, Limits(wall_s=2, cpu_s=5))
    assert out.limit_hit == "wall_time"
    assert "pdeathsig 0" in out.stdout
    deadline = time.monotonic() + 5
    while _processes_named(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_named(token) == []


def test_proc_self_mem_is_refused_while_the_guard_is_on() -> None:
    out = run_code("open('/proc/self/mem', 'r+b')\n", limits=FAST)
    assert out.error_kind == "forbidden_io"
    assert out.violations


# -- what the parent holds ---------------------------------------------------------------


def test_parent_environment_and_ld_preload_do_not_reach_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent/evil.so")
    body = (
        "attempt('env', lambda: dict(os.environ))\n"
        "def environs():\n"
        "    seen = []\n"
        "    for p in os.listdir('/proc'):\n"
        "        if p.isdigit() or p == 'self':\n"
        "            try:\n"
        "                seen.append(open(f'/proc/{p}/environ', 'rb').read())\n"
        "            except OSError as exc:\n"
        "                seen.append(str(exc))\n"
        "    return seen\n"
        "attempt('environs', environs)\n"
        "os.environ['LD_PRELOAD'] = '/sandbox/evil.so'\n"
        "attempt('preload', lambda: os.execv(sys.executable, [sys.executable, '-c', 'pass']))\n"
    )
    out = hostile(body)
    assert secret not in out.stdout
    assert "OPENAI_API_KEY" not in out.stdout
    assert "evil.so" not in out.stdout.split("environs", 1)[1].split("preload", 1)[0]
    assert "cannot be preloaded" not in out.stderr
    assert "preload refused: PermissionError" in out.stdout


def test_writing_to_every_descriptor_reaches_nothing_of_the_parent(tmp_path: Path) -> None:
    leaked = tmp_path / "leaked.log"
    leaked.write_text("parent's log\n")
    fd = os.open(leaked, os.O_RDWR | os.O_APPEND)
    os.set_inheritable(fd, True)  # a descriptor the parent forgot to protect
    db = tmp_path / "workbench.db"
    Store(db).close()
    db_fd = os.open(db, os.O_RDWR)
    os.set_inheritable(db_fd, True)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    try:
        body = (
            "def spray():\n"
            "    hit = []\n"
            "    for fd in range(3, 1024):\n"
            "        try:\n"
            "            os.write(fd, b'pwned')\n"
            "            hit.append(fd)\n"
            "        except OSError:\n"
            "            pass\n"
            "    return hit\n"
            "attempt('fds', spray)\n"
        )
        run_code(GUARD_OFF + body, limits=FAST)
    finally:
        os.close(fd)
        os.close(db_fd)
    assert leaked.read_text() == "parent's log\n"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# -- the guard's own record --------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    f = e.__traceback__.tb_frame\n",
        "import collections\nf = collections._sys._getframe(0).f_back\n",
        "g = (i for i in [1])\nf = g.gi_frame\n",
    ],
    ids=["tb_frame", "getframe", "gi_frame"],
)
def test_frame_walking_by_the_program_is_refused(code: str) -> None:
    out = run_code(code, limits=FAST)
    assert out.error_kind == "tampering", out.error


def test_every_execution_records_its_isolation() -> None:
    out = run_code("def solution():\n    return 1\n", limits=FAST, entry="solution")
    assert out.ok
    record = out.to_json()
    assert record["isolation"] == "bwrap"
    assert record["syscall_filter"] is True
    old = run_code("print(1)\n", limits=Limits(jail=False, network_namespace=False))
    assert old.ok and old.isolation is Isolation.RLIMITS_ONLY


# -- where the jail cannot run ----------------------------------------------------------


@pytest.fixture
def fresh_probe() -> Iterator[None]:
    reset_jail_status()
    yield
    reset_jail_status()


@pytest.mark.usefixtures("fresh_probe")
@pytest.mark.parametrize(
    ("binary", "why"),
    [("/nonexistent/bwrap", "is not an executable"), ("/bin/false", "failed: exit status 1")],
    ids=["missing", "broken"],
)
def test_without_the_jail_it_says_so_once_and_records_the_fallback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, binary: str, why: str
) -> None:
    monkeypatch.setenv(BWRAP_ENV, binary)
    with caplog.at_level(logging.WARNING, logger="workbench.sandbox"):
        first = run_code("def solution():\n    return 2\n", limits=FAST, entry="solution")
        second = run_code("def solution():\n    return 3\n", limits=FAST, entry="solution")
    warnings = [r.getMessage() for r in caplog.records if r.name == "workbench.sandbox"]
    assert len(warnings) == 1, warnings
    (line,) = warnings
    assert "\n" not in line
    assert "sandbox jail unavailable" in line and binary in line and why in line
    assert first.ok and second.ok
    assert first.isolation in (Isolation.NAMESPACE, Isolation.RLIMITS_ONLY)
    assert f"isolation={first.isolation}" in line
    assert first.to_json()["isolation"] == str(first.isolation)


def test_an_interpreter_under_tmp_is_bound_into_the_private_tmp() -> None:
    """The jail's private /tmp is mounted before the interpreter and venv are bound, so a
    checkout under /tmp (as CI makes) keeps its interpreter visible inside the jail."""
    import sys

    from workbench.core.sandbox.jail import bwrap_argv

    argv = bwrap_argv("bwrap", folder_bytes=1 << 20, mounts=(), child=None, env={})
    tmp = next(i for i in range(len(argv) - 1) if argv[i : i + 2] == ["--tmpfs", "/tmp"])
    binds = [
        i for i in range(len(argv) - 2) if argv[i] == "--ro-bind" and argv[i + 2] == sys.prefix
    ]
    assert binds and all(i > tmp for i in binds)
