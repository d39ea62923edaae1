"""The CLI as a user runs it, in a subprocess: `milepost show` names phases as they were named,
`demo --display none` prints nothing, and no command ends in a traceback when its output pipe
closes early (`milepost show run | head -3`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import List

import pytest

import milepost
from milepost.persistence import History

CLI = [sys.executable, "-m", "milepost"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def _awkward_names_run() -> str:
    """A run whose phase and step names need escaping in a history path, and repeat."""
    with milepost.Run("paths", display="none") as run:
        with run.phase("x/y", total=1) as ph:
            ph.fail("item-1", "bad slash")
        with run.phase("50%#1", total=1) as ph:
            ph.advance()
        with run.phase("load", total=1) as ph:
            ph.advance()
        with run.phase("load", total=2) as ph:
            with ph.step("inner/part") as step:
                step.fail("item-2", "bad step")
            ph.advance()
    return run.id


def test_show_names_phases_as_named_and_keeps_levels_and_repeats_apart() -> None:
    run_id = _awkward_names_run()
    shown = _cli("show", run_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    phases = [line.split("  ")[0] for line in out.splitlines()[4:9]]
    assert phases == ["x/y", "50%#1", "load", "load (2nd)", "load (2nd) › inner/part"], out
    for escaped in ("%2F", "%25", "%23", "load#2"):
        assert escaped not in out, out
    assert "  x/y: item-1: bad slash" in out, out
    assert "  load (2nd) › inner/part: item-2: bad step" in out, out
    # JSON keeps the stored path, and gives the names too.
    data = json.loads(_cli("show", run_id, "--json").stdout)
    got = [(p["path"], p["name"], p["display"]) for p in data["phases"]]
    assert got == [
        ("x%2Fy", "x/y", "x/y"),
        ("50%25%231", "50%#1", "50%#1"),
        ("load", "load", "load"),
        ("load#2", "load", "load (2nd)"),
        ("load#2/inner%2Fpart", "inner/part", "load (2nd) › inner/part"),
    ]
    # Each failure once (its event and its item row are one failure), with where it happened.
    failures = [(f["name"], f["phase_display"]) for f in data["failures"]]
    assert sorted(failures) == [("item-1", "x/y"), ("item-2", "load (2nd) › inner/part")]


def test_demo_with_display_none_prints_nothing() -> None:
    proc = subprocess.run(
        [*CLI, "demo", "--items", "40", "--item-ms", "1", "--workers", "2", "--display", "none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)


def _closed_early(args: List[str], unbuffered: bool) -> subprocess.CompletedProcess:
    """`milepost ARGS | head -c 1`: the reader takes a byte and closes the pipe."""
    env = dict(os.environ, PYTHONUNBUFFERED="1" if unbuffered else "")
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout:
        proc.stdout.read(1)
    with proc.stderr:
        err = proc.stderr.read().decode("utf-8", "replace")
    status = proc.wait(120)
    return subprocess.CompletedProcess(args, status, "", err)


def test_every_command_exits_quietly_when_its_output_pipe_closes(tmp_path) -> None:
    run_id = _awkward_names_run()
    # Enough output that it cannot all fit in the pipe before the reader leaves.
    with milepost.Run("many", display="none") as run:
        with run.phase("map") as ph:
            for i in range(3000):
                ph.fail(f"item-{i}", "x" * 200)
    snap = tmp_path / "run.jsonl"
    with milepost.Run("replayed", display="json", output=str(snap)) as r:
        for i in range(2000):
            r.log(f"line {i} " + "y" * 100)
    cases = [
        ["show", run.id, "--failures", "all"],
        ["show", run.id, "--failures", "all", "--json"],
        ["show", run_id],
        ["history", "--limit", "1000"],
        ["history", "--json"],
        ["stats", "many", "--json"],
        ["replay", str(snap), "--no-wait"],
        ["demo", "--items", "200", "--item-ms", "1", "--workers", "2", "--display", "json", "--output", "stdout"],
        ["--help"],
    ]
    for args, unbuffered in [(args, False) for args in cases] + [(args, True) for args in cases[:3]]:
        res = _closed_early(args, unbuffered)
        assert "Traceback" not in res.stderr and "BrokenPipeError" not in res.stderr, (args, res.stderr)
        assert res.stderr == "", (args, unbuffered, res.stderr)
        assert res.returncode in (0, 141, -signal.SIGPIPE), (args, unbuffered, res.returncode)


def test_replay_skips_lines_that_are_not_utf8_or_nest_too_deep(tmp_path) -> None:
    """Found trying it as a user: one Latin-1 line, or one line of 5,000 nested arrays, in a
    saved stream ended `milepost replay` in a traceback; such lines are skipped and counted."""
    good = tmp_path / "good.jsonl"
    with milepost.Run("replayed", display="json", output=str(good)) as r:
        r.phase("p", total=3).advance(3)
    lines = good.read_bytes().splitlines(keepends=True)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join([*lines[:2], b"caf\xe9 latin-1 line\n", b"[" * 5000 + b"]" * 5000 + b"\n", *lines[2:]]))
    res = subprocess.run(
        [sys.executable, "-m", "milepost", "replay", str(mixed), "--no-wait"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "skipped 2 lines that are not milepost records (the first at " in res.stderr
    assert "p" in res.stdout and "3/3" in res.stdout


@pytest.mark.parametrize("value", ["0", "-5", "99999999999999999999999"])
def test_a_limit_that_is_no_count_of_runs_is_refused_by_name(value) -> None:
    """Found trying it as a user: `--limit -5` listed every run, `--limit 0` said there were
    none, and a huge one ended in a traceback."""
    for command in (["history"], ["stats", "x"]):
        res = subprocess.run(
            [sys.executable, "-m", "milepost", *command, "--limit", value], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert f"argument --limit: must be a whole number from 1 to 1000000, got {value!r}" in res.stderr, res.stderr


def _one_line_error(proc: subprocess.CompletedProcess, code: int, *named: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # argparse's usage lines come first
    for text in named:
        assert text in last, proc.stderr


@pytest.mark.parametrize("port", ["99999", "-5", "http"])
def test_serve_refuses_a_port_out_of_range_naming_it(port: str) -> None:
    # It printed a traceback ending in OverflowError: bind(): port must be 0-65535.
    _one_line_error(_cli("serve", "--port", port), 2, "argument --port", repr(port))


@pytest.mark.parametrize(("option", "value"), [("--items", "99999999999999999999"), ("--workers", "100000")])
def test_demo_refuses_more_items_or_workers_than_a_demo_can_hold(option: str, value: str) -> None:
    # --items 10**20 grew to 1.5 GB in 15 s without a line; --workers 100000 kept spawning.
    _one_line_error(_cli("demo", option, value), 2, option, value)


def test_demo_output_to_a_directory_is_one_line_naming_it(tmp_path) -> None:
    _one_line_error(_cli("demo", "--items", "5", "--output", str(tmp_path)), 2, str(tmp_path))


@pytest.mark.parametrize("command", [["runs"], ["cancel", "x"], ["monitor", "x"]])
def test_a_live_directory_that_is_a_file_is_one_line_naming_it(command: List[str], tmp_path) -> None:
    # `runs`, `cancel` and `monitor` ended in NotADirectoryError tracebacks.
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {**os.environ, "MILEPOST_LIVE_DIR": str(not_a_dir)}
    proc = subprocess.run([*CLI, *command], capture_output=True, text=True, timeout=60, env=env)
    _one_line_error(proc, 1, str(not_a_dir), "not a directory")


def test_history_of_a_name_with_no_runs_says_so_and_stats_counts_one_run() -> None:
    # "no runs yet" while the history held runs of other names; "1 runs".
    with milepost.Run("polish-one", display="none"):
        pass
    assert _cli("history", "--name", "polish-nosuch").stdout.strip() == "no runs named 'polish-nosuch'"
    assert "polish-one: 1 run\n" in _cli("stats", "polish-one").stdout


@pytest.mark.parametrize("speed", ["0", "-1", "nan", "inf", "fast"])
def test_replay_refuses_a_speed_that_is_not_a_positive_number(speed: str, tmp_path) -> None:
    stream = tmp_path / "run.jsonl"
    stream.write_text("")
    _one_line_error(_cli("replay", str(stream), "--speed", speed), 2, "argument --speed", repr(speed))


def test_the_history_api_refuses_a_bad_level_or_limit_naming_it() -> None:
    with milepost.Run("polish-api", display="none") as run:
        run.log("kept", level="error")
    with History.open() as history:
        with pytest.raises(milepost.InvalidValueError, match="'eror'"):
            history.logs(run.id, level="eror")
        for limit in (-1, 0, True, "5"):
            with pytest.raises(milepost.InvalidValueError, match="limit"):
                history.runs("polish-api", limit=limit)
        assert [r["message"] for r in history.logs(run.id, level="ERROR") if r["message"] == "kept"] == ["kept"]


def test_a_history_path_that_is_a_directory_is_said_so(tmp_path) -> None:
    # "is not a milepost run history (disk I/O error)", and "unable to open database file".
    _one_line_error(_cli("history", "--db", str(tmp_path)), 1, str(tmp_path), "is a directory")
    code = f"import milepost\nwith milepost.Run('d', display='none', history={str(tmp_path)!r}): pass"
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert job.returncode == 0 and "a directory, not a run history" in job.stderr, job.stderr
