"""The live runs as the dashboard serves them: per run, the latest snapshot (encoded once, sent to
every client), a bounded ring of lifecycle events with ids (for `Last-Event-ID`), and a
bounded ring of log lines and failures. Runs of this process publish from their dispatcher
thread, runs of other processes from the live feed's thread (`livefeed`); clients wait on the
server's event loop, woken through `call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from ..events import Event
from ..observers.base import BaseObserver
from ..persistence.logs import log_row, rows_matching
from ..persistence.records import LogRecord

if TYPE_CHECKING:
    from ..run import Run
    from ..snapshot import Snapshot

MAX_EVENTS = 1000
MAX_LOGS = 2000
MAX_CHANNELS = 50
#: Seconds the end of a run waits, at most, for its open streams to be sent the final snapshot,
#: `run_finished` and `end` (a stuck client costs the job no more than this, once).
END_WAIT = 2.0


class Entry(NamedTuple):
    """A lifecycle event as every stream sends it: encoded once, here."""

    id: int
    kind: str
    text: str  # the event's JSON (WebSocket messages)
    frame: bytes  # the whole SSE frame


#: The event kinds the log pane lists (log lines and failures).
LOG_KINDS = ("log", "item_failed")


class Channel:
    """One live run's stream: of a run of this process (`run`), or of another process's run
    read from the live directory (no `run`; its `state` and `ended_at` are the feed's)."""

    def __init__(self, run_id: str, name: str, run: Optional[Run] = None) -> None:
        self.run_id = run_id
        self.name = name
        self._run = weakref.ref(run) if run is not None else None
        #: How the run stands when the snapshot cannot say it (`crashed`: its process died
        #: without ending it); None: the snapshot's own state.
        self.state: Optional[str] = None
        self.ended_at: Optional[float] = None
        self.started_at: Optional[float] = None
        #: What another process's run is about, as its live channel last said (see `meta`).
        self.remote_meta: Dict[str, Any] = {}
        self.snapshot_json = "{}"
        #: The snapshot as an SSE frame, encoded once here for every client.
        self.snapshot_frame = b""
        self.snapshot_seq = 0
        self.events: Deque[Entry] = deque(maxlen=MAX_EVENTS)
        self.logs: Deque[LogRecord] = deque(maxlen=MAX_LOGS)
        #: True once the run's observer is closed: its final snapshot and events are all here.
        self.finished = False
        self._next = 1
        self._lock = threading.Lock()
        # Streams wait on their server's loop, on futures shared by all the streams of that loop:
        # a publish costs one call_soon_threadsafe per loop, however many are watching. (One
        # loop per server: `Run(dashboard=...)`'s own, and any app that mounts `create_app()`.)
        self._loops: Dict[asyncio.AbstractEventLoop, _Waiters] = {}
        self._viewers = 0
        self._no_viewers = threading.Condition()

    @property
    def run(self) -> Optional[Run]:
        return self._run() if self._run is not None else None

    @property
    def meta(self) -> Dict[str, Any]:
        """The run's `meta` (JSON-ready): this process's run's own, else the live channel's."""
        run = self.run
        return run.meta_json() if run is not None else dict(self.remote_meta)

    @property
    def remote(self) -> bool:
        """Another process's run, read from the live directory."""
        return self._run is None

    @property
    def last_id(self) -> int:
        return self._next - 1

    def publish_snapshot(self, text: str) -> None:
        encoded = b"event: snapshot\ndata: " + text.encode("utf-8") + b"\n\n"
        with self._lock:
            self.snapshot_json = text
            self.snapshot_frame = encoded
            self.snapshot_seq += 1
        self._notify()

    def latest(self) -> Tuple[int, str, bytes]:
        """`(seq, json, frame)` of the latest snapshot, read together."""
        with self._lock:
            return self.snapshot_seq, self.snapshot_json, self.snapshot_frame

    def publish_event(self, event: Event) -> None:
        self.publish_dicts([event.to_dict()])

    def publish_dicts(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Events as `Event.to_dict()` gives them (`event`: the kind), in order; clients are
        woken once for them all."""
        with self._lock:
            for data in events:
                kind = str(data.get("event", "event"))
                text = json.dumps(data, ensure_ascii=False)
                safe = _safe_kind(kind)
                event_id = self._next
                self._next += 1
                frame = f"id: {event_id}\nevent: {safe}\ndata: {text}\n\n".encode("utf-8")
                self.events.append(Entry(event_id, safe, text, frame))
                if kind in LOG_KINDS:
                    self.logs.append(log_row(event_id, data))
        self._notify()

    def close(self) -> None:
        """The run's last snapshot and events are published: streams send them and `end`."""
        self.finished = True
        self._notify()

    def batch_after(self, last: int, limit: Optional[int]) -> Tuple[List[Entry], Optional[Tuple[int, int]]]:
        """The events after id `last`, at most `limit` of them (the latest), and the ids
        `(first, last)` skipped to keep to it (or lost from the ring), if any. Ids are
        consecutive, so this is a slice of the ring, not a scan."""
        if last >= self._next - 1:
            return [], None
        with self._lock:
            if not self.events:
                return [], None
            first = self.events[0].id
            start = max(0, last - first + 1)
            if limit is not None:
                start = max(start, len(self.events) - limit)
            batch = list(itertools.islice(self.events, start, None))
        skipped = (last + 1, batch[0].id - 1) if batch and batch[0].id > last + 1 else None
        return batch, skipped

    def logs_matching(self, level: Optional[str], source: Optional[str], after: int) -> List[LogRecord]:
        with self._lock:
            rows = list(self.logs)
        return rows_matching(rows, level, source, after)

    # -- the servers' loops side ---------------------------------------------------------------
    def _notify(self) -> None:
        for loop, waiters in list(self._loops.items()):
            try:
                loop.call_soon_threadsafe(self._fire, waiters)
            except RuntimeError:  # that server's loop has closed
                with self._lock:
                    self._loops.pop(loop, None)

    def _fire(self, waiters: _Waiters) -> None:
        changed, waiters.changed = waiters.changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)
        if self.finished and waiters.ended is not None and not waiters.ended.done():
            waiters.ended.set_result(None)

    def _waiters(self) -> _Waiters:
        loop = asyncio.get_running_loop()
        waiters = self._loops.get(loop)
        if waiters is None:
            with self._lock:
                waiters = self._loops.setdefault(loop, _Waiters())
        return waiters

    def bind(self) -> None:
        """Called on its server's loop by each stream as it starts: publishes wake that loop."""
        self._waiters()

    def changed(self) -> asyncio.Future[None]:
        """Done at the next publish (or close)."""
        waiters = self._waiters()
        if waiters.changed is None or waiters.changed.done():
            waiters.changed = asyncio.get_running_loop().create_future()
        return waiters.changed

    def ended(self) -> asyncio.Future[None]:
        """Done once the channel is closed."""
        waiters = self._waiters()
        if waiters.ended is None:
            waiters.ended = asyncio.get_running_loop().create_future()
        if self.finished and not waiters.ended.done():
            waiters.ended.set_result(None)
        return waiters.ended

    # -- open streams, for the end of the run --------------------------------------------------
    def viewer_opened(self) -> None:
        with self._no_viewers:
            self._viewers += 1

    def viewer_closed(self) -> None:
        with self._no_viewers:
            self._viewers -= 1
            self._no_viewers.notify_all()

    def wait_for_viewers(self, timeout: float) -> bool:
        """Waits until every stream of this channel has ended (True) or `timeout` seconds.
        Never on the server's own loop, which is what ends them."""
        if _running_loop() in self._loops:
            return self._viewers <= 0
        with self._no_viewers:
            return self._no_viewers.wait_for(lambda: self._viewers <= 0, timeout)


def state_of(ch: Channel, root: Mapping[str, Any]) -> str:
    """How a run stands: its snapshot's state (`root`), unless the channel knows better (its
    process died: `crashed`; it ended before the snapshot said so)."""
    if ch.state is not None and ch.state != "running":
        return ch.state
    return str(root.get("state", "running"))


def _safe_kind(kind: str) -> str:
    """An event kind as streams send it (SSE `event:`, WebSocket `type`): a kind read from
    another process's file must not break the frame (a line break starts a field of its own,
    a quote ends the JSON string)."""
    return "".join(c for c in kind if c.isalnum() or c in "_-.")[:64] or "event"


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Waiters:
    """One loop's futures for a channel, shared by the streams on that loop."""

    __slots__ = ("changed", "ended")

    def __init__(self) -> None:
        self.changed: Optional[asyncio.Future[None]] = None
        self.ended: Optional[asyncio.Future[None]] = None


class Hub:
    """The live runs of this process, newest last (at most `MAX_CHANNELS`)."""

    def __init__(self) -> None:
        self._channels: Dict[str, Channel] = {}
        self._lock = threading.Lock()

    def add(self, run: Run) -> Channel:
        with self._lock:
            channel = self._channels.get(run.id) or Channel(run.id, run.name, run)
            self._channels[run.id] = channel
            while len(self._channels) > MAX_CHANNELS:
                oldest = next(iter(self._channels))
                self._channels.pop(oldest)
            return channel

    def get(self, run_id: str) -> Optional[Channel]:
        return self._channels.get(run_id)

    def channels(self) -> List[Channel]:
        with self._lock:
            return list(reversed(self._channels.values()))


class DashboardObserver(BaseObserver):
    """Feeds a run's channel: snapshots five times a second, and every event."""

    snapshot_on_boundaries = True

    def __init__(self, channel: Channel, interval: float = 0.2) -> None:
        self.channel = channel
        self.interval = interval

    def on_snapshot(self, snapshot: Snapshot) -> None:
        # The core's snapshot carries every node's `cost`: the page shows what it is given.
        text = snapshot.json()
        run = self.channel.run
        reports = run.item_reports() if run is not None else {}
        if reports:  # what items in flight reported, beside the core's snapshot (one object)
            text = text[:-1] + ',"reports":' + json.dumps(reports, separators=(",", ":")) + "}"
        self.channel.publish_snapshot(text)

    def on_event(self, event: Event) -> None:
        self.channel.publish_event(event)

    def close(self) -> None:
        # Called with the run's final snapshot and events delivered: the viewers get them and
        # `end` before the run is over for the job, so a process that exits right after its
        # `with Run(...)` does not cut them off (bounded: END_WAIT seconds at most).
        self.channel.close()
        self.channel.wait_for_viewers(END_WAIT)
