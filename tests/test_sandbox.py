"""The code sandbox against normal programs and a corpus of hostile ones.

Each case is a real ``python -I`` subprocess.  Limits are small so the whole
file stays fast; CPU and wall-clock cases are the only slow ones (~1 s each).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.core.sandbox import Limits, SandboxResult, run_code, run_many
from workbench.core.store import Store

FAST = Limits(wall_s=10, cpu_s=3)

# A way to reach `os` without importing it: the audit hook must still stop it.
OS = "import collections\nos = collections._sys.modules['os']\n"


def solve(code: str, limits: Limits = FAST, **kw: object) -> SandboxResult:
    return run_code(code, limits=limits, entry="solution", **kw)  # type: ignore[arg-type]


# -- normal programs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "answer", "result"),
    [
        ("def solution():\n    return 6 * 7\n", "42", 42),
        ("def solution():\n    return 0.1 + 0.2\n", "0.3", 0.30000000000000004),
        ("def solution():\n    return 18.0\n", "18", 18.0),
        ("def solution():\n    return '  x = 3 '\n", "x = 3", "  x = 3 "),
        (
            "from fractions import Fraction\ndef solution():\n    return Fraction(-3, 4)\n",
            "-\\frac{3}{4}",
            "-3/4",
        ),
        (
            "import sympy as sp\ndef solution():\n    return sp.sqrt(8) / 4\n",
            "\\frac{\\sqrt{2}}{2}",
            "sqrt(2)/2",
        ),
        (
            "import sympy as sp\ndef solution():\n    x = sp.symbols('x')\n"
            "    return sp.solve(x**2 - 5*x + 6, x)\n",
            "2, 3",
            ["2", "3"],
        ),
        ("import numpy as np\ndef solution():\n    return np.int64(7) * 3\n", "21", 21),
        ("def solution():\n    return (1, 2)\n", "(1, 2)", [1, 2]),
    ],
    ids=[
        "int",
        "float",
        "integral-float",
        "str",
        "fraction",
        "sympy",
        "sympy-list",
        "numpy",
        "tuple",
    ],
)
def test_values_come_back_as_answer_text(code: str, answer: str, result: object) -> None:
    out = solve(code)
    assert out.ok, out.error
    assert out.answer == answer
    assert out.result == result
    assert out.result_repr is not None


def test_stdout_is_captured_and_entry_is_optional() -> None:
    out = run_code("for i in range(3):\n    print(i)\n", limits=FAST)
    assert out.ok
    assert out.stdout == "0\n1\n2\n"
    assert out.result is None
    assert out.duration_s > 0


def test_call_is_an_alias_of_entry() -> None:
    out = run_code("def main():\n    return 5\n", limits=FAST, call="main")
    assert out.ok and out.answer == "5"


def test_program_may_write_in_its_own_directory() -> None:
    code = (
        "open('notes.txt', 'w').write('hi')\ndef solution():\n    return open('notes.txt').read()\n"
    )
    assert solve(code).answer == "hi"


def test_data_file_is_readable_but_not_writable(tmp_path: Path) -> None:
    data = tmp_path / "tips.csv"
    data.write_text("bill,tip\n10,2\n20,3\n")
    read = "import pandas as pd\ndef solution():\n    return pd.read_csv('tips.csv')['tip'].sum()\n"
    out = solve(read, files={"tips.csv": data})
    assert out.ok, out.error
    assert out.answer == "5"
    write = "open('tips.csv', 'w').write('gone')\n"
    out = run_code(write, limits=FAST, files=[data])
    assert out.error_kind == "forbidden_io"
    assert data.read_text().startswith("bill,tip")


# -- failures that are the program's own ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind", "fragment"),
    [
        ("def solution(:\n    return 1\n", "syntax", "line 1"),
        ("def solution():\n    return 1 / 0\n", "exception", "line 2: ZeroDivisionError"),
        ("def solution():\n    x = 3\n", "no_result", "returned None"),
        ("x = 3\n", "no_result", "no function solution()"),
        ("def solution():\n    return solution()\n", "exception", "RecursionError"),
        ("exit(3)\n", "exception", "SystemExit: 3"),
        ("open('big.bin', 'wb').write(b'x' * 20_000_000)\n", "exception", "File too large"),
    ],
    ids=["syntax", "raises", "returns-none", "no-entry", "recursion", "exit", "file-size"],
)
def test_program_errors_are_outcomes(code: str, kind: str, fragment: str) -> None:
    out = solve(code)
    assert out.error_kind == kind
    assert out.error is not None and fragment in out.error
    assert "\n" not in out.error


# -- the hostile corpus ------------------------------------------------------------------


def test_infinite_loop_hits_the_cpu_limit() -> None:
    out = solve("while True:\n    pass\n", Limits(cpu_s=1, wall_s=60))
    assert (out.error_kind, out.limit_hit) == ("timeout", "cpu_time")


def test_the_cpu_limit_reads_the_same_without_the_jail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where bwrap cannot run, the fallback (``unshare``, which reports a child's death by
    signal as a plain failure) still says the CPU limit was hit, not "crash"."""
    from workbench.core.sandbox import Isolation
    from workbench.core.sandbox.jail import BWRAP_ENV, reset_jail_status

    monkeypatch.setenv(BWRAP_ENV, "/nonexistent/bwrap")
    reset_jail_status()
    try:
        out = solve("while True:\n    pass\n", Limits(cpu_s=1, wall_s=60))
    finally:
        monkeypatch.delenv(BWRAP_ENV)
        reset_jail_status()
    assert out.isolation is not Isolation.BWRAP
    assert (out.error_kind, out.limit_hit) == ("timeout", "cpu_time"), out.error


def test_sleeping_program_hits_the_wall_clock() -> None:
    out = solve("import time\ntime.sleep(60)\n", Limits(wall_s=1, cpu_s=5))
    assert (out.error_kind, out.limit_hit) == ("timeout", "wall_time")
    assert out.duration_s < 5


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("import os\nwhile True:\n    os.fork()\n", "forbidden_import"),
        (OS + "while True:\n    os.fork()\n", "forbidden_process"),
        ("import os\nos.system('echo pwned')\n", "forbidden_import"),
        (OS + "os.system('echo pwned')\n", "forbidden_process"),
        ("import subprocess\nsubprocess.run(['true'])\n", "forbidden_import"),
        (
            "import collections\n"
            "lib = collections._sys.modules['importlib']\n"
            "lib.import_module('subprocess').run(['echo', 'pwned'])\n",
            "forbidden_process",
        ),
        ("import socket\nsocket.socket()\n", "forbidden_import"),
        (
            "import collections\n"
            "lib = collections._sys.modules['importlib']\n"
            "lib.import_module('socket').create_connection(('127.0.0.1', 80))\n",
            "network",
        ),
        ("import ctypes\n", "forbidden_import"),
        (
            "import collections\n"
            "m = collections._sys.modules['importlib'].import_module('_posixsubprocess')\n"
            "m.fork_exec(*([None] * 23))\n",
            "forbidden_process",
        ),
        (
            "import numpy.ctypeslib\n"
            "libc = numpy.ctypeslib.ctypes.CDLL('libc.so.6')\n"
            "libc.system(b'echo pwned')\n",
            "forbidden_process",
        ),
        ("__import__('shutil').rmtree('/')\n", "forbidden_import"),
    ],
    ids=[
        "fork-bomb",
        "fork-bomb-via-sys-modules",
        "os-system",
        "os-system-via-sys-modules",
        "subprocess",
        "subprocess-via-importlib",
        "socket-import",
        "socket-via-importlib",
        "ctypes",
        "fork-exec-directly",
        "ctypes-via-numpy",
        "dunder-import",
    ],
)
def test_processes_network_and_imports_are_refused(code: str, kind: str) -> None:
    out = solve(code)
    assert out.error_kind == kind, out.error
    assert "pwned" not in out.stdout


def test_huge_allocations_hit_the_memory_limit() -> None:
    small = Limits(memory_mb=512, cpu_s=3)
    codes = [
        "x = bytearray(10**11)\n",
        "x = [0] * (10**10)\n",
        "import numpy as np\nx = np.ones((10**5, 10**5))\n",
    ]
    for out in run_many(codes, limits=small):
        assert (out.error_kind, out.limit_hit) == ("memory", "memory"), out.error


def test_printing_100_mb_is_cut_off_quickly() -> None:
    out = run_code("print('x' * 100_000_000)\n", limits=Limits(output_bytes=100_000))
    assert (out.error_kind, out.limit_hit) == ("output_limit", "output")
    assert len(out.stdout) == 100_000
    out = run_code("while True:\n    print('y' * 1000)\n", limits=Limits(output_bytes=100_000))
    assert out.error_kind == "output_limit"


def test_reading_secrets_and_the_workspace_db_is_refused(tmp_path: Path) -> None:
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_rsa").write_text("SECRET KEY")
    db = tmp_path / "workbench.db"
    Store(db).close()
    for path in (ssh / "id_rsa", db, Path.home() / ".ssh" / "id_rsa", Path("/etc/passwd")):
        out = run_code(f"print(open({str(path)!r}, 'rb').read())\n", limits=FAST)
        assert out.error_kind == "forbidden_io", path
        assert "SECRET" not in out.stdout
    listing = run_code(OS + f"print(os.listdir({str(ssh)!r}))\n", limits=FAST)
    assert listing.error_kind == "forbidden_io"
    connect = run_code(
        OS + "m = collections._sys.modules['importlib'].import_module('sqlite3')\n"
        f"m.connect({str(db)!r})\n",
        limits=FAST,
    )
    assert connect.error_kind == "forbidden_io"


def test_deleting_files_outside_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    db = tmp_path / "workbench.db"
    sqlite3.connect(db).close()
    for path in (victim, db):
        out = run_code(OS + f"os.remove({str(path)!r})\n", limits=FAST)
        assert out.error_kind == "forbidden_io"
        assert path.exists()


def test_a_caught_refusal_is_still_recorded() -> None:
    code = (
        "def solution():\n"
        "    try:\n"
        "        open('/etc/passwd').read()\n"
        "    except Exception:\n"
        "        pass\n"
        "    return 42\n"
    )
    out = solve(code)
    assert out.error_kind == "forbidden_io"
    assert out.answer == "42"  # the value is kept for inspection, but the run is not ok
    assert not out.ok
    assert out.violations


def test_environment_is_empty_and_directory_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    code = OS + "def solution():\n    return [sorted(os.environ), os.getcwd()]\n"
    out = solve(code)
    assert out.ok, out.error
    names, cwd = out.result
    assert "OPENAI_API_KEY" not in names and "HOME" not in names
    assert not Path(cwd).exists()


def test_missing_data_file_is_an_outcome_not_an_exception(tmp_path: Path) -> None:
    out = run_code("print(1)\n", files=[tmp_path / "missing.csv"])
    assert out.error_kind == "crash"
    assert out.error is not None and "missing.csv" in out.error


# -- value conversion, in-process (the child uses the same module) ------------------------


def test_answer_text_of_values() -> None:
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np
    import sympy as sp

    from workbench.core.sandbox.values import answer_text, describe, to_jsonable

    x = sp.symbols("x")
    cases = [
        (12, "12"),
        (12.0, "12"),
        (1 / 3, "0.333333333333"),
        (float("nan"), "nan"),
        (Fraction(6, 3), "2"),
        (Decimal("2.50"), "2.50"),
        (np.float64(2.5), "2.5"),
        (np.array([1, 2]), "1, 2"),
        (sp.Rational(1, 3), "\\frac{1}{3}"),
        (sp.Float(0.5), "0.5"),
        (x**2 + 1, "x^{2} + 1"),
        ({3, 1}, "1, 3"),
        (True, "True"),
    ]
    for value, text in cases:
        assert answer_text(value) == text, value
    assert to_jsonable(2**60) == str(2**60)
    assert to_jsonable({"a": (1, Fraction(1, 2))}) == {"a": [1, "1/2"]}
    assert describe(Fraction(1, 2))["type"] == "fractions.Fraction"
