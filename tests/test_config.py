"""Settings without code: MILEPOST_* variables and `[tool.milepost]` in the nearest
pyproject.toml, one precedence (argument > environment > file > default), bad values said once
and ignored."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import milepost
from milepost import config


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory to work in, with a pyproject.toml to write; no MILEPOST_* set."""
    for name, (variable, _, _) in config.SETTINGS.items():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(tmp_path)
    config._warned.clear()

    def write(table: str) -> Path:
        path = tmp_path / "pyproject.toml"
        path.write_text(f'[project]\nname = "job"\n\n[tool.milepost]\n{table}\n')
        return path

    return write


def test_the_file_then_the_environment_then_the_argument(project, monkeypatch, capsys) -> None:
    project('display = "plain"\ninterval = 0.25')
    with milepost.Run("from-file", history=False) as run:
        run.phase("p", total=1).advance()
    assert "[milepost" in capsys.readouterr().err, "plain lines, as the file says"
    monkeypatch.setenv("MILEPOST_DISPLAY", "json")
    with milepost.Run("from-env", history=False) as run:
        run.phase("p", total=1).advance()
    err = capsys.readouterr().err
    assert err.lstrip().startswith("{"), "the environment comes before the file"
    with milepost.Run("from-argument", history=False, display="none") as run:
        run.phase("p", total=1).advance()
    assert capsys.readouterr().err == "", "the argument comes before both"


def test_a_subdirectory_finds_the_projects_file(project, monkeypatch, tmp_path) -> None:
    project('display = "none"')
    deeper = tmp_path / "src" / "jobs"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert config.setting("display") == "none"


def test_bad_values_are_said_once_and_the_next_source_is_used(project, monkeypatch, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="milepost")
    project('display = "fancy"\ninterval = -1\ndashboard_port = 70000\ncolour = "red"')
    monkeypatch.setenv("MILEPOST_INTERVAL", "soon")
    assert config.setting("display") == "auto"
    assert config.setting("interval") is None
    assert config.setting("dashboard_port") == 8080
    config.setting("display")  # a second time: not said again
    said = [r.getMessage() for r in caplog.records]
    assert sum("display = 'fancy' is not a display" in m for m in said) == 1, said
    assert any("MILEPOST_INTERVAL='soon'" in m for m in said), said
    assert any("interval = -1 is not a positive number of seconds" in m for m in said), said
    assert any("dashboard_port = 70000 is not a port number" in m for m in said), said
    assert any("unknown keys colour" in m for m in said), said


def test_a_file_that_does_not_parse_is_said_and_ignored(project, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="milepost")
    (tmp_path / "pyproject.toml").write_text("[tool.milepost\ndisplay = 'plain'\n")
    assert config.setting("display") == "auto"
    assert any("does not parse" in r.getMessage() for r in caplog.records)
    (tmp_path / "pyproject.toml").write_text("[tool]\nmilepost = 3\n")
    assert config.setting("display") == "auto"
    assert any("is not a table" in r.getMessage() for r in caplog.records)


def test_history_off_or_elsewhere(project, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MILEPOST_HISTORY", "off")
    with milepost.Run("not-kept", display="none") as run:
        pass
    assert run.history_path is None
    elsewhere = tmp_path / "kept" / "runs.db"
    monkeypatch.setenv("MILEPOST_HISTORY", str(elsewhere))
    with milepost.Run("kept-elsewhere", display="none") as run:
        pass
    assert run.history_path == elsewhere and elsewhere.exists()
    listed = subprocess.run(
        [sys.executable, "-m", "milepost", "history", "--json"], capture_output=True, text=True, timeout=60
    )
    assert [r["name"] for r in json.loads(listed.stdout)] == ["kept-elsewhere"], "the CLI reads the same one"
    monkeypatch.delenv("MILEPOST_HISTORY")
    project("history = false")
    with milepost.Run("off-by-file", display="none") as run:
        pass
    assert run.history_path is None


def test_the_dashboard_binds_where_the_settings_say(project, monkeypatch) -> None:
    from milepost import dashboard

    project("dashboard_port = 0")
    dashboard.stop()
    try:
        with milepost.Run("dash-config", display="none", history=False, dashboard=True):
            server = dashboard.current()
            assert server is not None and server.port != 8080 and server.host == "127.0.0.1"
    finally:
        dashboard.stop()


def test_colour_never_from_the_file_or_no_color(project, monkeypatch) -> None:
    from milepost.monitor.looks import no_color

    assert not no_color()
    project('color = "never"')
    assert no_color()
    project('color = "auto"')
    monkeypatch.setenv("NO_COLOR", "1")
    assert no_color()
    monkeypatch.setenv("MILEPOST_COLOR", "always")
    assert not no_color(), "MILEPOST_COLOR said otherwise, and comes first"


def test_history_on_means_the_default_place_and_a_number_is_no_path(project, monkeypatch, tmp_path, caplog) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MILEPOST_HOME", str(home))
    for table in ("history = true", "history = 123"):
        project(table)
        with caplog.at_level(logging.WARNING, logger="milepost"):
            with milepost.Run("kept", display="none") as run:
                pass
        assert run.history_path == home / "runs.db", table
    assert any("history" in r.getMessage() and "123" in r.getMessage() for r in caplog.records)
    for value in ("1", "yes", "true", "on"):
        monkeypatch.setenv("MILEPOST_HISTORY", value)
        with milepost.Run("kept", display="none") as run:
            pass
        assert run.history_path == home / "runs.db", value
    assert not [p.name for p in tmp_path.iterdir() if p.name in ("True", "123", "1", "yes", "true", "on")]
