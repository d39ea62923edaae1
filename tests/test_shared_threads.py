"""Starting and ending runs starts and joins no thread of its own (issue 16, set-up): runs not
drawn natively share one sampling thread, their own observers one delivery thread, the runs
writing one history file one writer. Many runs back to back, in parallel threads and in a
forked child, each keep exact counts, lines and history rows."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import queue
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import milepost
from milepost.persistence import Store, default_path
from milepost.persistence.store import WRITER_CACHE_KIB, close_writers
from milepost.service import FIRST_DELIVERY


def track_runs(n: int):
    """`n` one-item loops, each a run of its own."""
    for _ in range(n):
        yield from milepost.track(range(1), display="none")


def _threads() -> int:
    """Every thread of this process, native ones included."""
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts native threads through /proc")
def test_hundreds_of_short_runs_start_no_thread_each_and_keep_everything() -> None:
    for _ in track_runs(5):  # the shared threads exist from here on
        pass
    # Threads an earlier test's runs left due (a run still open starts its delivery and
    # resource threads FIRST_DELIVERY after its start) are started before the count.
    time.sleep(3 * FIRST_DELIVERY)
    before = _threads()
    out = io.StringIO()
    for i in range(200):
        for _ in milepost.track(range(3), description=f"bar{i}", file=out):
            pass
    for i in range(50):
        with milepost.Run(f"kept-{i}", display="none", resources=False) as run:
            run.phase("p").advance(i)
    after = _threads()
    assert after <= before + 2, (before, after)
    # A bar that a loaded machine keeps past 0.1 s prints a progress line too, by design.
    lines = [line for line in out.getvalue().splitlines() if " · running " not in line]
    odd = [line for i, line in enumerate(lines) if f"bar{i} · completed" not in line or "3/3" not in line]
    assert len(lines) == 200 and not odd, odd
    db = sqlite3.connect(str(default_path()))
    kept = dict(db.execute("SELECT name, done FROM runs WHERE name LIKE 'kept-%' AND status = 'completed'"))
    assert kept == {f"kept-{i}": i for i in range(50)}


def test_runs_in_parallel_threads_share_the_history_writer_and_lose_nothing() -> None:
    errors: list = []

    def job(t: int) -> None:
        try:
            for i in range(25):
                with milepost.Run(f"par-{t}-{i}", display="none", resources=False) as run:
                    with run.phase("p") as ph:
                        for j in range(4):
                            with ph.item(f"{t}-{i}-{j}"):
                                pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=job, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    db = sqlite3.connect(str(default_path()))
    runs = db.execute("SELECT count(*), sum(done) FROM runs WHERE name LIKE 'par-%' AND status = 'completed'")
    assert runs.fetchone() == (100, 400)
    assert db.execute("SELECT count(*) FROM items WHERE name LIKE '%-%-%' AND status = 'done'").fetchone()[0] == 400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only")
def test_a_forked_child_starts_its_own_shared_threads() -> None:
    """The parent's delivery, sampling and writer threads are not in a forked child: its runs
    start their own, and the parent's go on."""
    with milepost.Run("parent-before", display="none"):
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            out = io.StringIO()
            for _ in milepost.track(range(5), description="in-child", file=out):
                pass
            with milepost.Run("child-run", display="none") as run:
                run.phase("p").advance(7)
            db = sqlite3.connect(str(default_path()))
            row = db.execute("SELECT status, done FROM runs WHERE id = ?", (run.id,)).fetchone()
            ok = "in-child · completed" in out.getvalue() and row == ("completed", 7)
            os.write(write, b"ok" if ok else repr((out.getvalue(), row)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    said = os.read(read, 4096)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and said == b"ok", said
    with milepost.Run("parent-after", display="none") as run:
        run.phase("p").advance(2)
    db = sqlite3.connect(str(default_path()))
    assert db.execute("SELECT done FROM runs WHERE id = ?", (run.id,)).fetchone() == (2,)


def test_a_run_whose_display_is_stalled_holds_up_no_other_run(tmp_path) -> None:
    """Found in review: with one delivery thread for every run, run A's plain display writing
    to a pipe nobody reads held up run B's end for 30 s and lost B's history end. Each run
    that lives past its first 50 ms has a delivery thread of its own again."""
    read, write = os.pipe()
    fcntl.fcntl(write, 1031, 4096)  # F_SETPIPE_SZ: a small pipe, full at once
    stalled = os.fdopen(write, "w", buffering=1)
    started, stop = threading.Event(), threading.Event()

    def job_a() -> None:
        with milepost.Run("A", display="plain", output=stalled, history=False) as a:
            started.set()
            while not stop.is_set():
                a.log("x" * 200)
                time.sleep(0.001)

    db_path = tmp_path / "b.db"
    with milepost.Run("B", display="none", history=db_path) as b:
        with b.phase("p", total=10) as p:
            time.sleep(0.2)  # B has had its first delivery
            job = threading.Thread(target=job_a, daemon=True)
            job.start()
            assert started.wait(10)
            time.sleep(0.3)  # A's display is stuck on the full pipe by now
            for _ in range(10):
                time.sleep(0.02)
                p.advance()
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5, "B's end waited for A's display"
    db = sqlite3.connect(str(db_path))
    assert db.execute("SELECT status, done FROM runs").fetchall() == [("completed", 10)]
    os.close(read)  # A's display fails on the closed pipe and lets go
    # A ends here, not in a later test: a run left open (here for 40 s, its display stalled)
    # holds what it made, such as the segment a fork gives it, while other tests run.
    stop.set()
    job.join(10)
    assert not job.is_alive(), "run A ended"
    with contextlib.suppress(OSError):  # what A wrote last cannot reach the closed pipe
        stalled.close()


def test_a_store_joining_a_writer_as_it_retires_keeps_its_history(tmp_path, monkeypatch) -> None:
    """Found in review: a store joined its file's writer after the registry's lock was let
    go, so a writer retiring in that moment ended under it (history off, rows lost). A thread
    switch right after the writer is found (widened to 0.3 s) loses nothing now."""
    from milepost.persistence import store

    monkeypatch.setattr(store, "IDLE_EXIT", 0.2)
    db_path = tmp_path / "h.db"
    with milepost.Run("first", display="none", history=db_path):
        pass
    time.sleep(0.3)  # the writer is idle: about to retire
    real = store._writer_for

    def switched(*args):
        writer = real(*args)
        time.sleep(0.3)
        return writer

    monkeypatch.setattr(store, "_writer_for", switched)
    with milepost.Run("second", display="none", history=db_path) as run:
        run.phase("p", total=5).advance(5)
    assert run.history_path is not None
    db = sqlite3.connect(str(db_path))
    assert db.execute("SELECT status, done FROM runs WHERE name = 'second'").fetchone() == ("completed", 5)


def test_a_run_whose_items_fill_the_disk_stays_in_the_history(tmp_path) -> None:
    """Found in review: a fresh run's first row went into the same transaction as its first
    items, so a full disk took the run out of the history altogether; its own rows now go in
    first, in a transaction of their own (RLIMIT_FSIZE stands in for a full disk)."""
    code = textwrap.dedent(
        """
        import os, resource, signal, sqlite3, sys, time, milepost
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        db = sys.argv[1]
        with milepost.Run("warm", display="none", history=db):
            pass
        size = max(os.path.getsize(db), os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
        page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # Room for the run's own rows (a few pages), not for its items' (about 300 KB).
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 6 * page, hard))
        with milepost.Run("A", display="none", history=db) as a:
            with a.phase("p") as p:
                for i in range(3000):
                    with p.item(f"item-{i}" + "x" * 100):
                        pass
                time.sleep(1.2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        print(sorted(r[0] for r in sqlite3.connect(db).execute("SELECT name FROM runs")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "h.db")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "run history is off" in out.stderr
    assert out.stdout.strip() == "['A', 'warm']", out.stdout


def _wal_commits(db_path) -> int:
    """The commits in a database's WAL file: frames whose header gives the database's size
    after them (other frames hold 0 there; SQLite's WAL format)."""
    wal = Path(f"{db_path}-wal").read_bytes()
    page = int.from_bytes(wal[8:12], "big")
    frames = range(32, len(wal) - 24 + 1, 24 + page)
    return sum(1 for at in frames if int.from_bytes(wal[at + 4 : at + 8], "big"))


def test_a_write_of_a_runs_own_rows_and_its_items_is_one_commit(tmp_path) -> None:
    """Each commit costs the writer several writes to the WAL (about 0.4 ms of CPU on the
    benchmark machine): the run's own rows and its item rows written together are one."""
    db_path = tmp_path / "runs.db"
    store = Store(db_path)
    try:
        store.execute(
            "INSERT INTO runs (id, name, status, started_at) VALUES (?, ?, ?, ?)", ("r1", "one", "running", time.time())
        )
        assert store.flush(30)
        before = _wal_commits(db_path)
        store.bind_run("r1")
        store.execute("UPDATE runs SET done = ? WHERE id = ?", (3, "r1"))
        for i in range(3):
            store.item("", str(i), "done", time.time(), 0.001, None, None)
        assert store.flush(30)
        assert _wal_commits(db_path) - before == 1
    finally:
        store.close()
    db = sqlite3.connect(str(db_path))
    assert db.execute("SELECT done FROM runs WHERE id = 'r1'").fetchone() == (3,)
    assert db.execute("SELECT SUM(n) FROM item_chunks WHERE run_id = 'r1'").fetchone() == (3,)


def test_the_history_writer_keeps_few_pages_in_memory(tmp_path) -> None:
    # Its pages are copied once a pool forks its workers (they share them until the writer
    # writes): the writer's connection keeps a small cache (benches/test_store.py).
    store = Store(tmp_path / "runs.db")
    got: "queue.SimpleQueue[int]" = queue.SimpleQueue()
    store.query(lambda db: int(db.execute("PRAGMA cache_size").fetchone()[0]), got.put)
    try:
        assert got.get(timeout=30) == -WRITER_CACHE_KIB, "KiB of cache, as SQLite gives a size in KiB"
        assert WRITER_CACHE_KIB < 2000, "less than SQLite's default"
    finally:
        store.close()


def test_after_a_clean_exit_the_database_file_alone_holds_the_history(tmp_path) -> None:
    """Found trying it as a user: right after a job, `.milepost/` held `runs.db-wal` beside
    `runs.db`, with the job's rows in the WAL only, so a copy of `runs.db` lacked the job. At
    the interpreter's exit the writer now writes what is queued and closes its connection."""
    db = tmp_path / "runs.db"
    code = textwrap.dedent(
        """
        import sys, milepost
        with milepost.Run("job", display="none", history=sys.argv[1]) as run:
            with run.phase("p") as p:
                for i in range(500):
                    with p.item(str(i)):
                        pass
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]
    copy = tmp_path / "copy" / "runs.db"
    copy.parent.mkdir()
    copy.write_bytes(db.read_bytes())
    got = sqlite3.connect(str(copy))
    assert got.execute("SELECT name, status, done FROM runs").fetchall() == [("job", "completed", 500)]
    assert got.execute("SELECT SUM(n) FROM item_chunks").fetchone() == (500,)


def test_the_exit_waits_for_a_stuck_history_writer_only_so_long(tmp_path, caplog) -> None:
    """A writer held up (here by another connection's lock on the file) holds up the
    interpreter's exit for the bound alone, and says so; it writes once the lock goes."""
    db_path = tmp_path / "runs.db"
    store = Store(db_path)
    assert store.flush(30)
    other = sqlite3.connect(str(db_path), timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        store.execute("INSERT INTO runs (id, name, status, started_at) VALUES (?, ?, ?, ?)", ("r1", "one", "x", 0.0))
        t0 = time.monotonic()
        close_writers(timeout=1.0)
        assert time.monotonic() - t0 < 5
        assert "did not finish within 1 s of the exit" in caplog.text
    finally:
        other.rollback()
        other.close()

    def runs() -> int:
        with contextlib.closing(sqlite3.connect(str(db_path))) as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    deadline = time.monotonic() + 30
    while runs() == 0:
        assert time.monotonic() < deadline, "the writer never wrote once the lock went"
        time.sleep(0.05)
    store.close()
