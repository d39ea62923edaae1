"""Which display runs: explicit argument, then MILEPOST_DISPLAY, then auto-detection."""

from __future__ import annotations

import io

import milepost
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
