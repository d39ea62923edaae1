"""Item rows stored a batch at a time (history schema 5): a batch is one row of
`item_chunks`, and `items` reads as the table did, rows kept before the upgrade included. A
process pool's chunk is stored short (schema 6: its rows share their phase and start), and
reads back as whole rows everywhere."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import milepost
from milepost.persistence import SCHEMA_VERSION
from milepost.persistence.reads import History
from milepost.persistence.schema import _V1, _V2, _V3, _V4, _V5, _V6, _script
from procs_helpers import ident, mixed, slow


def _version_4_history(path: Path) -> None:
    """A history as milepost wrote it before schema 5: run 'r' kept items a and b of phase p
    row by row."""
    db = sqlite3.connect(str(path))
    for script in (_V1, _V2, _V3, _V4):
        _script(db, script)
    db.execute("PRAGMA user_version = 4")
    db.execute("INSERT INTO runs (id, name, status, started_at, done) VALUES ('r', 'old', 'cancelled', 0, 2)")
    db.execute(
        "INSERT INTO phases (run_id, path, name, kind, status, done) VALUES ('r', 'p', 'p', 'phase', 'cancelled', 2)"
    )
    db.executemany(
        "INSERT INTO items (run_id, phase, name, status, started_at, duration) VALUES ('r', 'p', ?, 'done', 1, 0.5)",
        [("a",), ("b",)],
    )
    db.commit()
    db.close()


def test_a_version_4_history_keeps_its_rows_and_new_rows_come_after_them(tmp_path) -> None:
    path = tmp_path / "runs.db"
    _version_4_history(path)
    with milepost.Run("old", display="none", history=path, resume="r") as run:
        ph = run.phase("p")
        assert list(ph.pending(["a", "b", "c", "d"])) == ["c", "d"], "the rows kept before the upgrade count"
        for name in ("c", "d"):
            with ph.item(name):
                pass
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    # The old rows stay where they were; the new ones are one batch, after them.
    assert db.execute("SELECT count(*) FROM item_rows").fetchone()[0] == 2
    assert db.execute("SELECT count(*), sum(n) FROM item_chunks").fetchone() == (1, 2)
    rows = db.execute("SELECT id, run_id, phase, name, status FROM items ORDER BY id").fetchall()
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("r", "p", "a", "done"),
        ("r", "p", "b", "done"),
        (run.id, "p", "c", "done"),
        (run.id, "p", "d", "done"),
    ]
    assert len({r[0] for r in rows}) == 4, "ids stay unique across both tables"
    # A row inserted into `items` (a tool's, an older writer's) lands after every kept row.
    db.execute("INSERT INTO items (run_id, phase, name, status) VALUES (?, 'p', 'e', 'done')", (run.id,))
    db.commit()
    newest = db.execute("SELECT id, name FROM items ORDER BY id DESC LIMIT 1").fetchone()
    assert newest[1] == "e" and newest[0] > rows[-1][0]
    db.close()
    # A run continuing that one counts every row of both tables.
    with milepost.Run("old", display="none", history=path, resume=run.id) as again:
        assert again.phase("p").done == 5, "a and b of run r, then c, d and e"


def test_thousands_of_rows_are_a_few_stored_rows_read_back_whole(tmp_path) -> None:
    path = tmp_path / "runs.db"
    with milepost.Run("many", display="none", history=path) as run:
        ph = run.phase("work", total=3000)
        for i in range(3000):
            with ph.item(f"doc-{i}") as item:
                if i == 1234:
                    item.metric("tokens", 7)
        try:
            with ph.item("bad"):
                raise ValueError("no good")
        except ValueError:
            pass
    db = sqlite3.connect(str(path))
    chunks, rows = db.execute("SELECT count(*), sum(n) FROM item_chunks WHERE run_id = ?", (run.id,)).fetchone()
    assert rows == 3001 and chunks < 50, f"{rows} rows in {chunks} stored rows"
    # A chunk holds at most a thousand rows (a reader of the newest rows unpacks a few), and
    # its counts are its rows'.
    for n, done, failed, skipped, text in db.execute("SELECT n, done, failed, skipped, rows FROM item_chunks"):
        statuses = [r[2] for r in json.loads(text)]
        assert n == len(statuses) <= 1000
        assert (done, failed, skipped) == tuple(statuses.count(s) for s in ("done", "failed", "skipped"))
    got = dict(db.execute("SELECT status, count(*) FROM items WHERE run_id = ? GROUP BY status", (run.id,)))
    assert got == {"done": 3000, "failed": 1}
    one = db.execute("SELECT metrics, duration >= 0, started_at > 0 FROM items WHERE name = 'doc-1234'").fetchone()
    assert (json.loads(one[0]), one[1:]) == ({"tokens": 7}, (1, 1))
    db.close()
    history = History.open(path)
    newest = history.recent_items(run.id, limit=3)
    assert [r["name"] for r in newest] == ["bad", "doc-2999", "doc-2998"]
    assert newest[0]["error"] == "ValueError: no good"
    after = history.recent_items(run.id, limit=100, after=newest[1]["id"])
    assert [r["name"] for r in after] == ["bad"], "only rows newer than `after`"
    detail = history.run(run.id)
    assert [f["name"] for f in detail["failures"]] == ["bad"]


_WRITER = """
import sys
import milepost
with milepost.Run(sys.argv[2], display="none", history=sys.argv[1]) as run:
    ph = run.phase("p")
    for i in range(int(sys.argv[3])):
        with ph.item(f"{sys.argv[2]}-{i}"):
            pass
print(run.id)
"""


def test_processes_writing_one_history_at_once_keep_every_row_once(tmp_path) -> None:
    path = tmp_path / "runs.db"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), f"job{k}", "30000"], stdout=subprocess.PIPE, text=True
        )
        for k in range(3)
    ]
    ids = []
    for job in jobs:
        out, _ = job.communicate(timeout=120)
        assert job.returncode == 0
        ids.append(out.strip())
    db = sqlite3.connect(str(path))
    try:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchone() == (90_000, 90_000)
        for k, run_id in enumerate(ids):
            names = {r[0] for r in db.execute("SELECT name FROM items WHERE run_id = ?", (run_id,))}
            assert names == {f"job{k}-{i}" for i in range(30_000)}
    finally:
        db.close()


def test_a_version_4_history_read_by_a_newer_milepost_without_upgrading_it(tmp_path) -> None:
    # An older milepost may still be writing it: reads open it read-only and leave it at 4.
    path = tmp_path / "runs.db"
    _version_4_history(path)
    db = sqlite3.connect(str(path))
    db.execute(
        "INSERT INTO items (run_id, phase, name, status, started_at, duration, error) "
        "VALUES ('r', 'p', 'c', 'failed', 2, 1, 'ValueError: c')"
    )
    db.commit()
    db.close()
    with History.open(path) as history:
        assert [r["name"] for r in history.recent_items("r", limit=2)] == ["c", "b"]
        detail = history.run("r")
        assert (detail["items"]["n"], detail["items"]["done"]) == (3, 2)
        assert [(f["name"], f["error"]) for f in detail["failures"]] == [("c", "ValueError: c")]
        assert history.resume_point("r").finished == {"p": {"a", "b"}}
    assert sqlite3.connect(str(path)).execute("PRAGMA user_version").fetchone()[0] == 4


def _version_5_history(path: Path) -> None:
    """A history as milepost wrote it at schema 5: run 'r' kept items a (done) and b (failed)
    of phase p in one chunk of whole rows."""
    db = sqlite3.connect(str(path))
    for script in (_V1, _V2, _V3, _V4, _V5):
        _script(db, script)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO runs (id, name, status, started_at, done) VALUES ('r', 'old', 'cancelled', 0, 1)")
    db.execute(
        "INSERT INTO phases (run_id, path, name, kind, status, done) VALUES ('r', 'p', 'p', 'phase', 'cancelled', 1)"
    )
    rows = [["p", "a", "done", 1.0, 0.5, None, '{"t":2}'], ["p", "b", "failed", 2.0, 0.25, "ValueError: b", None]]
    db.execute(
        "INSERT INTO item_chunks (id, run_id, rows, n, done, failed, skipped) VALUES (1, 'r', ?, 2, 1, 1, 0)",
        (json.dumps(rows),),
    )
    db.commit()
    db.close()


def test_a_pools_chunks_are_stored_short_and_every_reader_gets_whole_rows(tmp_path) -> None:
    path = tmp_path / "runs.db"
    with milepost.Run("short", display="none", history=path) as run:
        before = time.time()
        milepost.process_map(mixed, range(40), workers=2, chunksize=10, description="m", return_exceptions=True)
        after = time.time()
    db = sqlite3.connect(str(path))
    chunks = db.execute("SELECT rows, n, phase, t0 FROM item_chunks WHERE run_id = ?", (run.id,)).fetchall()
    # The pool's four chunks come back within a writer's round or two (one every half second)
    # and are joined, as they are timed from the same start (rows.rs tests the joining itself).
    assert sum(c[1] for c in chunks) == 40 and len(chunks) < 4, [c[1] for c in chunks]
    assert len({c[3] for c in chunks}) == 1, "one start for the whole pool: the pool's"
    for text, n, phase, t0 in chunks:
        assert phase == "m" and before <= t0 <= after, "the phase and start its rows share"
        rows = json.loads(text)
        assert len(rows) == n and all(r[1] >= 0 for r in rows), "no item starts before its pool"
        assert {len(r) for r in rows} <= {4, 5, 6} and all(type(r[0]) is int for r in rows), "no phase; numbers"
        assert all(isinstance(r[1], int) and isinstance(r[2], int) for r in rows), "µs and ns, whole numbers"
        skipped = [r for r in rows if len(r) == 4]  # no error, no metrics
        assert skipped and all(r[3] == "skipped" and len(json.dumps(r, separators=(",", ":"))) < 32 for r in skipped)
        done = [r for r in rows if r[3] is None]  # done, with metrics
        assert done and all(len(r) == 6 and json.loads(r[5]) == {"tokens": r[0]} for r in done)
    by_name = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT name, phase, status, started_at, duration, error, metrics FROM items WHERE run_id = ?", (run.id,)
        )
    }
    db.close()
    assert len(by_name) == 40
    for x in range(40):
        phase, status, started, duration, error, metrics = by_name[str(x)]
        assert phase == "m" and before - 1e-6 <= started <= after and 0 <= duration < after - before
        if x % 10 == 3:
            assert (status, error, metrics) == ("failed", f"ValueError: bad {x}", None)
        elif x % 10 == 5:
            assert (status, error, metrics) == ("skipped", None, None)
        else:
            assert (status, error, json.loads(metrics)) == ("done", None, {"tokens": x})
    # The Python readers unpack the chunks as the view does.
    with History.open(path) as history:
        newest = history.recent_items(run.id, limit=100)
        assert len(newest) == 40
        for r in newest:
            assert (r["phase"], r["status"], r["error"]) == by_name[r["name"]][:2] + (by_name[r["name"]][4],)
            assert r["started_at"] == pytest.approx(by_name[r["name"]][2], abs=1e-6)
        failures = history.run(run.id)["failures"]
        assert sorted(f["name"] for f in failures) == sorted(str(x) for x in range(40) if x % 10 == 3)
        finished = history.resume_point(run.id).finished
        assert finished == {"m": {str(x) for x in range(40) if x % 10 != 3}}
    # A resumed run runs again only what failed.
    with milepost.Run("short", display="none", history=path, resume=run.id) as again:
        assert list(again.phase("m").pending([str(x) for x in range(40)])) == [str(x) for x in range(3, 40, 10)]


def test_a_pools_plain_rows_are_three_numbers_that_read_back_as_their_items_times(tmp_path) -> None:
    path = tmp_path / "runs.db"
    names = [-5, 0, 7, 10**14, 123_456_789, *range(100, 140)]
    with milepost.Run("plain", display="none", history=path) as run:
        before = time.time()
        assert milepost.process_map(ident, names, workers=2, chunksize=8, description="fast") == names
        middle = time.time()
        assert milepost.process_map(slow, range(4), workers=2, chunksize=2, description="slow") == list(range(4))
        after = time.time()
    db = sqlite3.connect(str(path))
    texts = db.execute("SELECT rows, phase FROM item_chunks WHERE run_id = ?", (run.id,)).fetchall()
    rows = {phase: [r for text, p in texts if p == phase for r in json.loads(text)] for phase in ("fast", "slow")}
    # A done item with nothing else, named by an integer: `[name, µs from the pool's start, ns]`.
    assert sorted(r[0] for r in rows["fast"]) == sorted(names) and sorted(r[0] for r in rows["slow"]) == [0, 1, 2, 3]
    assert all(len(r) == 3 and all(type(v) is int for v in r) for r in rows["fast"] + rows["slow"])
    kept = {
        (phase, name): (status, started, duration)
        for phase, name, status, started, duration in db.execute(
            "SELECT phase, name, status, started_at, duration FROM items WHERE run_id = ?", (run.id,)
        )
    }
    db.close()
    assert {name for phase, name in kept if phase == "fast"} == {str(x) for x in names}, "names read back as text"
    for (phase, _), (status, started, duration) in kept.items():
        begun, ended = (before, middle) if phase == "fast" else (middle, after)
        assert status == "done" and begun - 1e-6 <= started and started + duration <= ended + 1e-6
        assert 0.05 - 1e-6 <= duration if phase == "slow" else 0 <= duration, "each item's own time"


def test_the_newest_rows_of_a_pools_joined_chunks_are_the_views_newest(tmp_path) -> None:
    """A reader of the newest rows (the monitor) takes them from the tail of a pool's joined
    chunks, with the ids and values the `items` view gives them, newer than `after`."""
    path = tmp_path / "runs.db"
    with milepost.Run("joined", display="none", history=path) as run:
        milepost.process_map(mixed, range(3000), workers=2, chunksize=250, description="m", return_exceptions=True)
    db = sqlite3.connect(str(path))
    sizes = [n for (n,) in db.execute("SELECT n FROM item_chunks WHERE run_id = ? ORDER BY id", (run.id,))]
    assert sum(sizes) == 3000 and max(sizes) > 250, f"joined: {sizes}"
    view = db.execute(
        "SELECT id, name, status, started_at, duration, error FROM items WHERE run_id = ? ORDER BY id DESC", (run.id,)
    ).fetchall()
    db.close()
    keys = ("id", "name", "status", "started_at", "duration", "error")
    with History.open(path) as history:
        for limit, after in [(1, 0), (7, 0), (300, 0), (3000, 0), (4000, 0), (10, view[5][0]), (5, view[-2][0])]:
            got = [tuple(r[k] for k in keys) for r in history.recent_items(run.id, limit=limit, after=after)]
            want = [r for r in view if r[0] > after][:limit]
            assert [g[:3] + g[5:] for g in got] == [w[:3] + w[5:] for w in want], (limit, after)
            assert all(g[3] == pytest.approx(w[3], abs=1e-6) and g[4] == pytest.approx(w[4]) for g, w in zip(got, want))


def test_a_version_5_history_upgrades_to_short_chunks_and_keeps_its_whole_ones(tmp_path) -> None:
    path = tmp_path / "runs.db"
    _version_5_history(path)
    with History.open(path) as history:  # read-only: read as it is, left at 5
        assert [(r["name"], r["error"]) for r in history.recent_items("r")] == [("b", "ValueError: b"), ("a", None)]
        assert [f["name"] for f in history.run("r")["failures"]] == ["b"]
    assert sqlite3.connect(str(path)).execute("PRAGMA user_version").fetchone()[0] == 5
    with milepost.Run("old", display="none", history=path, resume="r") as run:
        milepost.process_map(mixed, [1, 2], workers=1, chunksize=2, description="p")
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    rows = db.execute("SELECT id, run_id, phase, name, status, started_at, metrics FROM items ORDER BY id").fetchall()
    db.close()
    assert [r[1:5] for r in rows] == [
        ("r", "p", "a", "done"),
        ("r", "p", "b", "failed"),
        (run.id, "p", "1", "done"),
        (run.id, "p", "2", "done"),
    ]
    assert rows[0][5:] == (1.0, '{"t":2}') and rows[2][5] > 1e9, "whole rows as they were; short ones whole again"
    assert len({r[0] for r in rows}) == 4, "ids stay unique across both kinds of chunks"
    with History.open(path) as history:
        assert [r["name"] for r in history.recent_items(run.id)] == ["2", "1", "b", "a"], "the run continued r"


def test_names_that_look_like_numbers_read_back_as_the_text_they_were(tmp_path) -> None:
    # A number's own text is stored as the number and read back as that text; any other text
    # of digits ("007", "-0") stays text, so that every name reads back as it was given.
    path = tmp_path / "runs.db"
    names = ["7", "007", "-0", "-12", "1e5", "123456789012345678", "x"]
    with milepost.Run("digits", display="none", history=path) as run:
        milepost.process_map(
            mixed, range(len(names)), workers=1, chunksize=10, item_name=lambda x, i: names[i], return_exceptions=True
        )
    db = sqlite3.connect(str(path))
    got = db.execute("SELECT name, typeof(name) FROM items WHERE run_id = ? ORDER BY id", (run.id,)).fetchall()
    (text,) = db.execute("SELECT rows FROM item_chunks WHERE run_id = ?", (run.id,)).fetchone()
    db.close()
    assert got == [(n, "text") for n in names]
    assert [type(r[0]).__name__ for r in json.loads(text)] == ["int", "str", "str", "int", "str", "str", "str"]
    with History.open(path) as history:
        assert [r["name"] for r in history.recent_items(run.id)] == names[::-1]


def test_show_gives_a_phases_rate_in_its_unit_and_a_version_6_history_in_items(tmp_path) -> None:
    """Found trying it as a user: `milepost show` gave every phase's rate in it/s, whatever its
    unit. Schema 7 keeps a phase's unit and divisor; a history of version 6, read where it is
    (a read never upgrades it), still reads, its rates in it/s."""
    path = tmp_path / "runs.db"
    with milepost.Run("units", display="none", history=path) as run:
        with run.phase("load", total=50, unit="doc") as ph:
            ph.advance(50)
        with run.phase("fetch", total=4096, unit="B") as raw:
            raw.advance(4096)

    def show(*extra: str) -> str:
        cmd = [sys.executable, "-m", "milepost", "show", "units", "--db", str(path), *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    rates = {line.split()[0]: line.split()[-1] for line in show().splitlines() if line.startswith(("load ", "fetch "))}
    assert rates["load"].endswith("doc/s") and rates["fetch"].endswith("B/s"), rates
    csv_rows = list(csv.DictReader(io.StringIO(show("--csv"))))
    assert {r["name"]: r["unit"] for r in csv_rows if r["record"] == "phase"} == {"load": "doc", "fetch": "B"}
    old = tmp_path / "v6.db"
    db = sqlite3.connect(str(old))
    for script in (_V1, _V2, _V3, _V4, _V5, _V6):
        _script(db, script)
    db.execute("PRAGMA user_version = 6")
    db.execute("INSERT INTO runs (id, name, status, started_at, done) VALUES ('r', 'units', 'completed', 0, 5)")
    db.execute(
        "INSERT INTO phases (run_id, path, name, kind, status, done, elapsed, rate) "
        "VALUES ('r', 'p', 'p', 'phase', 'completed', 5, 1.0, 5.0)"
    )
    db.commit()
    db.close()
    path = old
    assert [line.split()[-1] for line in show().splitlines() if line.startswith("p ")] == ["it/s"]
    assert sqlite3.connect(str(old)).execute("PRAGMA user_version").fetchone()[0] == 6
