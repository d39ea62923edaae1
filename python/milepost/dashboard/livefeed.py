"""The runs of other processes on the dashboard: the live directory (`milepost.live`) read by one
thread of the server, which feeds a channel per run as a run of this process feeds its own, so
that the page, the streams and /metrics serve both alike.

One thread for the server, not one per client: it looks every POLL_INTERVAL (five times a
second; runs publish four times a second), reads a run's snapshot only when its file changed,
and the events appended since its last look. A run that ended keeps its channel, with its final
snapshot (the newest MAX_ENDED such runs are kept); one whose process vanished without ending
it is `crashed`, and its last counts stay.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set, Tuple

from ..live.place import LiveError, check_owned, live_dir
from ..live.reader import LiveRun, LiveState
from .hub import Channel

__all__ = ["LiveFeed", "Watched", "POLL_INTERVAL"]

#: Seconds between two looks at the live directory.
POLL_INTERVAL = 0.2
#: Runs that ended kept on show (the newest); older ones are in `milepost runs` and the history.
MAX_ENDED = 50
#: Running runs followed at once (more wait for a place).
MAX_RUNNING = 200

_log = logging.getLogger("milepost")

#: What tells that a file changed: inode (replaced atomically), modification time, size.
Stamp = Optional[Tuple[int, int, int]]


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Watched:
    """A run of the live directory and the channel it feeds."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.channel = Channel(run.id, run.name)
        self.channel.started_at = run.started_at or None
        self._tail = run.events()
        self._stamp: Stamp = None

    @property
    def ended(self) -> bool:
        return self.channel.finished

    def poll(self) -> None:
        """Publishes what is new: the events appended, the snapshot if its file changed, and
        the end (or the crash), once. LiveError: unreadable this time (tried again next)."""
        if self.channel.finished:
            return
        path = self.run.directory / "snapshot.json"
        stamp = _stamp(path)
        if stamp == self._stamp and self.run.process_alive():
            self._publish_events()  # lines written between snapshots (a full write buffer)
            return
        state = self.run.read()
        if state.state == "crashed":
            # Read again now that the process is known to be gone: an end it wrote just before
            # exiting (after the first read, before the look at its pid) is in the file now.
            stamp = _stamp(path)
            state = self.run.read()
        self._publish_events()  # after the snapshot was read: the events before it are in
        if stamp != self._stamp and state.snapshot:
            self._stamp = stamp
            published = {**state.snapshot, "reports": state.reports} if state.reports else state.snapshot
            self.channel.publish_snapshot(json.dumps(published, ensure_ascii=False, separators=(",", ":")))
        self.channel.state = state.state
        self.channel.remote_meta = state.meta
        if state.ended:
            self._end(state)

    def _publish_events(self) -> None:
        events = self._tail.new()
        if events:
            self.channel.publish_dicts(events)

    def _end(self, state: LiveState) -> None:
        if state.state == "crashed":
            # No `run_finished` will come: streams are told why the run stopped.
            last = state.published or None
            self.channel.publish_dicts([{"event": "run_crashed", "timestamp": time.time(), "last_published": last}])
        self.channel.ended_at = state.published or time.time()
        self.channel.close()


class LiveFeed:
    """The runs published in the live directory `root` (default: the user's), followed from one
    thread. `elsewhere(run_id)` says a run is shown already (a run of this process)."""

    def __init__(
        self,
        elsewhere: Callable[[str], bool] = lambda run_id: False,
        root: Optional[Path] = None,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self._root = root
        self._elsewhere = elsewhere
        self._interval = interval
        self._watched: Dict[str, Watched] = {}
        #: Runs that ended and were dropped for newer ones: not read again.
        self._forgotten: Set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._said: Optional[str] = None

    @property
    def root(self) -> Path:
        return self._root or live_dir()

    def start(self) -> LiveFeed:
        """Looks once now (a run that ended before the server started is shown from its first
        answer on), then from a daemon thread. Started once; later calls do nothing."""
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._loop, name="milepost-live-feed", daemon=True)
        self._poll_safely()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def get(self, run_id: str) -> Optional[Watched]:
        with self._lock:
            return self._watched.get(run_id)

    def channels(self) -> List[Channel]:
        """Running runs (newest first), then those that ended (latest end first)."""
        with self._lock:
            watched = list(self._watched.values())
        running = sorted((w for w in watched if not w.ended), key=lambda w: -w.run.started_at)
        ended = sorted((w for w in watched if w.ended), key=lambda w: -(w.channel.ended_at or 0.0))
        return [w.channel for w in running + ended]

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            self._poll_safely()

    def _poll_safely(self) -> None:
        try:
            self.poll()
        except Exception as e:  # noqa: BLE001 - the feed goes on; the server must not lose it
            self._say(f"reading the live directory failed: {type(e).__name__}: {e}")

    def _say(self, problem: str) -> None:
        """Logs a problem once (not five times a second)."""
        if problem != self._said:
            self._said = problem
            _log.warning("milepost dashboard: %s", problem)

    def poll(self) -> None:
        """One look: new runs, then what is new in each one still running."""
        names = self._listing()
        if names is None:
            return
        self._discover(names)
        with self._lock:
            running = [w for w in self._watched.values() if not w.ended]
        for watched in running:
            try:
                watched.poll()
            except LiveError:
                continue  # a file replaced by a foreign hand: tried again at the next look
        self._trim(names)

    def _listing(self) -> Optional[Set[str]]:
        """The run directories now, or None when the directory cannot be read (said once)."""
        root = self.root
        try:
            if not root.exists():
                return set()
            check_owned(root)
            return {e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)}
        except (OSError, LiveError) as e:
            self._say(f"live runs not shown: {e}")
            return None

    def _discover(self, names: Set[str]) -> None:
        """Follows the runs not seen yet, newest first: every running one (up to MAX_RUNNING),
        and those that ended while there is room for them (their events are read only then)."""
        with self._lock:
            known = set(self._watched) | self._forgotten
            running = sum(1 for w in self._watched.values() if not w.ended)
            ended = len(self._watched) - running
        found: List[LiveRun] = []
        for name in names - known:
            if self._elsewhere(name):
                continue
            try:
                run = LiveRun(self.root / name)
            except LiveError:
                continue  # half-made (no run.json yet) or not a run: looked at again next time
            if run.id == name:
                found.append(run)
        for run in sorted(found, key=lambda r: -r.started_at):
            try:
                state = run.read()
            except LiveError:
                continue
            if state.ended and ended >= MAX_ENDED:
                self._forgotten.add(run.id)
                continue
            if not state.ended and running >= MAX_RUNNING:
                continue
            ended, running = ended + state.ended, running + (not state.ended)
            with self._lock:
                self._watched[run.id] = Watched(run)

    def _trim(self, names: Set[str]) -> None:
        """Keeps the newest MAX_ENDED runs that ended, and nothing of runs whose directory went
        (removed a week after their end)."""
        with self._lock:
            for name in [n for n in self._watched if n not in names]:
                self._watched.pop(name).channel.close()  # its streams end rather than wait
            self._forgotten &= names
            ended = sorted((w for w in self._watched.values() if w.ended), key=lambda w: w.channel.ended_at or 0.0)
            for watched in ended[: max(0, len(ended) - MAX_ENDED)]:
                del self._watched[watched.run.id]
                self._forgotten.add(watched.run.id)
