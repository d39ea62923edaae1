"""The run's side of remote workers: their messages (`wire.py`) merged into the run.

Per sender (a Dask worker's address) a `Peer` keeps what was merged so far. Counts arrive as
totals: what a message adds is its total less what was merged already, so a message lost or
repeated changes nothing. Item rows arrive apart, and each counts its item where it ran (its
lane, its duration, its error); a row is taken before the counts of the same message, and a
worker reads its counts before it takes its rows, so an item is never counted twice: the rest
of a total, counted plainly, only ever holds what no row carried.

A peer that goes quiet for `lost_after` seconds, or that the scheduler says is gone, is lost:
its items in flight count as failed (`worker lost (address)`), what it counted stays, and
later messages from it are ignored. A peer sending faster than `RATE` messages a second (a
buggy worker) has the excess dropped, counted and logged on the run; its counts stay exact,
as the next message it is allowed carries them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import _milepost, wire
from .events import ItemDetails, ItemFailed, ItemRetried, LogLine
from .owner import Owner
from .task import Task

__all__ = ["Merger", "Peer"]

#: Messages a second a peer may send on average (it sends at most 4), and how many at once:
#: ten seconds' worth, as a worker's messages reach the run in bunches (up to 33 at once were
#: seen from a plain map; with 16, the rest were dropped, and their rows with them).
RATE = 8.0
BURST = 80.0
#: Seconds between two log lines about one peer's dropped or refused messages.
COMPLAIN_EVERY = 5.0
_EVENTS = {cls.kind: cls for cls in (LogLine, ItemRetried, ItemDetails)}
_FIELDS = ("done", "failed", "skipped", "retried")


@dataclass
class Peer:
    """What the run merged from one remote worker."""

    source: str
    seq: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    lost: Optional[str] = None
    #: Per node key: done, failed, skipped, retried merged so far.
    merged: Dict[str, List[int]] = field(default_factory=dict)
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    totals: Dict[str, int] = field(default_factory=dict)
    #: Items in flight there, as the run shows them: per node key, (name, lane).
    flight: Dict[str, List[Tuple[str, Optional[_milepost.Lane]]]] = field(default_factory=dict)
    lanes: Dict[str, _milepost.Lane] = field(default_factory=dict)
    tokens: float = BURST
    refill: float = field(default_factory=time.monotonic)
    dropped: int = 0
    refused: int = 0
    complained: float = 0.0
    rows_dropped: int = 0


class Merger:
    """Merges remote workers' messages into the run of `owner` (thread-safe)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.peers: Dict[str, Peer] = {}
        self._lock = threading.RLock()
        #: Worker-made nodes, by (source, key).
        self._made: Dict[Tuple[str, str], Task] = {}
        self._seen = threading.Condition(self._lock)

    # -- receiving ---------------------------------------------------------------------------
    def receive(self, message: Any) -> bool:
        """Merges one message; False when it was refused, dropped or ignored."""
        source = str(message.get("source", "?")) if isinstance(message, dict) else "?"
        with self._lock:
            peer = self.peers.get(source)
            if peer is None:
                peer = self.peers[source] = Peer(source)
            try:
                msg = wire.check(message)
            except wire.WireError as e:
                peer.refused += 1
                self._complain(peer, f"messages from {source} refused ({peer.refused} so far): {e}")
                return False
            if msg["run"] != self.owner.id or self.owner.finished or peer.lost is not None:
                return False
            if not self._allowed(peer):
                peer.dropped += 1
                self._complain(peer, f"{source} sends too many messages: {peer.dropped} dropped (counts stay exact)")
                return False
            if msg["seq"] <= peer.seq:
                return False  # repeated or late: a newer one carried its counts
            peer.seq, peer.last_seen = msg["seq"], time.monotonic()
            self._merge(peer, msg)
            self._seen.notify_all()
            return True

    def _allowed(self, peer: Peer) -> bool:
        now = time.monotonic()
        peer.tokens = min(BURST, peer.tokens + (now - peer.refill) * RATE)
        peer.refill = now
        if peer.tokens < 1.0:
            return False
        peer.tokens -= 1.0
        return True

    def _merge(self, peer: Peer, msg: Dict[str, Any]) -> None:
        lanes = {str(name): item for name, item in msg["lanes"]}
        for name in lanes or ["1"]:  # a worker is a lane from its first message, items or not
            self._lane(peer, name)
        for row in msg["rows"]:
            self._row(peer, msg, *row)
        for key, state in msg["nodes"].items():
            self._counts(peer, msg, key, state)
        self._flight(peer, msg, lanes)
        for key, kind, fields in msg["events"]:
            self._event(peer, msg, key, kind, fields)
        if msg["rows_dropped"] > peer.rows_dropped:
            self._complain(peer, f"{peer.source} dropped {msg['rows_dropped']} item rows (counts stay exact)")
            peer.rows_dropped = msg["rows_dropped"]

    def _task(self, peer: Peer, msg: Dict[str, Any], key: str) -> Optional[Task]:
        """The run's task of node `key` of this peer (a node it made is found by name under its
        parent, or made: several workers making the same loop share one)."""
        if key.isdigit():
            return self.owner.task_for_index(int(key))
        made = self._made.get((peer.source, key))
        if made is not None:
            return made
        spec = msg["made"].get(key)
        if not isinstance(spec, (list, tuple)) or len(spec) != 4 or spec[0] == key:
            return None
        parent = self._task(peer, msg, str(spec[0]))
        if parent is None:
            return None
        _, kind, name, unit = spec
        for task in self.owner.tasks:
            if task.parent is parent and task.kind == kind and task.name == name:
                self._made[(peer.source, key)] = task
                return task
        task = self.owner.child(parent, str(kind), str(name), None, str(unit), restore=False)
        self._made[(peer.source, key)] = task
        return task

    def _lane(self, peer: Peer, name: str) -> Optional[_milepost.Lane]:
        lane = peer.lanes.get(name)
        if lane is None:
            # The worker's first thread is named by its address alone, as one thread per
            # worker is Dask's usual setting.
            label = peer.source if not peer.lanes else f"{peer.source} #{len(peer.lanes) + 1}"
            lane = self.owner.add_lane(label)
            if lane is not None:
                peer.lanes[name] = lane
        return lane

    def _any_lane(self, peer: Peer) -> Optional[_milepost.Lane]:
        return next(iter(peer.lanes.values()), None) or self._lane(peer, "1")

    def _row(
        self,
        peer: Peer,
        msg: Dict[str, Any],
        key: str,
        name: str,
        status: str,
        started: float,
        duration: Optional[float],
        error: Optional[str],
        metrics: Optional[str],
    ) -> None:
        task = self._task(peer, msg, key)
        if task is None:
            return
        merged = peer.merged.setdefault(key, [0, 0, 0, 0])
        if status in _FIELDS:
            merged[_FIELDS.index(status)] += 1
        flying = peer.flight.get(key, [])
        held = next((f for f in flying if f[0] == name), None) or (flying[0] if flying else None)
        if held is None and duration is None and status == "failed":  # `task.fail()`, not an item
            task.fail(name, error or "failed")
            return
        if held is not None:
            flying.remove(held)
        lane = (held[1] if held is not None else None) or self._any_lane(peer)
        node = task.node
        if held is None:
            node.item_started(name, lane)
        self._finish(task, name, status, duration, error, lane, started, metrics)

    def _finish(
        self,
        task: Task,
        name: str,
        status: str,
        duration: Optional[float],
        error: Optional[str],
        lane: Optional[_milepost.Lane],
        started: float,
        metrics: Optional[str],
    ) -> None:
        rows = self.owner.rows
        waiting = task.node.item_finished(
            name, status, duration, error, lane, rows.buffer if rows is not None else None, started, metrics
        )
        if rows is not None:
            rows.pushed(waiting)
        if status == "failed":
            self.owner.emit(ItemFailed, task.path, item=name, error=error or "failed")

    def _counts(self, peer: Peer, msg: Dict[str, Any], key: str, state: Any) -> None:
        """The rest of each total that no row carried, counted plainly (see the module)."""
        task = self._task(peer, msg, key)
        if task is None or not isinstance(state, (list, tuple)) or len(state) != 7:
            return
        node = task.node
        merged = peer.merged.setdefault(key, [0, 0, 0, 0])
        for i, add in enumerate((node.advance, None, node.skip, node.retry)):
            rest = int(state[i]) - merged[i]
            if rest <= 0:
                continue
            merged[i] += rest
            if add is not None:
                add(rest)
            else:  # failures whose rows were dropped: counted, with what is known
                for _ in range(rest):
                    task.fail(f"({peer.source})", "its report was dropped (message flood)")
        total = state[5]
        if isinstance(total, int) and total > peer.totals.get(key, 0):
            node.add_total(total - peer.totals.get(key, 0))
            peer.totals[key] = total
        sent = state[6] if isinstance(state[6], dict) else {}
        had = peer.metrics.setdefault(key, {})
        for name, value in sent.items():
            delta = value - had.get(name, 0)
            if delta:
                task.metric(name, delta)
                had[name] = value

    def _flight(self, peer: Peer, msg: Dict[str, Any], lanes: Dict[str, Optional[str]]) -> None:
        """Items in flight there, as the run shows them: the counts exact per node, the names
        those its threads work on (which node each belongs to is known only per count)."""
        shown = {name for flying in peer.flight.values() for name, _ in flying}
        free = [(lanes_name, item) for lanes_name, item in lanes.items() if item is not None and item not in shown]
        for key, state in msg["nodes"].items():
            task = self._task(peer, msg, key)
            if task is None or not isinstance(state, (list, tuple)) or len(state) != 7:
                continue
            flying = peer.flight.setdefault(key, [])
            want = max(0, int(state[4]))
            while len(flying) < want:
                lane_name, item = free.pop(0) if free else (None, None)
                # An item in flight there is in one of its lanes, named or not yet.
                lane = peer.lanes.get(lane_name) if lane_name is not None else self._any_lane(peer)
                name = item if item is not None else "(in flight)"
                task.node.item_started(name, lane)
                flying.append((name, lane))
            while len(flying) > want:  # ended without a row: cancelled there
                name, lane = flying.pop()
                task.node.item_finished(name, "cancelled", None, None, lane)

    def _event(self, peer: Peer, msg: Dict[str, Any], key: str, kind: str, fields: Any) -> None:
        cls = _EVENTS.get(kind)
        task = self._task(peer, msg, key)
        if cls is None or task is None or not isinstance(fields, dict):
            return
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__ and k not in ("run_id", "run_name")}
        known.pop("path", None)
        known.pop("timestamp", None)
        if cls is LogLine and not known.get("source"):
            known["source"] = peer.source
        try:
            self.owner.emit(cls, task.path, **known)
        except TypeError:
            pass  # fields of another version of the event: not shown

    # -- losing ------------------------------------------------------------------------------
    def lose(self, source: str, why: str) -> int:
        """Peer `source` is gone: its items in flight count as failed, its lanes end. How many
        items that failed."""
        with self._lock:
            peer = self.peers.get(source)
            if peer is None or peer.lost is not None or self.owner.finished:
                return 0
            peer.lost = why
            error = f"worker lost ({source})"
            n = 0
            for key, flying in peer.flight.items():
                task = self._task(peer, {"made": {}}, key) if key.isdigit() else self._made.get((source, key))
                for name, lane in flying:
                    if task is not None:
                        self._finish(task, name, "failed", None, error, lane, time.time(), None)
                        n += 1
                flying.clear()
            self.owner.finish_lanes(list(peer.lanes.values()))
            if n:
                self.note(f"Dask worker {source} lost ({why}): {n} item(s) in flight counted failed", "warning")
            self._seen.notify_all()
            return n

    def quiet(self, lost_after: float) -> List[str]:
        """Peers not heard from for `lost_after` seconds."""
        now = time.monotonic()
        with self._lock:
            return [p.source for p in self.peers.values() if p.lost is None and now - p.last_seen > lost_after]

    def heard_after(self, source: str, seq: int) -> bool:
        """Whether a message of `source` numbered after `seq` was merged (a lost peer's last
        counts are lost with it)."""
        with self._lock:
            peer = self.peers.get(source)
            return peer is not None and peer.seq > seq

    def wait_for(self, seqs: Dict[str, int], timeout: float) -> List[str]:
        """Waits until each peer's message `seqs[source]` was merged (or it was lost); the
        sources still missing after `timeout` seconds."""
        deadline = time.monotonic() + timeout

        def missing() -> List[str]:
            out = []
            for source, seq in seqs.items():
                peer = self.peers.get(source)
                if seq and (peer is None or (peer.seq < seq and peer.lost is None)):
                    out.append(source)
            return out

        with self._seen:
            while missing() and time.monotonic() < deadline:
                self._seen.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            return missing()

    def finish(self) -> None:
        """The run ends: every peer's lanes end with it."""
        with self._lock:
            for peer in self.peers.values():
                if peer.lost is None:
                    self.owner.finish_lanes(list(peer.lanes.values()))

    def stats(self) -> Dict[str, Dict[str, Any]]:
        """Per peer: messages merged, dropped, refused; lost or not (and why)."""
        with self._lock:
            return {
                p.source: {"seq": p.seq, "dropped": p.dropped, "refused": p.refused, "lost": p.lost}
                for p in self.peers.values()
            }

    def _complain(self, peer: Peer, text: str) -> None:
        now = time.monotonic()
        if now - peer.complained >= COMPLAIN_EVERY:
            peer.complained = now
            self.note(text, "warning")

    def note(self, text: str, level: str) -> None:
        run = self.owner.run
        if run is not None and not self.owner.finished:
            run.log(text, level=level, source="milepost")
