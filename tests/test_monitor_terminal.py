"""`milepost monitor` as a command: bad requests are one line and status 1 before any screen is
taken, and in a real terminal (tmux) it shows a run and quits leaving the job running."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

import monitor_fixtures as fixture
from milepost.live.place import live_dir
from milepost.live.reader import find_run
from monitor_pilot import start_job, stop_job


def _monitor(*args: str) -> subprocess.CompletedProcess:
    # No terminal and no input: a monitor that started by mistake could not hang the test.
    return subprocess.run(
        [sys.executable, "-m", "milepost", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def _refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("milepost monitor: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_no_runs_at_all() -> None:
    _refused(_monitor(), "no runs on this machine yet")
    live_dir().mkdir(mode=0o700, parents=True)
    _refused(_monitor(), "no runs on this machine yet")


def test_an_unknown_run(tmp_path) -> None:
    _refused(_monitor("no-such-run"), "no live runs on this machine yet")
    fixture.publish(live_dir(), tmp_path / "runs.db", "completed")
    _refused(_monitor("no-such-run"), "no run 'no-such-run' on this machine")


def test_a_run_published_by_a_newer_milepost(tmp_path) -> None:
    run_id = fixture.publish(live_dir(), tmp_path / "runs.db", "completed")
    path = live_dir() / run_id / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))
    _refused(_monitor(run_id), "published by a newer milepost")


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user's needs root")
def test_another_users_run(tmp_path) -> None:
    run_id = fixture.publish(live_dir(), tmp_path / "runs.db", "completed")
    os.chown(live_dir() / run_id, 65534, 65534)
    _refused(_monitor(run_id), "belongs to another user")


def _pane(socket: str) -> str:
    result = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p"], capture_output=True, text=True, timeout=10)
    return result.stdout


def _wait_pane(socket: str, predicate, seconds: float = 15.0) -> str:
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = _pane(socket)
        if predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s; the pane shows:\n{text}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_tmux_it_shows_the_run_and_q_leaves_the_job_running() -> None:
    proc, run_id = start_job("steady", "240", "0.05")
    socket = f"milepost-monitor-test-{os.getpid()}"
    env = {k: os.environ[k] for k in ("MILEPOST_LIVE_DIR", "MILEPOST_HOME", "PYTHONPATH") if k in os.environ}
    command = " ".join(
        ["env", *(shlex.quote(f"{k}={v}") for k, v in env.items()), "TERM=xterm-256color"]
        + [shlex.quote(sys.executable), "-m", "milepost", "monitor", run_id]
    )
    try:
        # The shell stays after the monitor so that its exit status can be read in the pane.
        start = ["tmux", "-L", socket, "-f", os.devnull, "new-session", "-d", "-x", "120", "-y", "40"]
        subprocess.run([*start, f"{command}; echo monitor-exit-$?; sleep 60"], check=True, timeout=10)
        text = _wait_pane(socket, lambda t: "steady" in t and "/240 doc" in t and "ETA" in t)
        assert "● running" in text and "test-model" in text
        subprocess.run(["tmux", "-L", socket, "send-keys", "q"], check=True, timeout=10)
        _wait_pane(socket, lambda t: "monitor-exit-0" in t)
        assert proc.poll() is None and find_run(run_id).read().state == "running", "the job goes on"
        assert "ended completed" in stop_job(proc)
        assert find_run(run_id).read().state == "completed"
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
        if proc.poll() is None:
            proc.kill()
            stop_job(proc)


def test_history_commands_and_the_monitor_refuse_a_newer_database(tmp_path) -> None:
    import sqlite3
    import subprocess
    import sys

    import milepost
    from milepost.live.reader import find_run
    from milepost.monitor.run_screen import recent_items

    db = tmp_path / "runs.db"
    with milepost.Run("newer", display="none", history=db) as run:
        run.phase("p").advance()
    connection = sqlite3.connect(str(db))
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    shown = subprocess.run(
        [sys.executable, "-m", "milepost", "history", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 1 and "written by a newer milepost" in shown.stderr, shown.stderr
    items, note = recent_items(find_run(run.id))
    assert items == [] and note is not None and "newer milepost" in note
