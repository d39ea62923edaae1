"""Which display runs: explicit argument, then MILEPOST_DISPLAY, then auto-detection."""

from __future__ import annotations

import io

import milepost
from milepost.renderers import resolve_display


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_plain_off_a_terminal_and_native_on_one(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert resolve_display("auto", io.StringIO()) == "plain"
    assert resolve_display(None, FakeTty()) == "native"
    monkeypatch.setenv("TERM", "dumb")
    assert resolve_display("auto", FakeTty()) == "plain"


def test_environment_overrides_auto_but_not_an_explicit_argument(monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_DISPLAY", "JSON ")
    assert resolve_display("auto", FakeTty()) == "json"
    assert resolve_display("none", FakeTty()) == "none"


def test_native_off_a_terminal_falls_back_to_plain() -> None:
    assert resolve_display("native", io.StringIO()) == "plain"


def test_run_exposes_the_choice() -> None:
    run = milepost.Run("x", display="json", output=io.StringIO())
    assert run.display == "json"
