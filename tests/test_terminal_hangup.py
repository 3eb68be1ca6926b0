"""The TUI notices when its terminal hangs up (a real pty whose master side closes)."""

from __future__ import annotations

import io
import os
import pty

from workbench.tui.app import terminal_hung_up


def test_a_live_terminal_is_not_hung_up_and_a_closed_one_is() -> None:
    master, slave = pty.openpty()
    with open(slave, "rb", buffering=0, closefd=True) as stream:
        assert not terminal_hung_up(stream)
        os.close(master)  # the terminal window goes away
        assert terminal_hung_up(stream)


def test_pipes_and_missing_stdin_are_not_hangups() -> None:
    read_end, write_end = os.pipe()
    with open(read_end, "rb", closefd=True) as pipe:
        assert not terminal_hung_up(pipe)  # not a terminal at all
    os.close(write_end)
    assert not terminal_hung_up(io.StringIO())  # no file descriptor (headless tests)
