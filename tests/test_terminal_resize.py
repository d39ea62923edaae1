"""The native display in a real terminal multiplexer that re-wraps lines when it is resized
(tmux, like VTE, kitty or iTerm2): what is left in the scrollback after the window narrows or
widens while the bars are drawn."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def _needs_tmux() -> None:
    # Failed, not skipped: a test that cannot run is not a test that passed.
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed: apt-get install tmux (`bash .ci/run` installs it)")


# Printed lines long enough to wrap at 60 columns, failures (clipped to one row each), a phase
# line long enough to wrap at 80, and a gate file: the job waits at its middle until the test has
# resized the window.
JOB = textwrap.dedent(
    """
    import os, sys, time, milepost
    gate = sys.argv[1]
    with milepost.Run("resize-job", refresh_hz=20) as run:
        ph = run.phase("a-phase-with-a-rather-long-name-to-fill-the-line", total=1000, unit="document")
        ph.metric("cost_usd", 1.25)
        for i in range(3):
            ph.fail(f"failure-line-{i}-" + "x" * 60, "ValueError: long enough to wrap at sixty columns")
            print(f"printed-line-{i}-" + "x" * 60 + ": long enough to wrap at sixty columns")
        for i in range(20):
            ph.advance(5); time.sleep(0.05)
        print("PRINTED-BEFORE-RESIZE")
        deadline = time.monotonic() + 20
        while not os.path.exists(gate) and time.monotonic() < deadline:
            ph.advance(1); time.sleep(0.05)
        for i in range(20):
            ph.advance(5); time.sleep(0.05)
    print("JOB-ENDED")
    """
)


class Tmux:
    """One tmux server of the test's own (a unique socket), killed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"milepost-test-{uuid.uuid4().hex[:10]}"
        self.tmp = tmp

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return proc.stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self("capture-pane", "-p", "-J", "-S", "-", "-t", "t"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.scrollback()}")

    def scrollback(self) -> list[str]:
        """Every line of the pane, its history included, with wrapped lines joined."""
        text = self("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
        return [line.rstrip() for line in text.splitlines() if line.strip()]

    def kill(self) -> None:
        path = subprocess.run(
            ["tmux", "-L", self.socket, "display-message", "-p", "#{socket_path}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        if path:
            Path(path).unlink(missing_ok=True)  # tmux leaves its socket file behind


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(tmp_path)
    try:
        yield server
    finally:
        server.kill()


def _resize_during_job(tmux: Tmux, start_cols: int, end_cols: int) -> list[str]:
    job = tmux.tmp / "job.py"
    job.write_text(JOB)
    gate = tmux.tmp / "gate"
    tmux("new-session", "-d", "-s", "t", "-x", str(start_cols), "-y", "30", f"{sys.executable} {job} {gate}; sleep 60")
    tmux("set-option", "-t", "t", "window-size", "manual")
    tmux.wait_for("PRINTED-BEFORE-RESIZE")
    time.sleep(0.3)  # a few frames at the first width
    tmux("resize-window", "-t", "t", "-x", str(end_cols), "-y", "30")
    time.sleep(0.5)  # a few frames at the new width
    gate.touch()
    tmux.wait_for("JOB-ENDED")
    return tmux.scrollback()


def _check(lines: list[str]) -> None:
    text = "\n".join(lines)
    # One frame is left: the final one. A fragment of an earlier frame would repeat the name.
    assert text.count("resize-job") == 1, text
    assert any(line.startswith("✓ resize-job ›") for line in lines), text
    # Everything printed above the bars is still there, once, and whole (failures as one row
    # each, clipped to the width at the time).
    for i in range(3):
        printed = f"printed-line-{i}-{'x' * 60}: long enough to wrap at sixty columns"
        assert lines.count(printed) == 1, text
        failure = [line for line in lines if line.startswith(f"✗ failure-line-{i}-{'x' * 20}")]
        assert len(failure) == 1 and failure[0].endswith("…"), text
    assert lines.count("PRINTED-BEFORE-RESIZE") == 1, text
    assert lines[-1] == "JOB-ENDED", text


def test_narrowing_the_terminal_leaves_no_frame_fragments(tmux: Tmux) -> None:
    _check(_resize_during_job(tmux, 120, 80))


def test_widening_the_terminal_keeps_the_lines_printed_above(tmux: Tmux) -> None:
    _check(_resize_during_job(tmux, 60, 120))
