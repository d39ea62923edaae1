"""Live runs as the dashboard serves them: per run, the latest snapshot (encoded once, sent to
every client), a bounded ring of lifecycle events with ids (for `Last-Event-ID`), and a
bounded ring of log lines and failures. Runs publish from their dispatcher thread; clients
wait on the server's event loop, woken through `call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple

from ..events import Event, ItemFailed, LogLine, RunFinished
from ..observers.base import BaseObserver

if TYPE_CHECKING:
    from ..run import Run
    from ..snapshot import Snapshot

MAX_EVENTS = 1000
MAX_LOGS = 2000
MAX_CHANNELS = 50
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class Channel:
    """One live run's stream."""

    def __init__(self, run: Run) -> None:
        self.run_id = run.id
        self.name = run.name
        self._run = weakref.ref(run)
        self.snapshot_json = "{}"
        #: The snapshot as an SSE frame, encoded once here for every client.
        self.snapshot_frame = b""
        self.snapshot_seq = 0
        self.events: Deque[Tuple[int, str, str]] = deque(maxlen=MAX_EVENTS)
        self.logs: Deque[Dict[str, Any]] = deque(maxlen=MAX_LOGS)
        self.finished = False
        self._next = 1
        self._lock = threading.Lock()
        # One wake-up for all the clients of the server's loop: a notify costs one
        # call_soon_threadsafe, however many are watching.
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiting: List[asyncio.Future[bool]] = []

    @property
    def run(self) -> Optional[Run]:
        return self._run()

    def publish_snapshot(self, text: str) -> None:
        frame = b"event: snapshot\ndata: " + text.encode("utf-8") + b"\n\n"
        with self._lock:
            self.snapshot_json = text
            self.snapshot_frame = frame
            self.snapshot_seq += 1
        self._notify()

    def publish_event(self, event: Event) -> None:
        data = event.to_dict()
        text = json.dumps(data, ensure_ascii=False)
        with self._lock:
            event_id = self._next
            self._next += 1
            self.events.append((event_id, event.kind, text))
            if isinstance(event, (LogLine, ItemFailed)):
                level = event.level if isinstance(event, LogLine) else "error"
                message = event.message if isinstance(event, LogLine) else f"{event.item}: {event.error}"
                source = event.source if isinstance(event, LogLine) else "/".join(event.path[1:])
                self.logs.append({"id": event_id, "ts": event.timestamp, "level": level, "source": source,
                                  "message": message, "path": list(event.path)})
            if isinstance(event, RunFinished):
                self.finished = True
        self._notify()

    def close(self) -> None:
        self.finished = True
        self._notify()

    def events_after(self, last: int) -> List[Tuple[int, str, str]]:
        """The events after id `last`. Ids are consecutive, so this is a slice of the ring,
        not a scan: every client asks at every wake-up."""
        if last >= self._next - 1:
            return []
        with self._lock:
            if not self.events:
                return []
            first = self.events[0][0]
            start = max(0, last - first + 1)
            return list(itertools.islice(self.events, start, None))

    def logs_matching(self, level: Optional[str], source: Optional[str], after: int) -> List[Dict[str, Any]]:
        floor = LEVELS.get((level or "").lower(), 0)
        with self._lock:
            return [entry for entry in self.logs
                    if entry["id"] > after and LEVELS.get(entry["level"], 20) >= floor
                    and (not source or entry["source"] == source)]

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._fire)
            except RuntimeError:  # the server's loop has closed
                self._loop = None

    def _fire(self) -> None:
        waiting, self._waiting = self._waiting, []
        for fut in waiting:
            if not fut.done():
                fut.set_result(True)

    async def wait(self, timeout: float) -> bool:
        """Waits for anything new (True) or `timeout` seconds (False). A bare future and a
        timer: no task is made, however many streams wait."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(fut)
        def expire() -> None:
            if not fut.done():
                fut.set_result(False)

        timer = loop.call_later(timeout, expire)
        try:
            return await fut
        finally:
            timer.cancel()


class Hub:
    """The live runs of this process, newest last (at most `MAX_CHANNELS`)."""

    def __init__(self) -> None:
        self._channels: Dict[str, Channel] = {}
        self._lock = threading.Lock()

    def add(self, run: Run) -> Channel:
        with self._lock:
            channel = self._channels.get(run.id) or Channel(run)
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
        self.channel.publish_snapshot(snapshot.json())

    def on_event(self, event: Event) -> None:
        self.channel.publish_event(event)

    def close(self) -> None:
        self.channel.close()
