"""Which display runs: explicit argument, then MILEPOST_DISPLAY, then auto-detection."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest

import milepost
from milepost import InvalidValueError
from milepost.renderers import native_target, resolve_display


class FakeTty(io.StringIO):
    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self.fd = fd

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd


def test_auto_is_plain_off_a_terminal_and_native_on_one(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert resolve_display("auto", io.StringIO()) == "plain"
    assert resolve_display(None, FakeTty()) == "native"
    monkeypatch.setenv("TERM", "dumb")
    assert resolve_display("auto", FakeTty()) == "plain"


def test_native_draws_on_stderr_or_stdout_only(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert native_target(FakeTty(2)) == "stderr"
    assert native_target(FakeTty(1)) == "stdout"
    # A terminal on another descriptor cannot be drawn on: plain lines go there instead.
    assert native_target(FakeTty(7)) is None
    assert resolve_display("auto", FakeTty(7)) == "plain"


def test_environment_overrides_auto_but_not_an_explicit_argument(monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_DISPLAY", "JSON ")
    assert resolve_display("auto", FakeTty()) == "json"
    assert resolve_display("none", FakeTty()) == "none"


def test_native_off_a_terminal_falls_back_to_plain() -> None:
    assert resolve_display("native", io.StringIO()) == "plain"


def test_run_exposes_the_choice() -> None:
    run = milepost.Run("x", display="json", output=io.StringIO())
    assert run.display == "json"


def test_a_bad_display_in_the_environment_warns_once_and_falls_back(monkeypatch, caplog) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("MILEPOST_DISPLAY", "sparkly-env-value")
    with caplog.at_level(logging.WARNING, logger="milepost"):
        assert resolve_display(None, io.StringIO()) == "plain"
        assert resolve_display("auto", FakeTty()) == "native"
        run = milepost.Run("x", output=io.StringIO(), history=False)
    assert run.display == "plain"
    warned = [r.getMessage() for r in caplog.records if r.name == "milepost"]
    assert len(warned) == 1, warned
    assert "MILEPOST_DISPLAY" in warned[0] and "'sparkly-env-value'" in warned[0] and "auto" in warned[0]


def test_a_bad_display_argument_is_still_an_error(monkeypatch) -> None:
    with pytest.raises(InvalidValueError, match="'fancy'"):
        milepost.Run("x", display="fancy")


def test_a_bad_interval_in_the_environment_warns_and_uses_the_default(monkeypatch, caplog) -> None:
    monkeypatch.setenv("MILEPOST_INTERVAL", "soon-ish")
    with caplog.at_level(logging.WARNING, logger="milepost"):
        plain = milepost.Run("x", display="plain", output=io.StringIO(), history=False)
        lines = milepost.Run("y", display="json", output=io.StringIO(), history=False)
    assert [o.interval for o in plain.observers] == [10.0]
    assert [o.interval for o in lines.observers] == [1.0]
    warned = [r.getMessage() for r in caplog.records if r.name == "milepost"]
    assert len(warned) == 1 and "MILEPOST_INTERVAL" in warned[0] and "'soon-ish'" in warned[0], warned


def test_a_job_with_a_bad_display_in_its_environment_runs(tmp_path) -> None:
    code = "import milepost\nfor _ in milepost.track(range(3), desc='loop'): pass\nprint('JOB-DONE')"
    env = {**os.environ, "MILEPOST_DISPLAY": "fancy", "MILEPOST_INTERVAL": "-1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "JOB-DONE\n"
    assert proc.stderr.count("MILEPOST_DISPLAY") == 1 and "'fancy'" in proc.stderr
    assert proc.stderr.count("MILEPOST_INTERVAL") == 1 and "'-1'" in proc.stderr
    assert "loop · completed" in proc.stderr, "plain lines, as auto picks off a terminal"
