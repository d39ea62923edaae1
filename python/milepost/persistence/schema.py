"""The history database's schema and its migrations.

The schema version is SQLite's `PRAGMA user_version`. A database is brought up to date one
migration at a time inside a transaction; one from a newer milepost is left alone.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Dict

SCHEMA_VERSION = 1

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

MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], object]] = {
    1: lambda db: db.executescript(_V1),
}


class SchemaError(Exception):
    """The database was written by a newer milepost."""


def migrate(db: sqlite3.Connection) -> int:
    """Brings `db` to `SCHEMA_VERSION`; returns the version it had."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise SchemaError(f"history schema {found} is newer than this milepost's ({SCHEMA_VERSION})")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with db:
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version}")
    return int(found)
