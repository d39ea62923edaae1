"""The history database's schema and its migrations.

The schema version is SQLite's `PRAGMA user_version`. A database is brought up to date one
migration at a time inside a transaction; one from a newer milepost is left alone.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Dict

from ..errors import MilepostError

SCHEMA_VERSION = 7

_V1 = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    elapsed REAL,
    total INTEGER,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    host TEXT,
    pid INTEGER,
    argv TEXT,
    resumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_name ON runs (name, started_at);
CREATE TABLE phases (
    run_id TEXT NOT NULL REFERENCES runs (id),
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    elapsed REAL,
    rate REAL,
    mean_item_seconds REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, path)
);
CREATE TABLE workers (
    run_id TEXT NOT NULL REFERENCES runs (id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL,
    duration REAL,
    error TEXT,
    metrics TEXT
);
CREATE INDEX items_by_run ON items (run_id, phase, status);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    level TEXT,
    source TEXT,
    path TEXT,
    message TEXT,
    data TEXT
);
CREATE INDEX events_by_run ON events (run_id, ts);
"""

# Version 2: the counts a resumed run takes over besides its item rows. A node's own done and
# skipped counted without an item context (advance, skip, loops) are kept apart from the items
# the `items` table has rows for, which a resumed run counts from those rows: a count and the
# rows it stands for can then never disagree. Existing rows get their estimate: what the node
# counted beyond its item rows and its direct children's counts.
_V2 = """
ALTER TABLE phases ADD COLUMN explicit_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE phases ADD COLUMN explicit_skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN explicit_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN explicit_skipped INTEGER NOT NULL DEFAULT 0;
UPDATE phases SET
    explicit_done = max(0, done
        - (SELECT count(*) FROM items i WHERE i.run_id = phases.run_id AND i.phase = phases.path
           AND i.status = 'done')
        - (SELECT coalesce(sum(c.done), 0) FROM phases c WHERE c.run_id = phases.run_id
           AND substr(c.path, 1, length(phases.path) + 1) = phases.path || '/'
           AND instr(substr(c.path, length(phases.path) + 2), '/') = 0)),
    explicit_skipped = max(0, skipped
        - (SELECT count(*) FROM items i WHERE i.run_id = phases.run_id AND i.phase = phases.path
           AND i.status = 'skipped')
        - (SELECT coalesce(sum(c.skipped), 0) FROM phases c WHERE c.run_id = phases.run_id
           AND substr(c.path, 1, length(phases.path) + 1) = phases.path || '/'
           AND instr(substr(c.path, length(phases.path) + 2), '/') = 0));
UPDATE runs SET
    explicit_done = max(0, done
        - (SELECT count(*) FROM items i WHERE i.run_id = runs.id AND i.phase = '' AND i.status = 'done')
        - (SELECT coalesce(sum(c.done), 0) FROM phases c WHERE c.run_id = runs.id AND instr(c.path, '/') = 0)),
    explicit_skipped = max(0, skipped
        - (SELECT count(*) FROM items i WHERE i.run_id = runs.id AND i.phase = '' AND i.status = 'skipped')
        - (SELECT coalesce(sum(c.skipped), 0) FROM phases c WHERE c.run_id = runs.id AND instr(c.path, '/') = 0));
"""

# Version 3: what a run is about (`Run(meta=...)`: model, provider, experiment), a JSON object.
_V3 = """
ALTER TABLE runs ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
"""

# Version 4: what the run's processes used (`Run(resources=...)`): the CPU seconds of its process
# tree and its peak resident memory. Null for runs that sampled nothing (and those before).
_V4 = """
ALTER TABLE runs ADD COLUMN cpu_seconds REAL;
ALTER TABLE runs ADD COLUMN peak_rss_bytes INTEGER;
"""

# The id the next item row gets, past both tables' rows (see `_V5`).
NEXT_ITEM_ID = (
    "max(coalesce((SELECT id + n FROM item_chunks ORDER BY id DESC LIMIT 1), 1), "
    "coalesce((SELECT max(id) FROM item_rows), 0) + 1)"
)

# Rows inserted into the `items` view (an older writer's, a tool's) go to `item_rows`.
_ITEMS_INSERT = f"""
CREATE TRIGGER items_insert INSTEAD OF INSERT ON items BEGIN
    INSERT INTO item_rows (id, run_id, phase, name, status, started_at, duration, error, metrics)
    VALUES ({NEXT_ITEM_ID}, NEW.run_id, NEW.phase, NEW.name, NEW.status, NEW.started_at, NEW.duration,
            NEW.error, NEW.metrics);
END"""

# Version 5: item rows are stored a chunk at a time. SQLite took about 2.6 µs of CPU to insert
# one row into an indexed table (the writer's whole cost in a pool of 10 µs items); a chunk of
# up to a thousand rows (or a pool's chunk) is one row of `item_chunks`, the JSON array the row
# buffer encoded (each element: phase, name, status, start, duration, error, metrics; the run is
# the chunk's), stored as it came, about a tenth of that, with its rows' counts by status: the
# reads that need all of a run's rows (`persistence.items`) unpack them in Python, counts and
# failures come from the counts, and the newest rows from the newest chunks only. Row `k` of
# a chunk has id `chunk id + k`: ids stay unique and in the order rows were kept across both
# tables. `items` is now a view of both, read as the table was; an insert into it (an older
# writer's, a tool's) goes to `item_rows`, the table the rows kept before this version stay in.
_V5 = f"""
ALTER TABLE items RENAME TO item_rows;
CREATE TABLE item_chunks (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    rows TEXT NOT NULL
);
CREATE INDEX item_chunks_by_run ON item_chunks (run_id, id);
CREATE VIEW items (id, run_id, phase, name, status, started_at, duration, error, metrics) AS
    SELECT id, run_id, phase, name, status, started_at, duration, error, metrics FROM item_rows
    UNION ALL
    SELECT c.id + j.key, c.run_id, j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4,
           j.value->>5, j.value->>6
    FROM item_chunks c, json_each(c.rows) j;
{_ITEMS_INSERT}
"""

# Version 6: a process pool's chunk is stored short. Its rows share their phase and the start
# they are timed from (`phase`, `t0`: NULL for a chunk of whole rows; the pool's start, so that
# the chunks of its workers join into one), and each is `[name,
# microseconds from t0 to its start, its duration in nanoseconds]`, then its status (none:
# done), error and metrics as far as it has them; a name that is an integer's decimal text is
# that number. About a quarter of the bytes, and SQLite's cost of keeping a chunk (its pages,
# the WAL, the checkpoint) goes with its bytes (docs/benchmarks.md). `items` reads both kinds.
_V6 = f"""
ALTER TABLE item_chunks ADD COLUMN phase TEXT;
ALTER TABLE item_chunks ADD COLUMN t0 REAL;
DROP VIEW items;
CREATE VIEW items (id, run_id, phase, name, status, started_at, duration, error, metrics) AS
    SELECT id, run_id, phase, name, status, started_at, duration, error, metrics FROM item_rows
    UNION ALL
    SELECT c.id + j.key, c.run_id, j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4,
           j.value->>5, j.value->>6
    FROM item_chunks c, json_each(c.rows) j WHERE c.phase IS NULL
    UNION ALL
    SELECT c.id + j.key, c.run_id, c.phase, CAST(j.value->>0 AS TEXT), coalesce(j.value->>3, 'done'),
           c.t0 + (j.value->>1) / 1e6, (j.value->>2) / 1e9, j.value->>4, j.value->>5
    FROM item_chunks c, json_each(c.rows) j WHERE c.phase IS NOT NULL;
{_ITEMS_INSERT}
"""

# A phase's unit (`phase(name, unit="doc")`) and tqdm's unit_divisor: `milepost show` and the
# dashboard's past runs gave every rate in it/s.
_V7 = """
ALTER TABLE phases ADD COLUMN unit TEXT;
ALTER TABLE phases ADD COLUMN unit_divisor INTEGER;
"""

MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], object]] = {
    1: lambda db: _script(db, _V1),
    2: lambda db: _script(db, _V2),
    3: lambda db: _script(db, _V3),
    4: lambda db: _script(db, _V4),
    5: lambda db: _script(db, _V5),
    6: lambda db: _script(db, _V6),
    7: lambda db: _script(db, _V7),
}


def _script(db: sqlite3.Connection, script: str) -> None:
    """Runs `script` statement by statement inside the caller's transaction (`executescript`
    would commit first). A statement ends at a `;` that ends it for SQLite: a trigger's body
    holds statements of its own."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""
    if statement.strip(" \n;"):
        db.execute(statement)


class SchemaError(MilepostError):
    """The database was written by a newer milepost."""


def migrate(db: sqlite3.Connection) -> int:
    """Brings `db` to `SCHEMA_VERSION`, one migration a transaction (two processes opening the
    same new database at once: the second waits for the first and finds it done); returns the
    version it had."""
    first = db.execute("PRAGMA user_version").fetchone()[0]
    if first > SCHEMA_VERSION:
        raise SchemaError(f"history schema {first} is newer than this milepost's ({SCHEMA_VERSION})")
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return int(first)
            MIGRATIONS[found + 1](db)
            db.execute(f"PRAGMA user_version = {found + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
