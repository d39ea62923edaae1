"""Writing a run into the history: its row, its phases, workers and events (an observer).
Item rows take the hot path instead (`Store.buffer`, `Store.item`); reads are in `reads`."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple

from ..events import Event, ItemDetails, ItemFailed, ItemRetried, LogLine, RunFinished
from ..observers.base import BaseObserver
from ..pids import HOST
from ..snapshot import node_paths
from .records import AT_WORK
from .store import Store

if TYPE_CHECKING:
    from ..snapshot import ResourcesData, Snapshot

# The run's first row: a resumed run keeps the counts its history shows until its own first
# snapshot replaces them (a resumed run killed at once must not read "0 done").
_RUN_START = """
INSERT INTO runs (id, name, status, started_at, host, pid, argv, resumed, meta)
VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET status = 'running', ended_at = NULL, pid = excluded.pid, argv = excluded.argv,
    host = excluded.host, resumed = excluded.resumed, meta = excluded.meta
"""

_LANES_LOST = f"UPDATE workers SET state = 'lost' WHERE run_id = ? AND state IN {AT_WORK!r}"

_RUN_UPDATE = """
UPDATE runs SET status = ?, ended_at = ?, elapsed = ?, total = ?, done = ?, failed = ?, skipped = ?, retried = ?,
    metrics = ?, explicit_done = ?, explicit_skipped = ?, meta = ?, cpu_seconds = ?, peak_rss_bytes = ? WHERE id = ?
"""

_PHASE_UPSERT = """
INSERT INTO phases (run_id, path, name, kind, status, total, done, failed, skipped, retried, elapsed, rate,
                    mean_item_seconds, metrics, explicit_done, explicit_skipped, unit, unit_divisor)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, path) DO UPDATE SET name = excluded.name, status = excluded.status, total = excluded.total,
    done = excluded.done, failed = excluded.failed, skipped = excluded.skipped, retried = excluded.retried,
    elapsed = excluded.elapsed, rate = excluded.rate, mean_item_seconds = excluded.mean_item_seconds,
    metrics = excluded.metrics, explicit_done = excluded.explicit_done, explicit_skipped = excluded.explicit_skipped,
    unit = excluded.unit, unit_divisor = excluded.unit_divisor
"""

_WORKER_UPSERT = """
INSERT INTO workers (run_id, name, state, done, failed) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (run_id, name) DO UPDATE SET state = excluded.state, done = excluded.done, failed = excluded.failed
"""


class HistoryObserver(BaseObserver):
    """Writes the run's row, its phases and workers every `interval` seconds and at every
    boundary, and its events as they come."""

    snapshot_on_boundaries = True

    def __init__(
        self,
        store: Store,
        run_id: str,
        name: str,
        started_at: float,
        resumed: int,
        elapsed_before: float = 0.0,
        interval: float = 1.0,
        meta: Callable[[], Dict[str, Any]] = dict,
        used_before: Tuple[Optional[float], Optional[int]] = (None, None),
        carried: Sequence[Tuple[str, Optional[int], int, int, int]] = (),
    ) -> None:
        self.store = store
        #: The run's `meta` (JSON-ready; a resumed run's starts from what it had).
        self._meta = meta
        self.interval = interval
        self._id = run_id
        #: Seconds the runs this one resumes had run: a resumed run's duration adds them up.
        self._before = elapsed_before
        #: CPU seconds and peak memory of the runs this one resumes: added to, and kept.
        self._used_before = used_before
        #: The top-level phases of the run this one resumes: `(path, total, done, failed,
        #: skipped)`. Until it makes one again, its counts are the run's still (a resumed run
        #: that ended before making its phases wrote 0 done over them).
        self._carried = list(carried)
        self._name = name
        self._started_at = started_at
        self._resumed = resumed

    def start(self) -> None:
        # On the job's thread as the run starts (not when it is made: a run made and never
        # started leaves no row, where it left one that later read as crashed and resumable).
        # Fixed for the life of the run (a resumed run is a new process: its own observer).
        # The host as the history's readers judge a run's process by (`pids.HOST`, asked once).
        host, pid, argv = HOST, os.getpid(), json.dumps(sys.argv)
        row = (self._id, self._name, self._started_at, host, pid, argv, self._resumed, json.dumps(self._meta()))
        self.store.execute(_RUN_START, row)
        if self._resumed:
            # The lanes of the attempt before, which ended without a word (killed), ended with
            # it: a completed run does not list them as still at work.
            self.store.execute(_LANES_LOST, (self._id,))
            # Written before the job goes on: a resumed run killed at once must not leave the
            # history saying it was never resumed (the counts it took over are in the row).
            self.store.flush(timeout=5.0)
        else:
            # Written at once by the writer, without holding up the job's start (a run is in the
            # history within milliseconds; one killed before that has nothing to keep yet).
            self.store.wake()

    def on_event(self, event: Event) -> None:
        if not isinstance(event, (ItemFailed, ItemRetried, ItemDetails, LogLine, RunFinished)):
            return  # phase rows carry the rest
        data = event.to_dict()
        message = getattr(event, "message", None) or getattr(event, "error", None)
        self.store.execute(
            "INSERT INTO events (run_id, ts, kind, level, source, path, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._id,
                event.timestamp,
                event.kind,
                getattr(event, "level", None),
                getattr(event, "source", None),
                "/".join(event.path[1:]),
                message,
                json.dumps(data),
            ),
        )

    def on_snapshot(self, snapshot: Snapshot) -> None:
        kept = snapshot.kept()
        root = kept["root"]
        explicit = {path: (done, skipped) for path, _, done, skipped in snapshot.explicit_counts()}
        status = root["state"]
        elapsed = None if root["elapsed"] is None else self._before + root["elapsed"]
        total, done, failed, skipped = self._with_carried(root)
        self.store.execute(
            _RUN_UPDATE,
            (
                status,
                None if status == "running" else time.time(),
                elapsed,
                total,
                done,
                failed,
                skipped,
                root["retried"],
                json.dumps(root["metrics"]),
                *explicit.get("", (0, 0)),
                json.dumps(self._meta()),
                *self._used(kept["resources"]),
                self._id,
            ),
        )
        for path, node in node_paths(root):
            self.store.execute(
                _PHASE_UPSERT,
                (
                    self._id,
                    path,
                    node["name"],
                    node["kind"],
                    node["state"],
                    node["total"],
                    node["done"],
                    node["failed"],
                    node["skipped"],
                    node["retried"],
                    node["elapsed"],
                    node["rate"],
                    node["mean_item_seconds"],
                    json.dumps(node["metrics"]),
                    *explicit.get(path, (0, 0)),
                    node["unit"],
                    node["unit_divisor"],
                ),
            )
        for lane in kept["lanes"]:
            self.store.execute(_WORKER_UPSERT, (self._id, lane["name"], lane["state"], lane["done"], lane["failed"]))

    def _with_carried(self, root: Any) -> Tuple[Optional[int], int, int, int]:
        """The run's total and counts, with those of the phases it resumes that it has not
        made again."""
        total, done, failed, skipped = root["total"], root["done"], root["failed"], root["skipped"]
        if not self._carried:
            return total, done, failed, skipped
        made = {child["path"] for child in root["children"]}
        for path, t, d, f, s in self._carried:
            if path not in made:
                total = None if total is None or t is None else total + t
                done, failed, skipped = done + d, failed + f, skipped + s
        return total, done, failed, skipped

    def _used(self, r: Optional[ResourcesData]) -> Tuple[Optional[float], Optional[int]]:
        """CPU seconds and peak memory of the run's processes (`r`, the snapshot's resources),
        those of the runs it resumes included (None when nothing was ever sampled)."""
        cpu, peak = self._used_before
        if r is None:
            return cpu, peak
        return (cpu or 0.0) + r["cpu_seconds"], max(peak or 0, r["peak_rss_bytes"])
