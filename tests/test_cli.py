"""`milepost demo` and the CLI, run as a user would: a real process, with and without a TTY."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import milepost

DEMO = [sys.executable, "-m", "milepost", "demo", "--items", "400", "--item-ms", "2", "--workers", "4"]


def test_demo_without_a_tty_prints_plain_lines_and_exits_0(tmp_path) -> None:
    snap = tmp_path / "p.json"
    proc = subprocess.run([*DEMO, "--snapshot-file", str(snap)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "\r" not in err
    assert re.search(r"\[milepost \d\d:\d\d:\d\d\] demo · completed", err), err[-2000:]
    assert "  map: 400/400 · completed" in err
    assert "summary: demo · completed" in err
    final = json.loads(snap.read_text())
    root = final["root"]
    assert root["state"] == "completed" and root["processed"] == 20 + 400 + 16
    assert root["metrics"]["tokens_in"] > 0 and root["metrics"]["cost_usd"] > 0
    assert root["retried"] > 0 and root["failed"] > 0, "the demo shows failures and retries"


def test_demo_json_display_is_machine_readable() -> None:
    proc = subprocess.run([*DEMO, "--display", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    objs = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert objs[-1]["type"] in ("snapshot", "event")
    assert any(o.get("event") == "run_finished" for o in objs)


def test_demo_under_a_terminal_draws_bars(pty_run) -> None:
    code = "import sys, milepost.cli; sys.exit(milepost.cli.main(%r))" % (DEMO[3:],)
    res = pty_run(code, cols=110, rows=30, timeout=120)
    assert res.status == 0, res.raw[-2000:]
    text = res.text
    assert re.search(r"✓ demo · completed .* 436/436", text), text
    assert re.search(r"map\s+\[█+\] 100% 400/400 · completed", text), text
    assert "[milepost" not in text, "no plain lines on a terminal"


def test_bad_arguments_are_named() -> None:
    proc = subprocess.run([*DEMO[:4], "--items", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "argument --items: must be a whole number from 1 to 10000000, got '0'" in proc.stderr
    proc = subprocess.run([*DEMO[:4], "--fail-rate", "2"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--fail-rate must be between 0 and 1, got 2.0" in proc.stderr


def test_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "milepost", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"milepost {milepost.__version__}"


def test_demo_json_lines_go_where_output_says(tmp_path) -> None:
    # `--display json > run.jsonl` needs the lines on stdout: `--output stdout` puts them there.
    redirected = tmp_path / "run.jsonl"
    with redirected.open("w") as stdout:
        proc = subprocess.run(
            [*DEMO, "--items", "60", "--display", "json", "--output", "stdout"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in redirected.read_text().splitlines()]
    assert any(o.get("event") == "run_finished" for o in objs)
    assert not any(line.startswith("{") for line in proc.stderr.splitlines())
    # A path: appended to, nothing of it on the standard streams.
    path = tmp_path / "to-file.jsonl"
    proc = subprocess.run(
        [*DEMO, "--items", "60", "--display", "json", "--output", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(json.loads(line).get("event") == "run_finished" for line in path.read_text().splitlines())
    assert "{" not in proc.stdout + proc.stderr


def test_demo_whose_run_fails_exits_1(tmp_path) -> None:
    # A worker process killed mid-run breaks the pool: the run ends failed, and so must the
    # command's status (a script running the demo must not read success).
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milepost",
            "demo",
            "--items",
            "2000",
            "--workers",
            "2",
            "--item-ms",
            "20",
            "--display",
            "plain",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list = []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        assert workers, "the demo started no worker processes"
        time.sleep(1.0)
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "failed" in err


@pytest.mark.parametrize("kind", ["text", "empty sqlite", "no bytes", "another runs table"])
def test_a_db_that_is_not_a_history_is_said_in_one_line(tmp_path, kind) -> None:
    """Found trying it as a user: `--db` at a file that is not a milepost history ended in a
    traceback (`file is not a database`, `no such table: runs`)."""
    db = tmp_path / "other.db"
    if kind == "text":
        db.write_text("hello\n")
    elif kind in ("empty sqlite", "another runs table"):
        with contextlib.closing(sqlite3.connect(str(db))) as c:
            c.execute("CREATE TABLE runs (x)" if kind == "another runs table" else "CREATE TABLE x (a)")
    else:
        db.touch()
    for command in (["history"], ["show", "x"], ["stats", "x"]):
        proc = subprocess.run(
            [sys.executable, "-m", "milepost", *command, "--db", str(db)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().startswith(f"milepost {command[0]}: {db} is not a milepost run history")
