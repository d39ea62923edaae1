"""The display in Jupyter on a base install: the native frame as HTML in one output, updated in
place through IPython's display handle (no widgets, no rich), and left in the saved notebook as
its final frame. The newest log lines go below it."""

from __future__ import annotations

import collections
from typing import Any, Deque, Optional

from ..events import Event, LogLine
from ..observers.base import BaseObserver
from ..snapshot import Snapshot
from ..text import FirstFailures, log_line

__all__ = ["NotebookDisplay"]

#: Lines of log and failures kept under the frame (the history keeps them all).
KEPT_LINES = 8
#: Failures printed as they happen (then a line says how many more and where they are).
SHOWN_FAILURES = 5


class NotebookDisplay(BaseObserver):
    """Draws the run into one output of the running cell, four times a second."""

    interval: Optional[float] = 0.25
    snapshot_on_boundaries = True

    def __init__(self, max_lanes: int = 8, width: int = 100) -> None:
        self._max_lanes = max_lanes
        self._width = width
        self._handle: Any = None
        self._notes: Deque[str] = collections.deque(maxlen=KEPT_LINES)
        self._failures = FirstFailures(SHOWN_FAILURES)
        self._last: Optional[Snapshot] = None

    def start(self) -> None:
        from IPython.display import HTML, display  # there in any Jupyter kernel

        self._handle = display(HTML('<pre class="milepost">starting…</pre>'), display_id=True)

    def on_event(self, event: Event) -> None:
        # The frame shows the newest failure; the notes are the log lines (and, at the end, how
        # many failures there were and where they all are).
        if isinstance(event, LogLine):
            self._notes.append(log_line(event.level, event.message, event.source))
        else:
            self._failures.on_event(event)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        self._draw(snapshot)

    def close(self) -> None:
        note = self._failures.end(self._last)
        if note is not None:
            self._notes.append(note)
        if self._last is not None:
            self._draw(self._last)  # the final frame stays in the saved notebook

    def _draw(self, snapshot: Snapshot) -> None:
        if self._handle is None:
            return
        from IPython.display import HTML

        self._handle.update(HTML(snapshot.html(self._width, self._max_lanes, list(self._notes))))
