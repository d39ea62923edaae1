"""A summary of the run printed when it ends."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional, TextIO

from ..text import LatestFailures
from .base import BaseObserver

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot

#: Failures the summary lists: the latest ones.
SUMMARY_FAILURES = 5


class ConsoleSummary(BaseObserver):
    """Prints one line per phase and the run's totals at the end (to stderr by default), then
    the latest failures and how many more there were."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self._stream = stream
        self._last: Optional[Snapshot] = None
        self._failures = LatestFailures(SUMMARY_FAILURES)

    def on_event(self, event: Event) -> None:
        self._failures.on_event(event)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._last = snapshot

    def close(self) -> None:
        if self._last is None:
            return
        out = self._stream or sys.stderr
        lines = [f"summary: {self._last.run_line()}"]
        lines += [f"{'  ' * depth}{name}: {stats}" for depth, name, _, stats in self._last.node_lines()]
        failures, more = self._failures.lines(self._last)
        lines += [f"  failed {failure}" for failure in failures]
        if more is not None:
            lines.append(f"  {more}")
        out.write("\n".join(lines) + "\n")
        out.flush()
