"""Every read of the history database: the runs, one run, its logs, stats across runs, the run
to resume and its counts, and the pace of earlier runs. The CLI, the dashboard and `Run`
(resume, ETA from history) all ask here; no SQL lives anywhere else outside `persistence`.

Writes go the other way: run, phase and worker rows through `HistoryObserver`, item rows through
`Store.buffer` / `Store.item` (the hot path), all written by the store's one writer thread.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Optional, Set, Tuple, Type, Union

from ..errors import InvalidValueError, MilepostError
from ..pids import HOST, alive_since
from .failures import recorded_failures, recorded_retries
from .items import Row as ItemRow
from .items import finished_items, item_counts, newest_rows
from .logs import log_row, rows_matching
from .money import cost_of
from .paths import display_path, path_levels
from .records import (
    AT_WORK,
    ItemCounts,
    ItemRecord,
    LogRecord,
    PhaseRecord,
    RunDetail,
    RunRecord,
    Stats,
    Summary,
    WorkerRecord,
)
from .reports import recorded_reports
from .store import connect, default_path

# Every column: a history read where it is (not upgraded) may be of a version before the
# phase's unit (7).
_PHASES = "SELECT * FROM phases WHERE run_id = ? ORDER BY rowid"
_LOGS = "SELECT id, data FROM events WHERE run_id = ? AND kind IN ('log', 'item_failed') AND id > ? ORDER BY id"
_RECENT_COMPLETED = (
    "SELECT id FROM runs WHERE name = ? AND status = 'completed' AND id != ? ORDER BY started_at DESC LIMIT ?"
)


class NoHistory(MilepostError, LookupError):
    """There is no history database, or no such run in it."""


#: What a read raises when the file cannot be read as a history (locked for too long, damaged,
#: not a database): callers that must not fail (the dashboard) catch it without naming SQLite.
Unreadable = sqlite3.Error


@dataclass(frozen=True)
class ResumePoint:
    """What the history holds of a run for the run that continues it, per node path (`""` is
    the run itself)."""

    #: Item names recorded done or skipped (what `pending()` leaves out).
    finished: Dict[str, Set[str]]
    #: Items recorded done and skipped, counted from their rows.
    items: Dict[str, Tuple[int, int]]
    #: Done and skipped counted without an item (advance, skip, loops).
    explicit: Dict[str, Tuple[int, int]]
    resumed: int
    started_at: float
    #: Seconds the run had run.
    elapsed: float
    #: What the run was about (`Run(meta=...)`): the resumed run starts from it.
    meta: Dict[str, Any]
    #: CPU seconds and peak memory of its processes so far (None: never sampled).
    cpu_seconds: Optional[float] = None
    peak_rss_bytes: Optional[int] = None


#: Milepost's own warnings a run's detail lists at most.
MAX_NOTICES = 50


class History:
    """Reads of one history database, over a read-only connection (close it, or use `with`)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @classmethod
    def open(cls, path: Optional[Union[str, Path]] = None) -> History:
        """The history at `path` (default: `default_path()`); NoHistory if there is none."""
        db_path = Path(path) if path else default_path()
        if not db_path.exists():
            raise NoHistory(f"no run history at {db_path} (runs are kept there by default; MILEPOST_HOME moves it)")
        try:
            db = connect(db_path, readonly=True)
        except sqlite3.DatabaseError as e:  # not SQLite at all (a text file, a truncated copy)
            raise NoHistory(f"{db_path} is not a milepost run history ({e})") from None
        except IsADirectoryError as e:  # `connect` says why
            raise NoHistory(f"{db_path} is {e.strerror}") from None
        try:
            kept = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
            versioned = db.execute("PRAGMA user_version").fetchone()[0] > 0  # milepost numbers its schema
        except sqlite3.DatabaseError as e:
            kept, why = None, f" ({e})"
        else:
            why = ": it has no runs table" if kept is None else ": its schema has no version"
            kept = kept if versioned else None
        if kept is None:  # another program's database (a runs table of its own), or an empty file
            db.close()
            raise NoHistory(f"{db_path} is not a milepost run history{why}")
        return cls(db)

    def close(self) -> None:
        """Closes the connection."""
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def status(self, run_id: str) -> Optional[str]:
        """The run's status as the history has it (`crashed` for a dead `running` one), or None."""
        sql = "SELECT status, host, pid, started_at, resumed FROM runs WHERE id = ?"
        row = self.db.execute(sql, (run_id,)).fetchone()
        return _status(row) if row is not None else None

    # -- runs ---------------------------------------------------------------------------------
    def runs(self, name: Optional[str] = None, limit: int = 20, offset: int = 0) -> List[RunRecord]:
        """The runs, newest first: all of them or those called `name`, `limit` from `offset`."""
        for label, value, low in (("limit", limit, 1), ("offset", offset, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidValueError(f"{label} must be an int >= {low}, got {value!r}")
        where, args = (" WHERE name = ?", [name]) if name else ("", [])
        sql = f"SELECT * FROM runs{where} ORDER BY started_at DESC LIMIT ? OFFSET ?"
        return [run_record(r) for r in self.db.execute(sql, (*args, limit, offset))]

    def find_run(self, which: str) -> RunRecord:
        """The run with id `which`, else the latest run called `which`; NoHistory if none."""
        row = (
            self.db.execute("SELECT * FROM runs WHERE id = ?", (which,)).fetchone()
            or self.db.execute(
                "SELECT * FROM runs WHERE name = ? ORDER BY started_at DESC LIMIT 1", (which,)
            ).fetchone()
        )
        if row is None:
            raise NoHistory(f"no run with id or name {which!r}")
        return run_record(row)

    def run(self, which: str, failures: Optional[int] = 20) -> RunDetail:
        """A run (by id, or the latest of a name) with its phases, workers, its newest
        `failures` failures (None: all of them; `failures_recorded` says how many there are) and
        what its items reported (`reports`)."""
        run = self.find_run(which)
        recorded = recorded_failures(self.db, run["id"])
        n, done = item_counts(self.db, run["id"])
        phases, workers = self.phases(run["id"]), self.workers(run["id"])
        if run["status"] == "crashed":
            # Killed before it could write its end: what was running then did not go on (the
            # monitor shows a crashed run's phases the same way).
            phases = [{**p, "status": "crashed"} if p["status"] == "running" else p for p in phases]
            workers = [{**w, "state": "lost"} if w["state"] in AT_WORK else w for w in workers]
        return {
            **run,
            "phases": phases,
            "workers": workers,
            "failures": recorded if failures is None else recorded[:failures],
            "failures_recorded": len(recorded),
            "items": ItemCounts(n=n, done=done),
            "reports": recorded_reports(self.db, run["id"]),
            "retries": recorded_retries(self.db, run["id"]),
            "notices": self.logs(run["id"], level="warning", source="milepost")[:MAX_NOTICES],
        }

    def phases(self, run_id: str) -> List[PhaseRecord]:
        """A run's phases and steps, in the order they started."""
        return [phase_record(r) for r in self.db.execute(_PHASES, (run_id,))]

    def workers(self, run_id: str) -> List[WorkerRecord]:
        """A run's worker lanes as last written, by name, numbers in it by value (w2 before w10)."""
        rows = self.db.execute("SELECT name, state, done, failed FROM workers WHERE run_id = ?", (run_id,))
        out: List[WorkerRecord] = [
            {"name": r["name"], "state": r["state"], "done": r["done"], "failed": r["failed"]} for r in rows
        ]
        return sorted(out, key=lambda w: _natural(w["name"]))

    def logs(
        self, run_id: str, level: Optional[str] = None, source: Optional[str] = None, after: int = 0
    ) -> List[LogRecord]:
        """A run's log lines and failures after row id `after`, at `level` or worse, from
        `source`: rows of the shape a live run's log pane has (`persistence.logs`)."""
        rows = (log_row(r["id"], json.loads(r["data"] or "{}")) for r in self.db.execute(_LOGS, (run_id, after)))
        return rows_matching(rows, level, source, after)

    def recent_items(self, run_id: str, limit: int = 20, after: int = 0) -> List[ItemRecord]:
        """A run's newest `limit` finished items (row id above `after`), newest first, each
        with its own metrics: what a live run's monitor lists as it goes."""
        return [item_record(r) for r in newest_rows(self.db, run_id, limit, after)]

    def stats(self, name: str, limit: int) -> Stats:
        """Durations, costs and success across the latest `limit` runs called `name`."""
        runs = list(reversed(self.runs(name, limit)))
        if not runs:
            raise NoHistory(f"no runs called {name!r}")
        return {
            "name": name,
            "runs": runs,
            "duration": summary([r["elapsed"] for r in runs if r["elapsed"] is not None]),
            "cost": summary([r["cost"] for r in runs if r["cost"] is not None]),
            "success_rate": summary([r["success_rate"] for r in runs if r["success_rate"] is not None]),
            "cpu_seconds": summary([r["cpu_seconds"] for r in runs if r["cpu_seconds"] is not None]),
            "peak_rss_bytes": summary([float(r["peak_rss_bytes"]) for r in runs if r["peak_rss_bytes"] is not None]),
        }

    # -- what a new run takes from earlier ones -----------------------------------------------
    def resumable(self, name: str, which: Union[bool, str]) -> Optional[str]:
        """The run to continue: `which` is True (the latest unfinished run called `name`) or an
        id (that run, whatever its name)."""
        if which is True:
            row = self.db.execute(
                "SELECT id FROM runs WHERE name = ? AND status != 'completed' ORDER BY started_at DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = self.db.execute("SELECT id FROM runs WHERE id = ?", (str(which),)).fetchone()
        # Whether another process has it is for the claim to say (`resume.claim`), under a lock.
        return None if row is None else str(row["id"])

    def resume_point(self, run_id: str) -> ResumePoint:
        """What the run `run_id` reached. Counts of items come from the item rows, never from a
        saved count: the rows and a count saved a moment apart could disagree, and a resumed run
        would skip items it never counts (or count items it runs again)."""
        explicit = {
            r["path"]: (r["explicit_done"], r["explicit_skipped"])
            for r in self.db.execute(
                "SELECT path, explicit_done, explicit_skipped FROM phases WHERE run_id = ?", (run_id,)
            )
        }
        finished: Dict[str, Set[str]] = {}
        items: Dict[str, Tuple[int, int]] = {}
        for phase, name, status in finished_items(self.db, run_id):
            finished.setdefault(phase, set()).add(name)
            done, skipped = items.get(phase, (0, 0))
            items[phase] = (done + 1, skipped) if status == "done" else (done, skipped + 1)
        row = self.db.execute(
            "SELECT resumed, started_at, elapsed, explicit_done, explicit_skipped, meta, cpu_seconds, peak_rss_bytes "
            "FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise NoHistory(f"no run with id {run_id!r}")
        explicit[""] = (row["explicit_done"], row["explicit_skipped"])
        return ResumePoint(
            finished,
            items,
            explicit,
            int(row["resumed"]),
            float(row["started_at"]),
            float(row["elapsed"] or 0.0),
            _json_object(row["meta"]),
            row["cpu_seconds"],
            row["peak_rss_bytes"],
        )

    def prior_rates(self, name: str, exclude: str, runs: int = 5) -> Dict[str, float]:
        """Per phase path, the median rate (items per second) of the last `runs` completed runs
        called `name` (but `exclude`): an ETA for a new run's phases before they have a pace."""
        rates: Dict[str, List[float]] = {}
        for (run_id,) in self.db.execute(_RECENT_COMPLETED, (name, exclude, runs)).fetchall():
            for r in self.db.execute(
                "SELECT path, done + failed + skipped AS n, elapsed FROM phases WHERE run_id = ?", (run_id,)
            ):
                if r["elapsed"] and r["n"]:
                    rates.setdefault(r["path"], []).append(r["n"] / r["elapsed"])
        return {path: sorted(v)[len(v) // 2] for path, v in rates.items()}


#: What `refuse_if_running` reads of a run's row.
RUNNING_COLUMNS = "id, name, status, started_at, host, pid, resumed"


def refuse_if_running(row: Any) -> None:
    """A run to resume whose process is still at it on this machine is refused: two processes
    would run the same items, and the history would hold each of them twice. This process's
    own runs are the caller's to judge (a `Run` made to resume one and never started holds it
    here, and must not keep the process from resuming it)."""
    if row["host"] == HOST and row["pid"] != os.getpid() and _status(row) == "running":
        raise MilepostError(
            f"run {row['name']!r} ({row['id']}) is still running in process {row['pid']} on this machine: "
            "resuming it now would run its items twice; let it end, or stop it first "
            f"(milepost cancel {row['id']})"
        )


def _status(row: Any) -> str:
    """A run's status, `crashed` for one still `running` in the history whose process on this
    machine is gone (killed before it could write its end)."""
    status = str(row["status"])
    keys = row.keys()
    if status == "running" and "pid" in keys and "host" in keys and row["host"] == HOST and row["pid"]:
        # A run's start is its process's unless it was resumed (its row keeps the first start):
        # a process that started after it only reuses the pid.
        since = float(row["started_at"]) if "resumed" in keys and not row["resumed"] else None
        if not alive_since(int(row["pid"]), since):
            return "crashed"
    return status


def run_record(row: Any) -> RunRecord:
    """A run's row as a record (with what every display derives: processed, success, cost)."""
    metrics = json.loads(row["metrics"] or "{}")
    judged = row["done"] + row["failed"]
    return {
        "id": row["id"],
        "name": row["name"],
        "status": _status(row),
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "elapsed": row["elapsed"],
        "total": row["total"],
        "processed": row["done"] + row["failed"] + row["skipped"],
        "done": row["done"],
        "failed": row["failed"],
        "skipped": row["skipped"],
        "retried": row["retried"],
        "success_rate": (row["done"] / judged) if judged else None,
        "metrics": metrics,
        "cost": cost_of(metrics),
        "resumed": row["resumed"],
        "meta": _json_object(row["meta"]) if "meta" in row.keys() else {},
        "cpu_seconds": row["cpu_seconds"] if "cpu_seconds" in row.keys() else None,
        "peak_rss_bytes": row["peak_rss_bytes"] if "peak_rss_bytes" in row.keys() else None,
    }


def _json_object(text: Optional[str]) -> Dict[str, Any]:
    """A JSON object column; anything else (a row written by hand) reads as empty."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def item_record(row: ItemRow) -> ItemRecord:
    """An item's row (`items.Row`) as a record (its metrics parsed, its cost summed)."""
    row_id, phase, name, status, started_at, duration, error, metrics_text = row
    metrics = json.loads(metrics_text or "{}")
    return {
        "id": row_id,
        "phase": phase,
        "name": name,
        "status": status,
        "started_at": started_at,
        "duration": duration,
        "error": error,
        "metrics": metrics,
        "cost": cost_of(metrics),
    }


def _natural(name: str) -> List[Tuple[int, Union[int, str]]]:
    """A name's sort key with its runs of digits as numbers: w0, w1, w2, w10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part]


def phase_record(row: Any) -> PhaseRecord:
    """A phase's row as a record: `path` as stored, `display` as `milepost show` prints it."""
    metrics = json.loads(row["metrics"] or "{}")
    processed = row["done"] + row["failed"] + row["skipped"]
    # The rate kept is the live one at the end, which a short phase never had: then its
    # average (as `show`'s table gave, while its CSV and JSON said nothing).
    rate = row["rate"] if row["rate"] is not None else (processed / row["elapsed"] if row["elapsed"] else None)
    return {
        "path": row["path"],
        "name": row["name"],
        "kind": row["kind"],
        "status": row["status"],
        "total": row["total"],
        "done": row["done"],
        "failed": row["failed"],
        "skipped": row["skipped"],
        "retried": row["retried"],
        "elapsed": row["elapsed"],
        "rate": rate,
        "mean_item_seconds": row["mean_item_seconds"],
        "metrics": metrics,
        "processed": processed,
        "cost": cost_of(metrics),
        "display": display_path(path_levels(row["path"])),
        "unit": (row["unit"] if "unit" in row.keys() else None) or "it",
        "unit_divisor": row["unit_divisor"] if "unit_divisor" in row.keys() else None,
    }


def summary(values: List[float]) -> Optional[Summary]:
    """min, median, max and the last of `values` (oldest first), or None without any."""
    if not values:
        return None
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1], "last": values[-1]}
