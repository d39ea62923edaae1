"""Bad input gets a clear error naming the value, and nothing already counted is lost."""

from __future__ import annotations

import io
import json
import logging
import math

import pytest

import milepost
from milepost import InvalidValueError


@pytest.fixture
def run(clock):
    r = milepost.Run("bad", display="none", clock=clock).start()
    yield r
    r.finish()


def test_negative_advance_names_the_value_and_keeps_counts(run) -> None:
    ph = run.phase("p", total=10)
    ph.advance(4)
    with pytest.raises(InvalidValueError, match=r"advance\(n\) must be >= 0, got -3"):
        ph.advance(-3)
    with pytest.raises(ValueError):  # InvalidValueError is a ValueError too
        ph.skip(-1)
    assert run.snapshot().find("p")["done"] == 4


@pytest.mark.parametrize("bad", [-1, -(10**30)])
def test_negative_totals(run, bad) -> None:
    with pytest.raises(InvalidValueError, match=f"total must be >= 0, got {bad}"):
        run.phase("p", total=bad)
    ph = run.phase("q", total=3)
    with pytest.raises(InvalidValueError, match="total must be >= 0"):
        ph.set_total(bad)
    assert run.snapshot().find("q")["total"] == 3


@pytest.mark.parametrize("bad", [1.5, "10", True])
def test_non_integer_totals_are_type_errors(run, bad) -> None:
    with pytest.raises(TypeError, match="total must be an int"):
        run.phase("p", total=bad)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_metrics_are_refused_and_sums_kept(run, value) -> None:
    ph = run.phase("p")
    ph.metric("cost_usd", 0.25)
    with pytest.raises(InvalidValueError, match=r"metric \"cost_usd\" must be a finite number, got"):
        ph.metric("cost_usd", value)
    assert run.snapshot().find("p")["metrics"] == {"cost_usd": 0.25}


def test_metric_needs_a_number_and_a_name(run) -> None:
    ph = run.phase("p")
    with pytest.raises(TypeError, match="metric \"tokens\" needs a number, got 'many'"):
        ph.metric("tokens", "many")
    with pytest.raises(InvalidValueError, match="metric name must not be empty"):
        ph.metric("", 1)
    with pytest.raises(TypeError, match="metric name must be a str or path, got int: 7"):
        ph.metric(7, 1)


def test_too_many_metric_names(run) -> None:
    ph = run.phase("p")
    for i in range(milepost._milepost.MAX_METRICS):
        ph.metric(f"m{i}", 1)
    with pytest.raises(InvalidValueError, match='cannot add metric "extra"'):
        ph.metric("extra", 1)


def test_non_string_names(run) -> None:
    with pytest.raises(TypeError, match=r"name must be a str or path, got int: 42"):
        run.phase(42)
    ph = run.phase("p")
    with pytest.raises(TypeError, match=r"item name must be a str or path, got dict"):
        ph.fail({"a": 1}, "err")
    with pytest.raises(TypeError, match="item name"):
        with ph.item(None):
            pass
    with pytest.raises(InvalidValueError, match="name must not be empty"):
        run.phase("")


def test_paths_and_undecodable_names_are_accepted(run) -> None:
    import pathlib

    ph = run.phase("p")
    with ph.item(pathlib.Path("/data/a.json")):
        pass
    undecodable = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    with ph.item(undecodable):
        pass
    names = [r["name"] for r in run.snapshot().data["recent"]]
    assert names[1] == "/data/a.json"
    assert names[0].startswith("caf") and names[0].endswith(".txt")


def test_huge_names_are_clipped_not_refused(run) -> None:
    ph = run.phase("x" * 10_000)
    ph.fail("y" * 100_000, "z" * 1_000_000)
    snap = run.snapshot()
    node = snap.root["children"][0]
    assert len(node["name"]) <= 257
    fail = snap.data["failures"][0]
    assert len(fail["name"]) <= 257 and len(fail["error"]) <= 2001
    assert max(len(line) for line in snap.frame(width=80)) < 200


ESCAPES = "evil\x1b[2J\x1b[H\x1b]0;pwned\x07\x9b31m\rname"


def test_escape_sequences_are_sanitized_in_every_text_output(clock) -> None:
    out = io.StringIO()
    with milepost.Run("esc", display="plain", output=out, clock=clock) as run:
        ph = run.phase(ESCAPES, total=2)
        ph.fail(ESCAPES, ESCAPES)
        run.log(ESCAPES, source=ESCAPES)
        run.poll()
        frame = "\n".join(run.snapshot().frame())
    text = out.getvalue()
    for shown in (text, frame):
        assert "\x1b[2J" not in shown and "\x1b]0" not in shown and "\x9b" not in shown and "\r" not in shown
        assert "evil name" in shown


def test_bad_display_and_interval_names_the_value(monkeypatch, caplog) -> None:
    with pytest.raises(InvalidValueError, match="'fancy'"):
        milepost.Run("x", display="fancy")
    # Environment variables are the machine's, not the job's: a bad one warns (naming it and
    # its value) and falls back instead of stopping the job (issue 9, item 33).
    monkeypatch.setenv("MILEPOST_DISPLAY", "sparkles-bad-input")
    monkeypatch.setenv("MILEPOST_INTERVAL", "soon-bad-input")
    with caplog.at_level(logging.WARNING, logger="milepost"):
        with milepost.Run("x", history=False) as run:
            pass
    assert run.display in ("plain", "native")
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "MILEPOST_DISPLAY" in messages and "sparkles-bad-input" in messages
    assert "MILEPOST_INTERVAL" in messages and "soon-bad-input" in messages


def test_json_stream_stays_valid_with_hostile_names(clock) -> None:
    out = io.StringIO()
    with milepost.Run("j\x00\ud800", display="json", output=out, clock=clock) as run:
        run.phase("p\x1b[31m").fail('a"b\\c\n', "\x00")
    for line in out.getvalue().splitlines():
        json.loads(line)


@pytest.mark.parametrize(
    "bad", [{"display": "fancy"}, {"refresh_hz": 0}, {"max_lanes": -1}, {"stall_after": -2}, {"interval": "soon"}]
)
def test_a_run_refused_for_bad_input_leaves_no_trace(bad) -> None:
    """Bad input is refused before anything is made: no history row, no writer thread."""
    import threading

    from milepost.persistence import default_path

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(InvalidValueError):
        milepost.Run("refused", **bad)
    assert not default_path().exists()
    assert {t.name for t in threading.enumerate()} <= before


def test_track_of_something_not_iterable_is_said_before_any_line(capsys) -> None:
    with pytest.raises(TypeError, match="track\\(\\) needs an iterable .*got int 5"):
        milepost.track(5)
    assert capsys.readouterr().err == ""  # no bar drawn and ended "cancelled" first
