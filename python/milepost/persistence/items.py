"""A run's item rows, read from where the history keeps them.

Since schema version 5 the rows are in chunks (`item_chunks`: a JSON array of up to a thousand
rows, or a pool's chunks joined up to 64 KiB, with its counts by status; since version 6 a
pool's chunk is short, its rows sharing their phase and start: `unpack`) and, for rows kept
before, in `item_rows`;
the `items` view reads both a row at a time, which costs SQLite about 0.5 µs a row of JSON. The
reads here that need many rows take the chunks' text and unpack it in Python, at a fraction of
that; counts come from the chunks' counts, failures from the chunks that have any, and the
newest rows from the newest chunks only. A database at version 4, opened read-only (an older
milepost still writes it), has only its `items` table: the same reads, from it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any, Dict, Iterator, List, Optional, Tuple

__all__ = ["item_counts", "finished_items", "failed_rows", "newest_rows", "unpack"]

#: A row as the reads here give it: id, phase, name, status, start, duration, error, metrics.
Row = Tuple[int, str, str, str, Any, Any, Any, Any]

_COLUMNS = "id, phase, name, status, started_at, duration, error, metrics"


def _version(db: sqlite3.Connection) -> int:
    """The database's schema version: chunks from 5 on, short ones (`phase`, `t0`) from 6."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _tables(db: sqlite3.Connection) -> Tuple[str, bool]:
    """The table that holds rows one a row (`item_rows`, or at version 4 `items` itself), and
    whether there are chunks too."""
    chunked = _version(db) >= 5
    return ("item_rows" if chunked else "items"), chunked


def _chunk_columns(db: sqlite3.Connection) -> str:
    """The columns a chunk is unpacked from (`unpack`), at the database's version (asked in
    the reader's `_snapshot`, where the version and the chunks agree)."""
    return "rows, phase, t0" if _version(db) >= 6 else "rows, NULL, NULL"


@contextlib.contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around a read of chunks: the version it asks and the chunks it
    reads are of the same moment, though another process upgrades the database meanwhile and
    stores short chunks at once."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def unpack(text: str, phase: Optional[str], t0: Optional[float], first: int = 0) -> List[List[Any]]:
    """A chunk's rows from its `first` on, each `[phase, name, status, start, duration, error,
    metrics]`: as they are, or for a short chunk (`phase` given: schema version 6) with what
    they share, its microseconds and nanoseconds in seconds, a number's name as text and no
    status as done (as the `items` view reads them)."""
    rows = json.loads(text)
    if first:
        rows = rows[first:]
    if phase is None:
        return rows
    out = []
    for name, micros, nanos, *rest in rows:
        status, error, metrics = rest + [None] * (3 - len(rest))
        start = None if micros is None or t0 is None else t0 + micros / 1e6
        duration = None if nanos is None else nanos / 1e9
        out.append([phase, name if type(name) is str else str(name), status or "done", start, duration, error, metrics])
    return out


def _rows_of(chunk_id: int, text: str, phase: Optional[str], t0: Optional[float], first: int = 0) -> Iterator[Row]:
    for k, r in enumerate(unpack(text, phase, t0, first), first):
        yield (chunk_id + k, *r)


def item_counts(db: sqlite3.Connection, run_id: str) -> Tuple[int, int]:
    """How many item rows the run has, and how many of them are done."""
    table, chunked = _tables(db)
    n, done = db.execute(
        f"SELECT count(*), coalesce(sum(status = 'done'), 0) FROM {table} WHERE run_id = ?", (run_id,)
    ).fetchone()
    if chunked:
        more = db.execute(
            "SELECT coalesce(sum(n), 0), coalesce(sum(done), 0) FROM item_chunks WHERE run_id = ?", (run_id,)
        ).fetchone()
        n, done = n + more[0], done + more[1]
    return int(n), int(done)


def finished_items(db: sqlite3.Connection, run_id: str) -> Iterator[Tuple[str, str, str]]:
    """Phase, name and status of each of the run's rows that is done or skipped."""
    table, chunked = _tables(db)
    yield from db.execute(
        f"SELECT phase, name, status FROM {table} WHERE run_id = ? AND status IN ('done', 'skipped')",
        (run_id,),
    )
    if chunked:
        with _snapshot(db):
            for text, shared, t0 in db.execute(
                f"SELECT {_chunk_columns(db)} FROM item_chunks WHERE run_id = ? AND done + skipped > 0 ORDER BY id",
                (run_id,),
            ):
                for phase, name, status, *_ in unpack(text, shared, t0):
                    if status in ("done", "skipped"):
                        yield phase, name, status


def failed_rows(db: sqlite3.Connection, run_id: str) -> List[Dict[str, Any]]:
    """The run's failed rows: phase, name, error and when it ended (`at`)."""
    table, chunked = _tables(db)
    out = [
        {"phase": r[0], "name": r[1], "error": r[2], "at": r[3]}
        for r in db.execute(
            f"SELECT phase, name, error, started_at + coalesce(duration, 0) FROM {table} "
            "WHERE run_id = ? AND status = 'failed'",
            (run_id,),
        )
    ]
    if chunked:
        with _snapshot(db):
            chunks = db.execute(
                f"SELECT {_chunk_columns(db)} FROM item_chunks WHERE run_id = ? AND failed > 0", (run_id,)
            ).fetchall()
        for text, shared, t0 in chunks:
            for phase, name, status, started, duration, error, _ in unpack(text, shared, t0):
                if status == "failed":
                    at = started + (duration or 0) if started is not None else None
                    out.append({"phase": phase, "name": name, "error": error, "at": at})
    return out


def newest_rows(db: sqlite3.Connection, run_id: str, limit: int, after: int = 0) -> List[Row]:
    """The run's newest `limit` rows with an id above `after`, newest first."""
    table, chunked = _tables(db)
    # `+run_id` keeps SQLite off the (run_id, phase, status) index: walking the rows newest
    # first stops after `limit` of them, where the index would gather and sort all of a long
    # run's rows.
    rows: List[Row] = [
        tuple(r)
        for r in db.execute(
            f"SELECT {_COLUMNS} FROM {table} WHERE +run_id = ? AND id > ? ORDER BY id DESC LIMIT ?",
            (run_id, after, limit),
        )
    ]
    if chunked:
        # The newest chunks until they hold `limit` rows (their text is read only for these),
        # and of each only its rows newer than `after` among its newest `need`: a pool's joined
        # chunk holds thousands, a monitor asks for a few twice a second.
        need = limit
        with _snapshot(db):
            columns = _chunk_columns(db)
            for chunk_id, n in db.execute(
                "SELECT id, n FROM item_chunks WHERE run_id = ? AND id + n > ? ORDER BY id DESC", (run_id, after)
            ):
                text, shared, t0 = db.execute(f"SELECT {columns} FROM item_chunks WHERE id = ?", (chunk_id,)).fetchone()
                newer = list(_rows_of(chunk_id, text, shared, t0, max(0, after + 1 - chunk_id, n - need)))
                rows.extend(newer)
                need -= len(newer)
                if need <= 0:
                    break
    rows.sort(key=lambda r: r[0], reverse=True)
    return rows[:limit]
