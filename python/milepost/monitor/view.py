"""What the monitor shows at one moment: the run's description, its latest published state, its
newest finished items from the history, and the time it is now (given by the app's clock, so
that a test can fix it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..live.reader import LiveRun, LiveState
from ..persistence.records import ItemRecord

__all__ = ["View", "ENDINGS"]

#: How a run that is over ended, in words.
ENDINGS = {
    "completed": "completed: every item was processed",
    "failed": "failed: the job raised or items failed",
    "cancelled": "cancelled: stopped on request; items in flight finished",
    "crashed": "crashed: the job's process is gone without saying how it ended (last published counts shown)",
}


#: Seconds without a publication after which a running run is said to be silent (it publishes
#: four times a second: a full disk, or a job that stopped its own dispatcher).
SILENT_AFTER = 5.0


@dataclass
class View:
    run: LiveRun
    state: LiveState
    now: float
    items: List[ItemRecord] = field(default_factory=list)
    #: Why the history cannot be read (None: it was read, or there is nothing to read yet).
    items_note: Optional[str] = None

    @property
    def root(self) -> Dict[str, Any]:
        return self._settled(self.state.root)

    def _settled(self, node: Dict[str, Any]) -> Dict[str, Any]:
        """A node as shown: in a crashed run, what was running when it last published is
        crashed now, with no rate or ETA (its counts stay as published)."""
        if self.state.state == "crashed" and node.get("state") == "running":
            return {**node, "state": "crashed", "rate": None, "eta": None}
        return node

    @property
    def silent_for(self) -> Optional[float]:
        """Seconds since a running run last published, when that is long enough to say so."""
        if self.ended or not self.state.published:
            return None
        quiet = self.now - self.state.published
        return quiet if quiet >= SILENT_AFTER else None

    @property
    def ended(self) -> bool:
        return self.state.ended

    @property
    def elapsed(self) -> Optional[float]:
        """Seconds the run has run: as published, plus the time since while it runs (a run that
        ended, or crashed, stopped its clock when it last published)."""
        elapsed = self.root.get("elapsed")
        if elapsed is None:
            return None if self.ended or not self.run.started_at else max(0.0, self.now - self.run.started_at)
        if self.ended or not self.state.published:
            return float(elapsed)
        return float(elapsed) + max(0.0, self.now - self.state.published)

    @property
    def phases(self) -> List[Dict[str, Any]]:
        """The run's nodes below it, depth-first, each with its `depth` (1: a phase)."""
        out: List[Dict[str, Any]] = []
        stack = [(1, child) for child in reversed(self.root.get("children") or [])]
        while stack:
            depth, node = stack.pop()
            out.append({**self._settled(node), "depth": depth})
            stack.extend((depth + 1, child) for child in reversed(node.get("children") or []))
        return out

    @property
    def resources(self) -> Optional[Dict[str, Any]]:
        """The run's latest resource sample (its processes and disks), or None without one."""
        found = self.state.snapshot.get("resources")
        return found if isinstance(found, dict) else None

    @property
    def lanes(self) -> List[Dict[str, Any]]:
        return list(self.state.snapshot.get("lanes") or [])

    @property
    def failures(self) -> List[Dict[str, Any]]:
        return list(self.state.snapshot.get("failures") or [])

    @property
    def in_flight(self) -> List[Dict[str, Any]]:
        """Every item at work, by lane (`lane`, `state`, `item`, `tail`, `report`, `done`,
        `failed`): the worker lanes first (the tail of what their item streams is the lane's),
        then the items outside any lane that stream (their node's tail) or report progress,
        shown in lane `main`."""
        if self.ended:
            return []  # nothing is at work in a run that is over (crashed included)
        reports = dict(self.state.reports)
        rows: List[Dict[str, Any]] = []
        for lane in self.lanes:
            item = lane.get("item")
            if lane.get("state") in ("busy", "stalled", "died") or item:
                report = reports.pop(str(item), None) if item else None
                rows.append(
                    {**lane, "lane": str(lane.get("name", "?")), "tail": lane.get("tail") or "", "report": report}
                )
        main = {"lane": "main", "state": "busy", "done": None, "failed": None}
        for node in [self.root, *self.phases]:
            name = node.get("tail_item")
            if name is not None and node.get("tail"):
                rows.append({**main, "item": name, "tail": node["tail"], "report": reports.pop(str(name), None)})
        rows.extend({**main, "item": name, "tail": "", "report": report} for name, report in reports.items())
        return rows
