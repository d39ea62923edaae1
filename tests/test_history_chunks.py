"""Item rows stored a batch at a time (history schema 5): a batch is one row of
`item_chunks`, and `items` reads as the table did, rows kept before the upgrade included."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import milepost
from milepost.persistence import SCHEMA_VERSION
from milepost.persistence.reads import History
from milepost.persistence.schema import _V1, _V2, _V3, _V4, _script


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
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
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
