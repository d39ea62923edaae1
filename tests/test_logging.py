"""Logging while bars are drawn: a handler made before the run (`basicConfig`) writes above the
bars, `logging_redirect()` moves handlers by hand, and `capture_logging` turns the application's
records into the run's log lines. On a real terminal (pyte) where it matters."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap

import pytest

import milepost
from milepost.output import RunLogHandler

BASIC_CONFIG_JOB = textwrap.dedent(
    """
    import logging, threading, time, milepost
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")  # before the bars
    log = logging.getLogger("app")
    with milepost.Run("logging", refresh_hz=20, history=False) as run:
        ph = run.phase("map", total=60)
        for i in range(60):
            ph.advance()
            if i % 10 == 0:
                log.info(f"LOGGED-{i}")
            time.sleep(0.02)
    log.info("AFTER-THE-RUN")
    """
)


def test_a_handler_made_before_the_run_writes_above_the_bars(pty_run) -> None:
    res = pty_run(BASIC_CONFIG_JOB, cols=100, rows=30)
    assert res.status == 0, res.raw[-2000:]
    for i in range(0, 60, 10):
        # Each line whole, on a row of its own: no piece of a frame before or after it.
        assert f"INFO app LOGGED-{i}" in res.lines, res.text
    assert "INFO app AFTER-THE-RUN" in res.lines, "the handler has its own stream back after the run"
    assert re.search(r"map\s+\[█+\] 100% 60/60 · completed", res.text), res.text


def test_logging_redirect_swaps_console_handlers_and_puts_them_back() -> None:
    logger = logging.getLogger("redirect-test")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(message)s!"))
    files = logging.FileHandler("/dev/null")
    logger.addHandler(console)
    logger.addHandler(files)
    try:
        with milepost.logging_redirect([logger]):
            above = [h for h in logger.handlers if isinstance(h, milepost.LoggingHandler)]
            assert len(above) == 1 and console not in logger.handlers and files in logger.handlers
            assert above[0].level == logging.WARNING and above[0].formatter is console.formatter
        assert console in logger.handlers and files in logger.handlers
        assert not any(isinstance(h, milepost.LoggingHandler) for h in logger.handlers)
    finally:
        logger.removeHandler(console)
        logger.removeHandler(files)
        files.close()


def test_capture_logging_makes_records_the_runs_log_lines(event_log) -> None:
    app = logging.getLogger("app.capture")
    app.setLevel(logging.DEBUG)  # the application's own configuration decides what is made
    with milepost.Run("captured", display="none", capture_logging="info", observers=[event_log]) as run:
        app.debug("too quiet")
        app.info("fetched 3 pages")
        app.error("upstream down")
        logging.getLogger("milepost.anything").warning("milepost's own: not fed back")
    app.info("after the run: not the run's")
    lines = [(e.level, e.source, e.message) for e in event_log.events if isinstance(e, milepost.LogLine)]
    assert ("info", "app.capture", "fetched 3 pages") in lines
    assert ("error", "app.capture", "upstream down") in lines
    assert not any("too quiet" in m or "milepost's own" in m or "after the run" in m for _, _, m in lines)
    shown = subprocess.run(
        [sys.executable, "-m", "milepost", "show", run.id, "--json"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(shown.stdout)["status"] == "completed"
    assert not any(isinstance(h, RunLogHandler) for h in logging.getLogger().handlers), "taken off at the end"


@pytest.mark.parametrize("bad", ["loud", -1, 2.5, "NOPE"])
def test_a_bad_capture_level_is_named(bad) -> None:
    with pytest.raises(milepost.InvalidValueError, match="capture_logging must be"):
        milepost.Run("bad-capture", display="none", capture_logging=bad)
