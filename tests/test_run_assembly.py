"""What a run is made of, and in which order: an argument that fails leaves no trace in the
history, the history is written before a display that stalls, and an injected clock runs
nothing in the background."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading

import pytest

import milepost
from milepost import dispatch


def _statuses(db_path) -> list:
    if not os.path.exists(db_path):
        return []
    db = sqlite3.connect(str(db_path))
    try:
        return [r[0] for r in db.execute("SELECT status FROM runs")]
    finally:
        db.close()


def test_a_bad_dashboard_argument_leaves_no_running_row(tmp_path) -> None:
    pytest.importorskip("starlette")
    db = tmp_path / "runs.db"
    with pytest.raises(TypeError, match="no_such_option"):
        milepost.Run("bad-dash", display="none", history=db, dashboard={"port": 0, "no_such_option": 1})
    assert _statuses(db) == []


def test_a_bad_output_leaves_no_running_row(tmp_path) -> None:
    db = tmp_path / "runs.db"
    with pytest.raises(OSError):
        milepost.Run("bad-out", display="plain", history=db, output=tmp_path / "no-such-dir" / "out.txt")
    assert _statuses(db) == []


class _Stalls:
    """An output stream that stops accepting writes once told to (a stalled terminal)."""

    def __init__(self) -> None:
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.wrote = threading.Event()

    def write(self, text: str) -> int:
        self.wrote.set()
        if self.stalled.is_set():
            self.released.wait(30)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_the_history_gets_the_end_before_a_stalled_display(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dispatch, "OWN_CLOSE_TIMEOUT", 1.0)
    db = tmp_path / "runs.db"
    out = _Stalls()
    try:
        with milepost.Run("stall", display="plain", output=out, history=db) as run:
            # The display's first line (the run's start) gets through: the stall is at the end,
            # never the start line's delivery, whenever the dispatcher thread got its turn.
            assert out.wrote.wait(10)
            with run.phase("p", total=3) as ph:
                ph.advance(3)
            out.stalled.set()  # the display's final line will never get through
        # The end waited for its own observers at most OWN_CLOSE_TIMEOUT: the history had
        # its turn before the display's.
        assert _statuses(db) == ["completed"]
    finally:
        out.released.set()


_MANUAL_NATIVE = r"""
import os, sys, threading, milepost

def ticker_threads():
    names = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            names.append(f.read().strip())
    return names.count("milepost-ticker")

t = [1000.0]
with milepost.Run("manual", display="native", clock=lambda: t[0], history=False) as run:
    assert run.display == "native", run.display
    run.phase("p").advance()
    background = [th.name for th in threading.enumerate() if th.name.startswith("milepost")]
    stdout_redirected = type(sys.stdout).__name__
    print("TICKERS", ticker_threads(), "THREADS", background, "STDOUT", stdout_redirected)
    run.log("still shown")
    run.poll()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads thread names from /proc")
def test_an_injected_clock_with_the_native_display_runs_nothing_in_the_background(pty_run) -> None:
    result = pty_run(_MANUAL_NATIVE, timeout=30)
    assert result.status == 0, result.text
    assert "TICKERS 0 THREADS [] STDOUT TextIOWrapper" in result.text
    assert "still shown" in result.text
