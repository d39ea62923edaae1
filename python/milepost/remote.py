"""A run's tasks in a process that cannot map its shared memory (another host, or
`MILEPOST_TRANSPORT=dask`): the `RunContext` of a remote worker.

The worker counts into a run core of its own, one native node per task it was handed (so
`advance()` costs what it costs in the parent: one C call, one store), and a background thread
sends what it counted to the run, at most every `INTERVAL` seconds, through the `Channel` its
route opened (Dask's event stream: see `milepost.dask`). What is sent is described in `wire.py`:
cumulative counts, so that a lost or repeated message changes nothing, plus the item rows and
events since the last message. The run merges them (`merge.py`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Optional, Protocol, Set, Tuple

from . import _milepost, wire
from .errors import MilepostError
from .events import Event, PhaseFinished, PhaseStarted, StepFinished, StepStarted
from .persistence.items import unpack
from .task import Task

__all__ = ["Channel", "RemoteContext", "Route", "context_for", "flush", "retire"]

log = logging.getLogger("milepost")

#: Seconds between two messages at most (the issue's rate: 4 a second).
INTERVAL = 0.25
#: Seconds between heartbeats when nothing changed.
HEARTBEAT = 1.0
#: Events one message carries at most; more wait for the next message. A message carries
#: every row waiting: with a cap (2,000), a worker counting more than 8,000 items a second
#: piled its rows up and dropped them.
MAX_EVENTS = 200
#: Rows and events kept waiting at most (rows: what one message may carry, ~8 MB); past them
#: they are dropped and counted (the counts stay exact: they travel apart, as totals).
MAX_WAITING_ROWS = 100_000
MAX_WAITING_EVENTS = 2000
#: The counts a message carries per node, in order (then in flight, total, metrics).
_COUNTED = ("done", "failed", "skipped", "retried")
#: Events that describe the tree: the run sees the tree itself.
_TREE_EVENTS = (PhaseStarted, PhaseFinished, StepStarted, StepFinished)


class Channel(Protocol):
    """Where a remote worker's messages go."""

    @property
    def source(self) -> str:
        """Who sends: the worker's address (its lanes in the run are named after it)."""

    def send(self, message: Dict[str, Any]) -> None: ...


class Route(Protocol):
    """How a worker reaches a run (carried, pickled, in every task handle of the run)."""

    def open(self) -> Channel: ...

    def reachable(self) -> bool:
        """Whether this process can open it (a Dask scheduler, which unpickles the task
        graphs it is sent, cannot: it passes the handles on as they came)."""


#: Remote contexts of this process, by run id.
_contexts: Dict[str, "RemoteContext"] = {}
_contexts_lock = threading.Lock()


def context_for(route: Route, run_id: str, name: str) -> "RemoteContext":
    """This process's context for the run (made, with its sending thread, on first use)."""
    with _contexts_lock:
        ctx = _contexts.get(run_id)
        if ctx is None:
            ctx = _contexts[run_id] = RemoteContext(route.open(), run_id, name)
        return ctx


def flush(run_id: str) -> int:
    """Sends what this process counted for the run now; the message's number (0: the run
    never reached this process)."""
    ctx = _contexts.get(run_id)
    return ctx.send_now() if ctx is not None else 0


def retire(run_id: str) -> bool:
    """The run ended: this process stops sending for it (its thread ends; a long-lived worker
    otherwise sent a heartbeat a second for every run it ever counted for). Whether it had
    counted for it. A handle of the run unpickled later starts afresh."""
    with _contexts_lock:
        ctx = _contexts.pop(run_id, None)
    if ctx is None:
        return False
    ctx.stop()
    return True


class RemoteRun(Task):
    """The run as a remote worker sees it (`task.run`): the task API on the run's root."""

    __slots__ = ()  # as `Task`'s (why: see there)

    @property
    def id(self) -> str:
        return self.context.id

    @property
    def cancelled(self) -> bool:
        return False

    @property
    def finished(self) -> bool:
        return False

    @property
    def history_path(self) -> None:
        return None

    def phase(self, name: str, total: Optional[int] = None, unit: str = "it") -> Task:
        return self.child("phase", name, total, unit)


class _Rows:
    """The `RowSink` of a remote worker: item rows wait in a native buffer for the next message."""

    def __init__(self, run_id: str) -> None:
        self.buffer: Optional[_milepost.RowBuffer] = _milepost.RowBuffer(run_id)

    def pushed(self, waiting: int) -> None:
        pass  # the sending thread takes them

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
        assert self.buffer is not None
        self.buffer.push(phase, name, status, started_at, duration, error, metrics)


class RemoteContext:
    """The `RunContext` of a run in a remote worker (see the module's docstring)."""

    keeps_rows = True
    finished = False  # the run's end is the parent's; what arrives after it is ignored there
    cancelled = False  # a remote worker is not told (see the README's limits)
    cancel_reason = ""
    budget = None
    steer = None

    def __init__(self, channel: Channel, run_id: str, name: str) -> None:
        self._channel = channel
        self._id = run_id
        self._name = name
        self._core = _milepost.RunCore(run_id, name)
        self.rows = _Rows(run_id)
        self._wall_origin = time.time() - time.monotonic()
        #: Local nodes by key: a parent's node by its shared index ("3"), one made here "w1".
        self._nodes: Dict[str, _milepost.Node] = {}
        self._tasks: Dict[str, Task] = {}
        self._made: Dict[str, List[Any]] = {}
        self._numbers = itertools.count(1)
        self._lanes = threading.local()
        self._lane_names = itertools.count(1)
        self._pools = itertools.count(1)
        self._lock = threading.Lock()  # one message built at a time
        self._seq = 0
        #: The nodes' counts and the lanes the last message carried.
        self._sent: Tuple[Dict[str, List[Any]], List[List[Any]]] = ({}, [])
        self._last_send = 0.0
        self._events: Deque[List[Any]] = deque()
        self.rows_dropped = 0
        self.events_dropped = 0
        self.failures = 0  # sends that raised (logged)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ship, name=f"milepost-remote-{run_id}", daemon=True)
        self._thread.start()
        self.root: Task = self.task(0, (name,))

    # -- identity -------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def run(self) -> Task:
        return self.root

    @property
    def source(self) -> str:
        return self._channel.source

    def task(self, index: int, path: Tuple[str, ...]) -> Task:
        """The task of the parent's node `index` (handed over: the parent ends it)."""
        key = str(index)
        task = self._tasks.get(key)
        if task is None:
            node = self._node(key)
            cls = RemoteRun if index == 0 else Task
            task = self._tasks[key] = cls(self, node, tuple(path), None, borrowed=True)
        return task

    def _node(self, key: str) -> _milepost.Node:
        # Flat under the local root: each node's snapshot counts are its own.
        node = self._nodes[key] = self._core.add_node(self._core.root, "phase", key)
        node.start()
        return node

    # -- RunContext -----------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def wall(self, t: float) -> float:
        return self._wall_origin + t

    def emit(self, cls: type[Event], path: Tuple[str, ...], **fields: Any) -> None:
        if cls in _TREE_EVENTS or cls.kind == "item_failed":  # failures travel as rows
            return
        key = self._key_of(path)
        with self._lock:
            if len(self._events) >= MAX_WAITING_EVENTS:
                self.events_dropped += 1
                return
            self._events.append([key, cls.kind, _plain(fields)])

    def _key_of(self, path: Tuple[str, ...]) -> str:
        for key, task in self._tasks.items():
            if task.path == tuple(path):
                return key
        return "0"

    def child(
        self,
        parent: Task,
        kind: str,
        name: str,
        total: Optional[int],
        unit: str,
        *,
        reuse: bool = False,
        restore: bool = True,
    ) -> Task:
        key = f"w{next(self._numbers)}"
        node = self._node(key)
        if total is not None:
            node.set_total(total)
        self._made[key] = [self._key_of(parent.path), kind, str(name), unit]
        task = self._tasks[key] = Task(self, node, (*parent.path, str(name)), parent)
        task.begin(total)
        return task

    def lane(self) -> Optional[_milepost.Lane]:
        lane: Optional[_milepost.Lane] = getattr(self._lanes, "lane", None)
        if lane is None:  # each thread of the worker is a lane of its own
            lane = self._lanes.lane = self._core.add_lane(f"{next(self._lane_names)}")
        return lane

    def item_path(self) -> None:
        return None  # lanes per thread and rows sent on: `Item`'s Python

    def add_lane(self, name: str) -> Optional[_milepost.Lane]:
        return self._core.add_lane(f"{next(self._lane_names)}")

    def bind_lane(self, lane: Optional[_milepost.Lane]) -> None:
        self._lanes.lane = lane

    def finish_lanes(self, lanes: Iterable[Optional[_milepost.Lane]]) -> None:
        pass  # the run shows the worker's lanes while it lives

    def finished_keys(self, key: str) -> Set[str]:
        return set()

    def handle(self, task: Task) -> Tuple[Any, Tuple[Any, ...]]:
        raise MilepostError(
            f"{'/'.join(task.path)!r} cannot be passed on from a remote worker: pass the run's own task"
        )

    def sample(self) -> None:
        pass

    def next_pool(self) -> int:
        return next(self._pools)

    def stop_pool(self, pool: int, stop: bool) -> None:
        pass

    def pool_stopped(self, pool: int) -> bool:
        return False

    def stopping_workers(self, pids: List[int]) -> None:
        pass

    def stopped_workers(self) -> None:
        pass

    def workers_left(self, pids: List[int]) -> Optional[bool]:
        return None  # no slots here to tell by: a pool waits for its processes

    # -- sending --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Sends no more (a message being built still goes: it is waited for)."""
        self._stop.set()
        with self._lock:
            pass

    def _ship(self) -> None:
        """The sending thread: a message every `INTERVAL` when something changed, a heartbeat
        every `HEARTBEAT` otherwise. It never dies of a failed send: that is logged, counted,
        and the next message carries the counts again."""
        while not self._stop.wait(INTERVAL):
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - logged; the next tick sends the totals again
                self.failures += 1
                log.exception("milepost: sending counts of run %s from %s failed", self._id, self.source)

    def _tick(self) -> None:
        with self._lock:
            message = self._message(heartbeat=time.monotonic() - self._last_send >= HEARTBEAT)
            if message is not None:
                self._send(message)

    def last_sent(self) -> Tuple[str, int]:
        """Who sends, and the number of its last message: what is counted now is in a later
        one."""
        with self._lock:
            return self.source, self._seq

    def send_now(self) -> int:
        """Sends a message now, whatever changed (a flush): its number."""
        with self._lock:
            message = self._message(heartbeat=True)
            assert message is not None
            self._send(message)
            return int(message["seq"])

    def _send(self, message: Dict[str, Any]) -> None:
        # Under the lock that numbered it: messages leave in the order of their numbers (the
        # run ignores one that arrives after a later one, see `merge.py`).
        self._last_send = time.monotonic()
        self._channel.send(message)

    def _message(self, heartbeat: bool = False) -> Optional[Dict[str, Any]]:
        """The next message: every node's counts, with the rows and events since the last one;
        None when nothing changed and no heartbeat is due. Every message carries every count,
        so that one lost, dropped or overtaken costs nothing but its rows and events. Counts
        are read before rows are taken, and every row waiting goes: a count never reaches the
        run before its item's row (see `merge.py`)."""
        snap = json.loads(self._core.snapshot().json())
        rows = self._take_rows()
        nodes: Dict[str, List[Any]] = {}
        for child in snap["root"]["children"]:
            key = child["name"]
            counts = [child[k] for k in _COUNTED]
            nodes[key] = counts + [child["in_flight"], self._nodes[key].total, child.get("metrics") or {}]
        lanes = [[lane["name"], lane.get("item")] for lane in snap["lanes"]]
        events = [self._events.popleft() for _ in range(min(MAX_EVENTS, len(self._events)))]
        if not (heartbeat or rows or events) and (nodes, lanes) == self._sent:
            return None
        self._sent = (nodes, lanes)
        return self._wrap(nodes, rows, lanes, events)

    def _take_rows(self) -> List[List[Any]]:
        """Every row waiting in the native buffer, `MAX_WAITING_ROWS` at most (the rest are
        dropped and counted)."""
        rows: List[List[Any]] = []
        taken = self.rows.buffer.take() if self.rows.buffer is not None else None
        for text, _, _, _, _, phase, t0 in taken or ():
            for row in unpack(text, phase, t0):  # phase, name, status, start, duration, error, metrics
                if len(rows) >= MAX_WAITING_ROWS:
                    self.rows_dropped += 1
                    continue
                rows.append(row)
        return rows

    def _wrap(
        self, nodes: Dict[str, List[Any]], rows: List[List[Any]], lanes: List[List[Any]], events: List[List[Any]]
    ) -> Dict[str, Any]:
        self._seq += 1
        return {
            "milepost": wire.VERSION,
            "run": self._id,
            "source": self.source,
            "pid": os.getpid(),
            "seq": self._seq,
            "nodes": nodes,
            "made": dict(self._made),
            "rows": rows,
            "rows_dropped": self.rows_dropped,
            "lanes": lanes,
            "events": events,
            "events_dropped": self.events_dropped,
        }


def _plain(fields: Dict[str, Any]) -> Dict[str, Any]:
    """Event fields as msgpack carries them (tuples as lists, anything else as text)."""
    out: Dict[str, Any] = {}
    for k, v in fields.items():
        if v is None or isinstance(v, (str, int, float, bool)):
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for x in v]
        elif isinstance(v, dict):
            out[k] = {str(a): b if isinstance(b, (str, int, float, bool)) else str(b) for a, b in v.items()}
        else:
            out[k] = str(v)
    return out
