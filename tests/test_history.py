"""Run history: real SQLite files, resume, a database from the future, a full disk, the CLI."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

import milepost
from milepost.persistence import SCHEMA_VERSION, default_path


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(str(default_path()))
    db.row_factory = sqlite3.Row
    return db


def _job(name="job", fail_at=None, stop_at=None, items=20, **kw):
    with milepost.Run(name, display="none", **kw) as run:
        with run.phase("map", total=items, unit="doc") as ph:
            for i in ph.pending(f"doc-{i}" for i in range(items)):
                try:
                    with ph.item(i) as item:
                        item.metric("tokens", 3)
                        if i == stop_at:
                            raise KeyboardInterrupt
                        if i == fail_at:
                            raise ValueError("broken record")
                except ValueError:
                    pass  # counted failed by item(); the job goes on
        run.log("done", source="test")
    return run


def test_a_new_history_has_16_kib_pages_and_an_older_one_keeps_its_own(tmp_path) -> None:
    _job(history=tmp_path / "new.db")
    assert sqlite3.connect(str(tmp_path / "new.db")).execute("PRAGMA page_size").fetchone()[0] == 16384
    old = tmp_path / "old.db"
    db = sqlite3.connect(str(old))
    db.execute("PRAGMA journal_mode=WAL")  # made by an earlier milepost: SQLite's 4 KiB pages
    db.close()
    run = _job(history=old)
    db = sqlite3.connect(str(old))
    assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert db.execute("SELECT count(*) FROM items WHERE run_id = ?", (run.id,)).fetchone()[0] == 20
    db.close()


def test_a_run_is_kept_with_its_phases_items_and_events() -> None:
    run = _job(fail_at="doc-4")
    db = _db()
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    r = db.execute("SELECT * FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert (r["name"], r["status"], r["done"], r["failed"], r["total"]) == ("job", "completed", 19, 1, 20)
    assert json.loads(r["metrics"]) == {"tokens": 60}
    p = db.execute("SELECT * FROM phases WHERE run_id = ?", (run.id,)).fetchone()
    assert (p["path"], p["status"], p["done"], p["failed"]) == ("map", "completed", 19, 1)
    items = db.execute(
        "SELECT name, status, duration, error, metrics FROM items WHERE run_id = ? ORDER BY id", (run.id,)
    ).fetchall()
    assert len(items) == 20 and items[0]["status"] == "done" and items[0]["duration"] >= 0
    assert json.loads(items[0]["metrics"]) == {"tokens": 3}
    failed = [i for i in items if i["status"] == "failed"]
    assert [(f["name"], f["error"]) for f in failed] == [("doc-4", "ValueError: broken record")]
    kinds = [e["kind"] for e in db.execute("SELECT kind FROM events WHERE run_id = ? ORDER BY id", (run.id,))]
    assert kinds == ["item_failed", "log", "run_finished"]


def test_history_can_be_off_and_bare_loops_keep_none() -> None:
    with milepost.Run("quiet", display="none", history=False):
        pass
    for _ in milepost.track(range(3), display="none"):
        pass
    assert not default_path().exists()


def test_resume_continues_the_latest_unfinished_run() -> None:
    with pytest.raises(KeyboardInterrupt):
        _job(stop_at="doc-12")
    first = _db().execute("SELECT id, status, done FROM runs").fetchone()
    assert (first["status"], first["done"]) == ("cancelled", 12)
    seen = []
    with milepost.Run("job", display="none", resume=True) as run:
        with run.phase("map", total=20) as ph:
            assert run.snapshot().find("map")["done"] == 12, "counts start from what was done"
            for i in ph.pending(f"doc-{i}" for i in range(20)):
                with ph.item(i):
                    seen.append(i)
    assert run.id == first["id"]
    assert seen == [f"doc-{i}" for i in range(12, 20)]
    r = _db().execute("SELECT status, done, resumed FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert (r["status"], r["done"], r["resumed"]) == ("completed", 20, 1)
    with milepost.Run("job", display="none", resume=True) as fresh:
        assert fresh.id != run.id, "a completed run is not resumed: a new one starts"


def test_resume_by_id_and_the_errors_that_name_what_is_wrong() -> None:
    with pytest.raises(KeyboardInterrupt):
        _job(name="a", stop_at="doc-3")
    rid = _db().execute("SELECT id FROM runs").fetchone()["id"]
    with milepost.Run("renamed", display="none", resume=rid) as run:
        assert run.id == rid
    with pytest.raises(milepost.MilepostError, match="no run with id 'nope'"):
        milepost.Run("x", display="none", resume="nope")
    with pytest.raises(milepost.MilepostError, match="resume needs the run history"):
        milepost.Run("x", display="none", history=False, resume=True)


def test_pending_uses_a_key() -> None:
    with pytest.raises(KeyboardInterrupt):
        with milepost.Run("k", display="none") as run:
            ph = run.phase("p")
            for rec in ({"id": i} for i in range(5)):
                with ph.item(f"rec-{rec['id']}"):
                    if rec["id"] == 3:
                        raise KeyboardInterrupt
    with milepost.Run("k", display="none", resume=True) as run:
        left = list(run.phase("p").pending([{"id": i} for i in range(5)], key=lambda r: f"rec-{r['id']}"))
    assert left == [{"id": 3}, {"id": 4}]


def test_a_database_from_a_newer_milepost_is_left_alone(caplog) -> None:
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(str(path)).execute("PRAGMA user_version = 999")
    with caplog.at_level(logging.WARNING, logger="milepost"):
        run = _job()
    assert run.snapshot().root["done"] == 20, "the job ran"
    assert "history schema 999 is newer" in caplog.text
    assert sqlite3.connect(str(path)).execute("PRAGMA user_version").fetchone()[0] == 999


def test_an_unusable_history_location_warns_and_the_job_goes_on(tmp_path, monkeypatch, caplog) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("MILEPOST_HOME", str(blocker / "home"))
    with caplog.at_level(logging.WARNING, logger="milepost"):
        run = _job()
    assert run.snapshot().root["done"] == 20
    assert len([r for r in caplog.records if "run history is off" in r.getMessage()]) == 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB filesystem, so that the history really runs out of space."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"this test needs to mount a small tmpfs (root): {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)  # lazy: a mapping may still be open


def test_a_full_disk_mid_run_warns_once_and_loses_no_count(tiny_disk, monkeypatch, caplog) -> None:
    monkeypatch.setenv("MILEPOST_HOME", str(tiny_disk))
    with caplog.at_level(logging.WARNING, logger="milepost"):
        with milepost.Run("big", display="none") as run:
            ph = run.phase("p")
            for i in range(20_000):
                with ph.item(f"an-item-with-a-longish-name-{i:06d}"):
                    pass
    assert run.snapshot().find("p")["done"] == 20_000
    warnings = [r.getMessage() for r in caplog.records if "run history is off" in r.getMessage()]
    assert len(warnings) == 1 and "full" in warnings[0]
    lost = [r.getMessage() for r in caplog.records if "are not in the history" in r.getMessage()]
    assert len(lost) == 1 and int(lost[0].split()[1]) > 0, "the rows the full disk cost are counted"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60, env={**os.environ}
    )


def test_cli_history_show_and_stats() -> None:
    for k in range(3):
        with milepost.Run("nightly", display="none") as run:
            with run.phase("map", total=4) as ph:
                ph.advance(3)
                ph.fail("doc-<b>\x1b[31m", "boom")
                ph.metric("cost_usd", 0.25 * (k + 1))
    out = _cli("history")
    assert out.returncode == 0 and out.stdout.count("nightly") == 3
    assert "4/4" in out.stdout and "75.0%" in out.stdout and "$0.7500" in out.stdout
    data = json.loads(_cli("history", "--json", "--name", "nightly", "--limit", "2").stdout)
    assert len(data) == 2 and data[0]["cost"] == 0.75 and data[0]["success_rate"] == 0.75
    show = _cli("show", "nightly")
    assert show.returncode == 0 and "map" in show.stdout and "boom" in show.stdout
    assert "\x1b" not in show.stdout, "escape sequences in names are not replayed"
    shown = json.loads(_cli("show", run.id, "--json").stdout)
    assert shown["phases"][0]["path"] == "map" and shown["failures"][0]["error"] == "boom"
    stats = _cli("stats", "nightly")
    assert "3 runs" in stats.stdout and "cost      ▃▆█" in stats.stdout
    sj = json.loads(_cli("stats", "nightly", "--json").stdout)
    assert sj["cost"] == {"min": 0.25, "median": 0.5, "max": 0.75, "last": 0.75}
    missing = _cli("show", "no-such-run")
    assert missing.returncode == 1 and "no run with id or name 'no-such-run'" in missing.stderr


def test_cli_without_history_says_where_it_looked(tmp_path) -> None:
    out = _cli("history", "--db", str(tmp_path / "none.db"))
    assert out.returncode == 1 and "no run history at" in out.stderr


def test_a_run_seen_before_has_an_eta_before_its_first_items(clock) -> None:
    with milepost.Run("repeat", display="none", clock=clock) as run:
        with run.phase("map", total=100) as ph:
            for _ in range(100):
                clock.advance(0.1)
                ph.advance()
                run.poll()
    assert run.snapshot().find("map")["elapsed"] == pytest.approx(10.0)
    with milepost.Run("repeat", display="none", clock=clock) as again:
        ph = again.phase("map", total=100)
        clock.advance(0.5)
        first = again.snapshot().find("map")
        assert first["eta_from_history"] and first["eta"] == pytest.approx(10.0)
        assert first["eta_low"] < 10.0 < first["eta_high"]
        assert "from earlier runs" in "\n".join(again.snapshot().frame(width=200))
        for _ in range(40):
            clock.advance(0.2)  # slower than before: its own pace takes over
            ph.advance()
            again.poll()
        own = again.snapshot().find("map")
        assert not own["eta_from_history"] and own["eta"] == pytest.approx(60 * 0.2, rel=0.1)
    with milepost.Run("never-seen", display="none", clock=clock) as new:
        assert new.phase("map", total=10).total == 10
        assert new.snapshot().find("map")["eta"] is None


def test_replay_draws_a_saved_stream_again(tmp_path, clock, pty_run) -> None:
    stream = tmp_path / "run.jsonl"
    with milepost.Run("recorded", display="json", output=stream, interval=1, clock=clock) as run:
        with run.phase("map", total=50) as ph:
            for i in range(50):
                clock.advance(0.2)
                ph.advance()
                if i == 20:
                    ph.fail("doc-20", "boom")
                run.poll()
    plain = _cli("replay", str(stream), "--no-wait")
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert any("recorded › map · running" in line and "ETA" in line for line in lines)
    assert any("failed doc-20: boom" in line for line in lines)
    assert "recorded › map · completed" in lines[-1]
    code = f"import sys, milepost.cli; sys.exit(milepost.cli.main(['replay', {str(stream)!r}, '--speed', '50']))"
    res = pty_run(code, cols=100, rows=20)
    assert res.status == 0
    assert re.search(r"✓ recorded › map \[█+\] 100% 51/50", res.text), res.text
    snap_only = _cli("replay", str(tmp_path / "nope.json"))
    assert snap_only.returncode == 2 and "No such file" in snap_only.stderr


def test_a_run_with_a_real_clock_gets_the_pace_of_earlier_runs_without_waiting_for_it() -> None:
    """The earlier runs' pace is read on the history's writer thread (the run's start opens no
    connection for it): a phase made at once has its ETA from history a moment later."""
    with milepost.Run("paced", display="none") as run:
        with run.phase("map", total=50) as ph:
            for _ in range(50):
                time.sleep(0.002)
                ph.advance()
    with milepost.Run("paced", display="none") as again:
        again.phase("map", total=50)
        deadline = time.monotonic() + 10
        while not again.snapshot().find("map")["eta_from_history"]:
            assert time.monotonic() < deadline, "the earlier runs' pace never came"
            time.sleep(0.01)
        assert again.snapshot().find("map")["eta"] > 0
