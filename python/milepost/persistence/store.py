"""The history store: a SQLite file written by one background thread, in batches.

Producers (the job's threads) only append a tuple to a bounded queue; the writer thread
takes everything queued every `flush_interval` seconds (or as soon as a batch is large) and
writes it in one transaction. A full queue makes producers wait for the writer (nothing is
dropped); a store that cannot write (full disk, read-only directory, a database from a newer
milepost, any error at all in the writer) warns once and turns itself off, and the job goes
on. Nobody ever waits for a writer thread that is gone.

Guarantee: rows queued at least `flush_interval` seconds before the process is killed are in
the database (WAL journal, `synchronous=NORMAL`: a commit survives the process; after an
operating-system crash or power loss, the last commits may be lost, unless
`MILEPOST_SYNCHRONOUS=FULL`).
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Deque, List, Optional, Sequence, Tuple

from .. import _milepost
from ..home import default_history
from .schema import SCHEMA_VERSION, SchemaError, migrate

_log = logging.getLogger("milepost")

#: Rows waiting for the writer before producers wait for it.
MAX_QUEUED = 200_000
#: A batch this large is written without waiting for the interval.
EAGER_BATCH = 20_000
#: Seconds between checks of a producer waiting for the writer, and of `flush()`.
BACKPRESSURE_NAP = 0.02
FLUSH_NAP = 0.01

# A whole batch of item rows in one statement: the rows go in as one JSON array and SQLite
# unpacks them. Python's sqlite3 releases the GIL around each step of a statement; with one
# step a batch, the writer thread never waits for the job's thread to hand the GIL back,
# once per row, at every switch interval (it would fall behind by minutes on a busy job).
ITEMS_FROM_JSON = (
    "INSERT INTO items (run_id, phase, name, status, started_at, duration, error, metrics) "
    "SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7 "
    "FROM json_each(?)"
)

Op = Tuple[str, Sequence[Any]]


def default_path() -> Path:
    """`$MILEPOST_HOME/runs.db`, else `.milepost/runs.db` in the working directory."""
    return default_history()


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings (the schema brought up to date unless
    `readonly`)."""
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

    def push(self, *row: Any) -> int:
        self._store.dropped += 1
        return 0

    def take(self) -> None:
        return None

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return 0


class Store:
    """Writes history rows in the background. Thread-safe; every method returns at once."""

    def __init__(self, path: Optional[Path] = None, flush_interval: float = 0.5) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.flush_interval = flush_interval
        self._queue: Deque[Op] = deque()
        self._rows = _milepost.RowBuffer("")
        # Wake-ups for the writer. A C-implemented queue, not a Condition: the job's threads
        # only put into it, and a Condition's lock taken by the job's thread can be left held
        # by a Ctrl-C that lands inside its Python `__enter__`, which hangs the writer for good.
        self._wake: "queue.SimpleQueue[bool]" = queue.SimpleQueue()
        self._stop = False
        self._busy = False
        self.enabled = True
        self.written = 0
        self.dropped = 0
        try:
            self._db = connect(self.path)
        except (sqlite3.Error, OSError, SchemaError) as e:
            self._disable(f"cannot open {self.path} ({e})")
            return
        self._thread = threading.Thread(target=self._loop, name="milepost-store", daemon=True)
        self._thread.start()

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
        if self.enabled and not self._thread.is_alive():
            self._disable("its writer thread is gone")
        return self.enabled

    def _maybe_wait(self) -> None:
        n = self._pending()
        if n >= EAGER_BATCH:
            self._wake.put(True)
        while self._pending() >= MAX_QUEUED and self._writer_alive():
            # Backpressure: the writer is behind; wait for it rather than drop rows.
            self._wake.put(True)
            time.sleep(BACKPRESSURE_NAP)

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until everything queued so far is written (or the store is off)."""
        deadline = time.monotonic() + timeout
        self._wake.put(True)
        while (self._pending() or self._busy) and self._writer_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(FLUSH_NAP)
        return True

    def close(self) -> None:
        """Writes what is queued and stops the writer."""
        if self.enabled:
            self._stop = True
            self._wake.put(True)
            self._thread.join(60)
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        if self.dropped:
            _log.warning("milepost: %d item rows of this run are not in the history (it was off)", self.dropped)

    # -- the writer thread --------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._write_until_stopped()
        except BaseException as e:  # noqa: BLE001 - the writer must never die without a word
            self._disable(f"its writer stopped ({type(e).__name__}: {e})")
        finally:
            self._busy = False

    def _write_until_stopped(self) -> None:
        while True:
            if not self._stop and self._pending() < EAGER_BATCH:
                try:
                    self._wake.get(timeout=self.flush_interval)
                except queue.Empty:
                    pass
            while not self._wake.empty():  # wake-ups that came meanwhile: this batch serves them
                self._wake.get_nowait()
            stopping = self._stop
            self._busy = True
            try:
                self._write_batch()
            finally:
                self._busy = False
            if stopping or not self.enabled:
                return

    def _take(self, q: Deque[Any]) -> List[Any]:
        out = []
        for _ in range(len(q)):
            out.append(q.popleft())
        return out

    def _write_batch(self) -> None:
        ops, rows = self._take(self._queue), self._rows.take()
        if not ops and rows is None:
            return
        try:
            with self._db:
                # Statements first: an item's phase row exists before its items.
                for sql, params in ops:
                    self._db.execute(sql, params)
                if rows is not None:
                    self._db.execute(ITEMS_FROM_JSON, (rows[0],))
            self.written += len(ops) + (rows[1] if rows else 0)
        except Exception as e:  # noqa: BLE001 - any failure (a full disk, a bad value) turns history off
            self.dropped += rows[1] if rows else 0
            self._disable(f"cannot write to {self.path} ({type(e).__name__}: {e})")
