"""The monitor's side of a live run's files, polled ten times a second: `snapshot.json` is read
only when its stat changed (the run replaces it four times a second), the process is looked
for twice a second while the run runs (a killed job never writes again: only its absence
says it crashed), and new lines of `events.jsonl` become log rows."""

from __future__ import annotations

import os
from collections import deque
from typing import Deque, List, Optional, Set

from ..live.reader import LiveRun, LiveState
from ..persistence.logs import log_row
from ..persistence.records import LogRecord

__all__ = ["Feed", "POLL_SECONDS", "LOG_ROWS"]

POLL_SECONDS = 0.1
#: Polls between two looks for the run's process (half a second).
ALIVE_EVERY = 5
#: Log rows kept for the log view (the oldest go first).
LOG_ROWS = 5000


class Feed:
    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.state: Optional[LiveState] = None
        self.logs: Deque[LogRecord] = deque(maxlen=LOG_ROWS)
        self.sources: Set[str] = set()
        self._events = run.events()
        self._seen: Optional[tuple[int, int, int]] = None
        self._polls = 0
        self._next_log = 1

    def poll(self) -> Optional[LiveState]:
        """The run's state when it changed since the last poll, else None. Raises `LiveError`
        when the published file is unreadable."""
        self._polls += 1
        try:
            st = os.stat(self.run.directory / "snapshot.json")
            seen: Optional[tuple[int, int, int]] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = None  # not published yet (or pruned): keep what we have
        if seen is not None and seen != self._seen:
            self._seen = seen
            return self._take(self.run.read())
        if self.state is None or (self.state.state == "running" and self._polls % ALIVE_EVERY == 0):
            if self.state is None or not self.run.process_alive():
                return self._take(self.run.read())
        return None

    def _take(self, state: LiveState) -> Optional[LiveState]:
        if self.state is not None and (state.state, state.published) == (self.state.state, self.state.published):
            return None
        self.state = state
        return state

    def new_logs(self) -> List[LogRecord]:
        """Log lines and failures written since the last call."""
        rows: List[LogRecord] = []
        for event in self._events.new():
            if event.get("event") not in ("log", "item_failed"):
                continue
            row = log_row(self._next_log, event)
            self._next_log += 1
            if row["source"]:
                self.sources.add(str(row["source"]))
            rows.append(row)
        self.logs.extend(rows)
        return rows
