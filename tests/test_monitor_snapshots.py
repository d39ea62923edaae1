"""The monitor's screens as SVG snapshots (pytest-textual-snapshot), from a published run with
fixed contents (`monitor_fixtures`): times, ids and the clock are fixed, so the pictures are
too. `pytest --snapshot-update` writes them again after a deliberate change."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import monitor_fixtures as fixture
from milepost.live.place import live_dir
from milepost.live.reader import find_run
from milepost.monitor.app import MonitorApp


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch):
    """Wall times (the start, log lines) in UTC, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _app(tmp_path: Path, ended=None) -> MonitorApp:
    fixture.publish(live_dir(), tmp_path / "runs.db", ended)
    return MonitorApp(find_run(fixture.RUN_ID), clock=lambda: fixture.CLOCK)


def test_a_running_run(snap_compare, tmp_path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(120, 40))


def test_a_run_that_ended_failed(snap_compare, tmp_path) -> None:
    assert snap_compare(_app(tmp_path, ended="failed"), terminal_size=(120, 40))


def test_no_color(snap_compare, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(_app(tmp_path), terminal_size=(120, 40))


def test_a_narrow_terminal(snap_compare, tmp_path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(60, 30))


def test_the_cancel_question(snap_compare, tmp_path) -> None:
    assert snap_compare(_app(tmp_path), press=["c"], terminal_size=(100, 30))


def test_the_log_view_at_warning_and_worse(snap_compare, tmp_path) -> None:
    assert snap_compare(_app(tmp_path), press=["l", "v", "v"], terminal_size=(100, 20))
