"""`python -m milepost` and `milepost pipe` in real shell pipelines: standard input reaches
standard output unchanged, counted, with the bar on standard error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

PIPE = [sys.executable, "-m", "milepost"]


def _shell(command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PY": sys.executable}
    return subprocess.run(["bash", "-c", command], capture_output=True, env=env, timeout=120)


def test_a_million_lines_pass_unchanged_and_are_counted() -> None:
    done = _shell('seq 1000000 | "$PY" -m milepost --total 1000000 | wc -l')
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [b"1000000"]
    err = done.stderr.decode()
    assert "pipe · completed" in err and "1,000,000/1,000,000" in err, err


def test_bytes_of_any_encoding_pass_byte_for_byte() -> None:
    data = bytes(range(256)) * 1000 + b"\xff\xfe no newline at the end"
    done = subprocess.run([*PIPE, "pipe", "--bytes", "--total", str(len(data))], input=data, capture_output=True)
    assert done.returncode == 0 and done.stdout == data
    assert f"{len(data):,}/{len(data):,}" in done.stderr.decode()


def test_nul_delimited_records_and_no_command_reading_a_pipe() -> None:
    done = subprocess.run([*PIPE, "--null"], input=b"a\0b\0c\0", capture_output=True)
    assert done.stdout == b"a\0b\0c\0" and "3 records" in done.stderr.decode()
    plain = subprocess.run(PIPE, input=b"x\ny\n", capture_output=True)  # no options at all
    assert plain.returncode == 0 and plain.stdout == b"x\ny\n" and "2 lines" in plain.stderr.decode()


def test_a_reader_that_goes_away_ends_it_quietly() -> None:
    done = _shell('seq 10000000 | "$PY" -m milepost | head -3; echo "status ${PIPESTATUS[1]}" >&2')
    assert done.stdout == b"1\n2\n3\n"
    err = done.stderr.decode()
    assert "status 141" in err and "Traceback" not in err, err


def test_ctrl_c_ends_the_bar_cancelled() -> None:
    proc = subprocess.Popen(
        [*PIPE, "--total", "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"one\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"one\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"cancelled" in err and b"Traceback" not in err, err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--total", "-5"], "--total must be >= 0, got -5"),
        (["--bytes", "--null"], "--bytes and --null count different things"),
        (["--total", "many"], "invalid int value: 'many'"),
    ],
)
def test_bad_arguments_are_named(args: list, said: str) -> None:
    done = subprocess.run([*PIPE, *args], input=b"", capture_output=True)
    assert done.returncode == 2 and said in done.stderr.decode(), done.stderr
