"""Shared fixtures: a fake clock, and a pseudo-terminal whose bytes a terminal emulator reads."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import pyte
import pytest

import milepost

# Tests press Ctrl-C on jobs they start (real processes, SIGINT). A shell that starts the test
# run in the background, without job control (`bash .ci/run &`, nohup), hands it SIGINT ignored,
# and every process it starts would inherit that, so Ctrl-C would do nothing to them. Python's
# own handler here makes the processes the tests start begin with Ctrl-C's default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class FakeClock:
    """Seconds that move only when a test says so (rich's MockClock idea)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class PtyResult:
    raw: bytes
    status: int
    screen: pyte.Screen

    @property
    def lines(self) -> List[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(line for line in self.lines if line)


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def run_in_pty(
    code: str,
    cols: int = 100,
    rows: int = 30,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 60.0,
    on_output: Optional[Callable[[bytes, int, int], None]] = None,
    resize_to: Optional[tuple[int, int]] = None,
    resize_after: bytes = b"",
) -> PtyResult:
    """Runs `python -c code` on a new pseudo-terminal and feeds everything it writes to a pyte
    screen of the same size. With `resize_to`, the terminal is resized (and SIGWINCH sent)
    once the output contains `resize_after`."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        child_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MILEPOST_DISPLAY")}
        child_env.update({"TERM": "xterm-256color", "COLUMNS": "", "LINES": ""}, **(env or {}))
        child_env = {k: v for k, v in child_env.items() if v != ""}
        os.execve(sys.executable, [sys.executable, "-c", code], child_env)
    _set_size(fd, rows, cols)
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    raw = b""
    resized = resize_to is None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
        stream.feed(chunk)
        if not resized and resize_after in raw:
            assert resize_to is not None
            screen.resize(resize_to[0], resize_to[1])
            _set_size(fd, *resize_to)
            os.kill(pid, signal.SIGWINCH)
            resized = True
    else:  # pragma: no cover - only on a hang
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return PtyResult(raw, os.waitstatus_to_exitcode(status), screen)


@pytest.fixture
def pty_run() -> Callable[..., PtyResult]:
    return run_in_pty


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their display explicitly; the developer's environment must not leak in."""
    for var in ("MILEPOST_DISPLAY", "MILEPOST_INTERVAL", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _history_home(tmp_path_factory, monkeypatch) -> None:
    """Every test keeps its run history in its own directory, never in the checkout, and
    publishes its live runs in its own directory, never in the user's."""
    monkeypatch.setenv("MILEPOST_HOME", str(tmp_path_factory.mktemp("milepost-home")))
    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path_factory.mktemp("milepost-live") / "live"))


class EventLog(milepost.BaseObserver):
    """Keeps every event it is given, in order (a test reads `.events`)."""

    def __init__(self) -> None:
        self.events: list = []

    def on_event(self, event) -> None:
        self.events.append(event)


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


_SUMMARY_LINES = pytest.StashKey[list]()


@pytest.fixture
def summary_lines(request: pytest.FixtureRequest) -> list:
    """Lines a test adds to the end of the session's report (the documentation examples' counts)."""
    return request.config.stash.setdefault(_SUMMARY_LINES, [])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    for line in config.stash.get(_SUMMARY_LINES, []):
        terminalreporter.write_line(line)
