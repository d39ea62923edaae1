"""The history store: a SQLite file written by one background thread, in batches.

Producers (the job's threads) only append a tuple to a bounded queue; the writer thread
takes everything queued every `flush_interval` seconds (or as soon as a batch is large) and
writes it in one transaction. One writer (its connection and its thread) serves every run of
the process that keeps its history in the same file: the database is opened once per process,
and a run's start and end neither open it nor start or join a thread. A writer with no run
left closes its connection and ends after `IDLE_EXIT` seconds. A full queue makes producers
wait for the writer (nothing is dropped); a store that cannot write (full disk, read-only
directory, a database from a newer milepost, any error at all in the writer) warns once and
turns itself off, and the job goes on. Nobody ever waits for a writer thread that is gone.

Guarantee: rows queued at least `flush_interval` seconds before the process is killed are in
the database (WAL journal, `synchronous=NORMAL`: a commit survives the process; after an
operating-system crash or power loss, the last commits may be lost, unless
`MILEPOST_SYNCHRONOUS=FULL`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from .. import _milepost
from ..home import default_history
from .schema import NEXT_ITEM_ID, SCHEMA_VERSION, SchemaError, migrate

_log = logging.getLogger("milepost")

#: Rows waiting for the writer before producers wait for it.
MAX_QUEUED = 200_000
#: Bytes a page of a database made here.
PAGE_SIZE = 16384
#: A batch this large is written without waiting for the interval.
EAGER_BATCH = 20_000
#: Seconds between checks of a producer waiting for the writer, and of `flush()`.
BACKPRESSURE_NAP = 0.02
#: Seconds a writer with no run to serve keeps its connection and thread for the next run.
IDLE_EXIT = 5.0
#: KiB of pages the writer's connection keeps (SQLite's default: 2,000). The writer appends
#: chunks and updates a few rows, and reads little. Once a pool has forked its workers, each
#: page of memory the parent writes to is copied first (they share it until then): a cache
#: the writer cycles through in a few pages is copied that much less. With a forked process
#: alive, writing a pool's rows cost the writer about 30% less CPU (`test_store.py`).
WRITER_CACHE_KIB = 256

# A chunk of item rows in one statement, one row of `item_chunks`: the JSON array the row
# buffer encoded, as it came, with its counts and what its rows share (see the schema's
# versions 5 and 6). Python's sqlite3
# releases the GIL around each step of a statement; with one step a chunk, the writer thread
# never waits for the job's thread to hand the GIL back, once per row, at every switch interval.
ITEMS_CHUNK = (
    "INSERT INTO item_chunks (id, run_id, rows, n, done, failed, skipped, phase, t0) "
    f"VALUES ({NEXT_ITEM_ID}, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Op = Tuple[str, Sequence[Any]]


def default_path() -> Path:
    """`$MILEPOST_HOME/runs.db`, else `.milepost/runs.db` in the working directory."""
    return default_history()


def writer_connection(path: Path) -> sqlite3.Connection:
    """The connection a database's writer writes through (`connect`, with a small cache)."""
    db = connect(path)
    db.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    return db


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings (the schema brought up to date unless
    `readonly`). A directory at `path` is an `OSError` saying so (SQLite said "unable to open
    database file", or "disk I/O error")."""
    if path.is_dir():
        why = "a directory, not a run history (give the database file's path)"
        raise IsADirectoryError(errno.EISDIR, why, str(path))
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # its tables may mean something else: read nothing
            db.close()
            raise SchemaError(
                f"{path} was written by a newer milepost (history schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade milepost to read it"
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        # A new database gets 16 KiB pages (an existing one keeps its own: this does nothing
        # there). A pool's chunk of rows spans a few pages: SQLite's cost of keeping it, written
        # to the WAL and copied by the checkpoint a page at a time, fell by about 40%
        # (docs/benchmarks.md). It must come before WAL mode, which fixes the page size.
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        sync = os.environ.get("MILEPOST_SYNCHRONOUS", "NORMAL").upper()
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'FULL' else 'NORMAL'}")
        migrate(db)
    db.row_factory = sqlite3.Row
    return db


class _Dropped:
    """The row buffer of a store that is off: counts what it is given, keeps nothing."""

    def __init__(self, store: "Store") -> None:
        self._store = store

    run_id = ""

    def push(self, *row: Any) -> int:
        self._store.dropped += 1
        return 0

    def take_each(self) -> None:
        return None

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return 0


class _Writer:
    """One database file's connection and writer thread, shared by the process's stores."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = writer_connection(path)  # the first run of the process (and file) pays for it
        self._stores: List[Store] = []
        # Wake-ups for the writer. A C-implemented queue, not a Condition: the job's threads
        # only put into it, and a Condition's lock taken by the job's thread can be left held
        # by a Ctrl-C that lands inside its Python `__enter__`, which hangs the writer for good.
        # For the same reason a flush waits on a queue of its own (`flush`'s ticket).
        self._wake: "queue.SimpleQueue[bool]" = queue.SimpleQueue()
        self._tickets: Deque["queue.SimpleQueue[bool]"] = deque()
        self.gone = False
        #: Set at the interpreter's exit (`close_writers`): one last round, then the connection closes.
        self.stopping = False
        self._thread = threading.Thread(target=self._loop, name="milepost-store", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return not self.gone and self._thread.is_alive()

    def add(self, store: Store) -> None:
        self._stores.append(store)  # list.append is atomic: the writer copies the list to read it

    def remove(self, store: Store) -> None:
        with contextlib.suppress(ValueError):
            self._stores.remove(store)

    def wake(self) -> None:
        self._wake.put(True)

    def stop(self, timeout: float) -> bool:
        """Writes what is queued, then closes the connection (see `close_writers`); False if
        the writer did not finish within `timeout` seconds."""
        self.stopping = True
        self._wake.put(True)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def ticket(self) -> "queue.SimpleQueue[bool]":
        """A queue that gets True once everything queued before now is written."""
        ticket: "queue.SimpleQueue[bool]" = queue.SimpleQueue()
        self._tickets.append(ticket)
        self._wake.put(True)
        return ticket

    def _loop(self) -> None:
        try:
            self._write_until_idle()
        except BaseException as e:  # noqa: BLE001 - the writer must never die without a word
            for store in list(self._stores):
                store._disable(f"its writer stopped ({type(e).__name__}: {e})")  # noqa: SLF001 - its writer
        finally:
            self.gone = True
            for ticket in self._tickets:
                ticket.put(True)  # nobody waits for a writer that is gone
            with contextlib.suppress(sqlite3.Error):
                self.db.close()

    def _write_until_idle(self) -> None:
        idle_since = time.monotonic()
        while True:
            # Read before the round: what was queued before `stop` asked is in this round.
            stopping = self.stopping
            stores = list(self._stores)
            interval = min((s.flush_interval for s in stores), default=IDLE_EXIT)
            if not stopping and not self._tickets and sum(s._pending() for s in stores) < EAGER_BATCH:  # noqa: SLF001
                with contextlib.suppress(queue.Empty):
                    self._wake.get(timeout=interval)
            while not self._wake.empty():  # wake-ups that came meanwhile: this round serves them
                self._wake.get_nowait()
            # The tickets taken before the stores' queues: a flush is served by a round that
            # took everything queued before it asked.
            tickets = [self._tickets.popleft() for _ in range(len(self._tickets))]
            stores = list(self._stores)
            for store in stores:
                store._write_round()  # noqa: SLF001 - the store's writer
            for ticket in tickets:
                ticket.put(True)
            if stopping:
                return
            if stores or tickets:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_EXIT and _retire(self):
                return


#: The writers of this process, by database file.
_writers: Dict[str, _Writer] = {}
_writers_lock = threading.Lock()


def _writer_for(path: Path, store: Store) -> _Writer:
    """The process's writer for `path` (made, and the database opened, if there is none), with
    `store` joined to it under the registry's lock: an idle writer retiring meanwhile
    (`_retire`) sees the store and stays."""
    key = os.path.realpath(path)
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None or not writer.alive():
            writer = _writers[key] = _Writer(path)
        writer.add(store)
        return writer


def _retire(writer: _Writer) -> bool:
    """Takes an idle writer out of use, unless a store joined it meanwhile."""
    with _writers_lock:
        if writer._stores:  # noqa: SLF001 - the writers' own registry
            return False
        writer.gone = True
        if _writers.get(os.path.realpath(writer.path)) is writer:
            del _writers[os.path.realpath(writer.path)]
        return True


#: Seconds the interpreter's exit waits for each history writer to write what is queued and close.
EXIT_WAIT = 10.0


def close_writers(timeout: float = EXIT_WAIT) -> None:
    """At the interpreter's exit, once the runs have ended: each writer writes what is queued
    and closes its connection. The last connection to a file folds its WAL into the database
    and removes the `-wal` and `-shm` files, so that the database file alone holds the history
    (for whoever copies it); a writer that was idle for IDLE_EXIT seconds did so already."""
    with _writers_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        if writer.alive() and not writer.stop(timeout):
            _log.warning(
                "milepost: the history writer of %s did not finish within %.0f s of the exit", writer.path, timeout
            )


def _forget_writers() -> None:
    """In a forked child: the parent's writer threads are not here."""
    global _writers_lock
    _writers.clear()
    _writers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)


class Store:
    """A run's history: what it queues, written by its file's writer (`_Writer`).
    Thread-safe; every method returns at once but `flush` and `close`."""

    def __init__(self, path: Optional[Path] = None, flush_interval: float = 0.5) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.flush_interval = flush_interval
        self._queue: Deque[Op] = deque()
        self._rows = _milepost.RowBuffer("")
        #: Reads to make on the writer's connection, and where their answers go (`query`).
        self._reads: Deque[Tuple[Callable[[sqlite3.Connection], Any], Callable[[Any], None]]] = deque()
        self.enabled = True
        self.written = 0
        self.dropped = 0
        try:
            self._writer = _writer_for(self.path, self)
        except (sqlite3.Error, OSError, SchemaError) as e:
            self._disable(f"cannot open {self.path} ({e})")

    def _disable(self, why: str) -> None:
        if self.enabled:
            self.enabled = False
            waiting = self._rows
            waiting.close()  # items ended natively ask for `buffer` again: None now
            self._rows = _Dropped(self)  # type: ignore[assignment]
            # Rows queued and never written are counted in the final warning.
            self.dropped += len(waiting)
            self._queue.clear()
            _log.warning("milepost: run history is off: %s; the job goes on without it", why)
            writer = getattr(self, "_writer", None)
            if writer is not None:
                writer.remove(self)

    def bind_run(self, run_id: str) -> None:
        """The run whose items this store keeps (one store a run)."""
        if self.enabled:
            self._rows.close()  # items ended natively ask for `buffer` again: this one
            self._rows = _milepost.RowBuffer(run_id)

    # -- producers ----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queues one statement (run and phase rows, events)."""
        if not self.enabled:
            return
        self._queue.append((sql, params))
        self._maybe_wait()

    def query(self, read: Callable[[sqlite3.Connection], Any], answer: Callable[[Any], None]) -> None:
        """Makes `read` on the writer's connection, after what is queued now is written, and
        hands its result to `answer`, both on the writer's thread: a read the run needs but
        must not wait for (the pace of earlier runs: an ETA a moment after the start instead
        of a connection opened on the job's thread). A failing read is logged; nothing more."""
        if self.enabled:
            self._reads.append((read, answer))
            self._writer.wake()

    def wake(self) -> None:
        """Asks the writer to write what is queued now, without waiting for it."""
        if self.enabled:
            self._writer.wake()

    @property
    def buffer(self) -> Optional[_milepost.RowBuffer]:
        """The row buffer, for an item's end to queue its row in the same native call that
        counts it (None once the store is off)."""
        rows = self._rows
        return rows if self.enabled and isinstance(rows, _milepost.RowBuffer) else None

    def pushed(self, waiting: int) -> None:
        """After a row went through `buffer` (`waiting` rows now, 0 when none was queued
        because the store is off): wakes the writer for a large batch; counts the row as
        missing when the store is off."""
        if not self.enabled:
            self.dropped += 1
        elif waiting >= EAGER_BATCH:
            self._maybe_wait()

    def item(
        self,
        phase: str,
        name: str,
        status: str,
        started_at: float,
        duration: Optional[float],
        error: Optional[str],
        metrics: Optional[str],
    ) -> None:
        """Queues one item row: the per-item path, one call into the encoder (a store that
        turned itself off has a row buffer that only counts)."""
        if self._rows.push(phase, name, status, started_at, duration, error, metrics) >= EAGER_BATCH:
            self._maybe_wait()

    def _pending(self) -> int:
        return len(self._rows) + len(self._queue)

    def _writer_alive(self) -> bool:
        """Whether there is a writer to wait for; a writer found gone turns the store off."""
        if self.enabled and not self._writer.alive():
            self._disable("its writer thread is gone")
        return self.enabled

    def _maybe_wait(self) -> None:
        n = self._pending()
        if n >= EAGER_BATCH:
            self._writer.wake()
        while self._pending() >= MAX_QUEUED and self._writer_alive():
            # Backpressure: the writer is behind; wait for it rather than drop rows.
            self._writer.wake()
            time.sleep(BACKPRESSURE_NAP)

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until everything queued so far is written (or the store is off)."""
        if not self._writer_alive():
            return True
        ticket = self._writer.ticket()
        deadline = time.monotonic() + timeout
        while True:
            try:
                # In slices: a writer that dies meanwhile is noticed.
                ticket.get(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                return True
            except queue.Empty:
                if not self._writer_alive():
                    return True
                if time.monotonic() >= deadline:
                    return False

    def close(self) -> None:
        """Writes what is queued (waiting for it, bounded) and lets go of the writer, which
        stays for the process's next run."""
        if self.enabled:
            if not self.flush(60):
                _log.warning("milepost: the history writer did not finish within 60 s; going on without it")
            self._writer.remove(self)
        if self.dropped:
            _log.warning("milepost: %d item rows of this run are not in the history (it was off)", self.dropped)

    # -- on the writer thread -----------------------------------------------------------------
    def _write_round(self) -> None:
        """This store's part of a writer's round: any failure turns this store's history off
        (the writer goes on for the other runs)."""
        if not self.enabled:
            return
        try:
            self._write_batch()
        except BaseException as e:  # noqa: BLE001 - the writer must never die without a word
            self._disable(f"its writer stopped ({type(e).__name__}: {e})")
            return
        for _ in range(len(self._reads)):
            read, answer = self._reads.popleft()
            try:
                answer(read(self._writer.db))
            except Exception as e:  # noqa: BLE001 - a read the run can do without
                _log.warning("milepost: reading the history failed (%s: %s); the run goes on", type(e).__name__, e)

    def _take(self, q: Deque[Any]) -> List[Any]:
        out = []
        for _ in range(len(q)):
            out.append(q.popleft())
        return out

    def _write_batch(self) -> None:
        ops, chunks = self._take(self._queue), self._rows.take_each()
        if not ops and chunks is None:
            return
        rows = chunks.rows if chunks is not None else 0
        db = self._writer.db
        try:
            # Statements first (an item's phase row exists before its items), then the rows,
            # in one transaction: a commit costs the writer several writes to the WAL, about
            # 0.4 ms of CPU here, and a run with a pool made four of them where two do.
            try:
                with db:
                    _execute(db, ops)
                    if chunks is not None:
                        # A chunk at a time: its text is made a string when it is written (`TakenRows`).
                        db.executemany(ITEMS_CHUNK, chunks)
            except Exception:
                if not ops or chunks is None:
                    raise
                # Rows that cannot be written (a full disk) take the run's own rows with them
                # no more: those go in alone (the run stays in the history, `running`).
                with db:
                    _execute(db, ops)
                self.written += len(ops)
                raise
            self.written += len(ops) + rows
        except Exception as e:  # noqa: BLE001 - any failure (a full disk, a bad value) turns history off
            self.dropped += rows
            self._disable(f"cannot write to {self.path} ({type(e).__name__}: {e})")


def _execute(db: sqlite3.Connection, ops: List[Op]) -> None:
    for sql, params in ops:
        db.execute(sql, params)
