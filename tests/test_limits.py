"""One integer range for counts, totals and integer metrics (0..2**53 - 1), agreed by the
core, the snapshot, SQLite and JSON; and a history writer that cannot die without a word."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading

import pytest

import milepost
from milepost.persistence import default_path
from milepost.persistence.store import Store

MAX = 2**53 - 1


def test_the_range_is_the_extensions_own() -> None:
    assert milepost._milepost.MAX_COUNT == MAX


@pytest.mark.parametrize(
    "call",
    [
        lambda ph: ph.advance(2**63),
        lambda ph: ph.advance(MAX + 1),
        lambda ph: ph.skip(2**64),
        lambda ph: milepost.track(range(3), run=ph.run).update(10**30),
        lambda ph: ph.set_total(2**63),
        lambda ph: ph.add_total(MAX + 1),
        lambda ph: ph.metric("bytes", 2**63),
        lambda ph: ph.metric("bytes", 10**400),
    ],
    ids=["advance-2**63", "advance-max+1", "skip", "tracker-update", "set_total", "add_total", "metric", "metric-huge"],
)
def test_values_past_the_range_are_refused_at_the_call_naming_them(clock, call) -> None:
    """Issue 9, item 4: a total of 2**63 was taken, then killed the history writer."""
    with milepost.Run("r", display="none", clock=clock) as run:
        ph = run.phase("p", total=10)
        ph.advance(3)
        with pytest.raises(milepost.InvalidValueError, match=r"9007199254740991"):
            call(ph)
        assert (ph.done, ph.total) == (3, 10), "nothing already recorded is lost"


def test_additions_that_would_pass_the_range_are_refused(clock) -> None:
    with milepost.Run("r", display="none", clock=clock) as run:
        ph = run.phase("p", total=MAX)
        ph.advance(MAX - 1)
        with pytest.raises(milepost.InvalidValueError, match=r'"p" is at 9007199254740990; adding 2'):
            ph.advance(2)
        ph.advance(1)
        with pytest.raises(milepost.InvalidValueError, match="add_total"):
            ph.add_total(1)
        assert ph.done == MAX
    snap = run.snapshot()
    assert snap.find("p")["done"] == MAX and snap.root["fraction"] == 1.0


def test_the_largest_values_reach_sqlite_and_json_exactly() -> None:
    with milepost.Run("big", display="none") as run:
        a = run.phase("a", total=MAX)
        a.advance(MAX)
        a.metric("bytes", MAX)
        b = run.phase("b", total=MAX)
        b.advance(MAX)
    data = json.loads(run.snapshot().json())
    assert data["root"]["children"][0]["done"] == MAX
    assert data["root"]["done"] == MAX, "a sum up the tree stops at the largest count"
    db = sqlite3.connect(str(default_path()))
    status, done, total = db.execute("SELECT status, done, total FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert (status, done, total) == ("completed", MAX, MAX), "the writer wrote the run's end"
    assert dict(db.execute("SELECT path, done FROM phases WHERE run_id = ?", (run.id,))) == {"a": MAX, "b": MAX}


def test_a_writer_that_fails_turns_history_off_and_nobody_waits_for_it(tmp_path, monkeypatch, caplog) -> None:
    """Any failure in the writer (not only a SQLite error) turns history off with the
    documented warning; with the writer gone, a queue past its bound never makes the job wait."""
    calls = {"n": 0}
    real = Store._write_batch

    ours = tmp_path / "runs.db"

    def fail_once(self):  # fault injection: our writer meets an error SQLite never raises
        if self.path == ours:  # not the writer of a store another test left running
            calls["n"] += 1
            if calls["n"] == 2:
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(self)

    monkeypatch.setattr(Store, "_write_batch", fail_once)
    done = threading.Event()

    def job() -> None:
        with milepost.Run("writer", display="none", history=ours) as run:
            with run.phase("p") as ph:
                for i in range(250_000):  # past the store's bound of 200,000 queued rows
                    with ph.item(f"i{i}"):
                        pass
        done.set()

    with caplog.at_level(logging.WARNING, logger="milepost"):
        t = threading.Thread(target=job, daemon=True)
        t.start()
        assert done.wait(120), "the job waited for a writer that is gone"
    messages = [r.getMessage() for r in caplog.records]
    assert any("run history is off" in m and "OverflowError" in m for m in messages), messages
    assert any("item rows of this run are not in the history" in m for m in messages), messages


def test_a_history_that_cannot_open_says_at_the_end_how_many_rows_it_misses(tmp_path, caplog) -> None:
    """Found by a newcomer: with a history that could not open, the end said nothing."""
    newer = tmp_path / "newer.db"
    db = sqlite3.connect(str(newer))
    db.execute("PRAGMA user_version = 99")
    db.close()
    with caplog.at_level(logging.WARNING, logger="milepost"):
        with milepost.Run("no-history", display="none", history=newer) as run:
            with run.phase("p") as ph:
                for i in range(7):
                    with ph.item(str(i)):
                        pass
                ph.fail("x", "boom")
    messages = [r.getMessage() for r in caplog.records]
    assert any("run history is off" in m for m in messages), messages
    assert any("8 item rows of this run are not in the history" in m for m in messages), messages
    assert run.history_path is None
