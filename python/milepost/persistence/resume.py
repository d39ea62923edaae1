"""What a new run takes from the history: the run it resumes and that run's counts, and the
pace earlier runs of its name reached (an ETA before its own first items)."""

from __future__ import annotations

import os
import sqlite3
from typing import Dict, List, Optional, Set, Tuple, Union

from ..pids import HOST
from .reads import RUNNING_COLUMNS, History, refuse_if_running
from .store import Store


class Resume:
    """What a resumed run takes over from the run it continues, per node path (`""` is the run
    itself): the items recorded done or skipped (their names, for `pending()`, and how many),
    and the counts the node reached without an item context (`advance`, `skip`, loops).

    Args:
        store: The run's store (its database is read, not written).
        run_id: The run to continue (found by `find_resumable`).
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.run_id = run_id
        with History.open(store.path) as history:
            point = history.resume_point(run_id)
            #: Its top-level phases as the history has them: `(path, total, done, failed,
            #: skipped)`, counted in the run's row until the resumed run makes them again.
            self.phases: List[Tuple[str, Optional[int], int, int, int]] = [
                (p["path"], p["total"], p["done"], p["failed"], p["skipped"])
                for p in history.phases(run_id)
                if "/" not in p["path"]
            ]
        self.finished: Dict[str, Set[str]] = point.finished
        self.items: Dict[str, Tuple[int, int]] = point.items
        self.explicit: Dict[str, Tuple[int, int]] = point.explicit
        self.resumed, self.started_at = point.resumed, point.started_at
        #: Seconds the run had run before (its duration goes on from there).
        self.elapsed = point.elapsed
        #: Its `meta`: kept, under the keys the resumed run sets again.
        self.meta = point.meta
        #: What its processes had used (CPU seconds, peak memory): the resumed run adds to them.
        self.cpu_seconds, self.peak_rss_bytes = point.cpu_seconds, point.peak_rss_bytes

    def counts(self, path: str) -> Tuple[int, int, int, int]:
        """What the node at `path` starts from: items done and skipped (from their rows), then
        done and skipped counted otherwise."""
        return (*self.items.get(path, (0, 0)), *self.explicit.get(path, (0, 0)))


def claim(store: Store, run_id: str, resumed: int) -> None:
    """Marks the run `run_id` as this process's (its pid and host, `running`, resumed
    `resumed` times), in one transaction that first checks that no other live process of this
    machine did so since it was found: two processes resuming a run at once both went ahead,
    and the history held their items twice."""
    db = sqlite3.connect(str(store.path), timeout=30)
    try:
        db.row_factory = sqlite3.Row
        db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes: the check holds
        try:
            row = db.execute(f"SELECT {RUNNING_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                refuse_if_running(row)
                db.execute(
                    "UPDATE runs SET status = 'running', ended_at = NULL, host = ?, pid = ?, resumed = ? WHERE id = ?",
                    (HOST, os.getpid(), resumed, run_id),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def find_resumable(store: Store, name: str, which: Union[bool, str]) -> Optional[str]:
    """The run to continue: `which` is True (the latest unfinished run called `name`) or an id;
    None when there is none (or no history to look in)."""
    if not store.enabled or not store.path.exists():
        return None
    with History.open(store.path) as history:
        return history.resumable(name, which)


def prior_rates(store: Store, name: str, exclude: str, runs: int = 5) -> Dict[str, float]:
    """Per phase path, the median rate of the last `runs` completed runs called `name`
    (`History.prior_rates`); empty without a history."""
    if not store.path.exists():
        return {}
    with History.open(store.path) as history:
        return history.prior_rates(name, exclude, runs)
