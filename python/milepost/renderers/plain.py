"""Plain lines for CI and log files: newline-terminated, never a carriage return."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

from ..events import Event, LogLine
from ..observers.base import BaseObserver
from ..text import FirstFailures, log_line
from .target import Output, Target

if TYPE_CHECKING:
    from ..snapshot import Snapshot


#: Failures printed one by one (the first ones); the end says how many more there were.
SHOWN_FAILURES = 20


class PlainRenderer(BaseObserver):
    """A summary line for the run and one per running phase every `interval` seconds, and
    at every run, phase or step boundary; log lines and failures as they happen."""

    snapshot_on_boundaries = True

    def __init__(self, target: Target = None, interval: float = 10.0, wall: Callable[[], float] = time.time) -> None:
        self._out = Output(target)
        self.interval = interval
        self._wall = wall
        self._failures = FirstFailures(SHOWN_FAILURES)
        self._final: Optional[Snapshot] = None
        self._states: dict[tuple[int, str], str] = {}
        self._ended: Optional[list[str]] = None

    def _write(self, lines: list[str]) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self._wall()))
        text = "".join(f"[milepost {stamp}] {line}\n" for line in lines)
        self._out.write(text.replace("\r", " "))

    def on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self._write([log_line(event.level, event.message, event.source)])
        else:
            failure = self._failures.on_event(event)
            if failure is not None:
                self._write([f"failed {failure}"])

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._final = snapshot
        lines = [snapshot.run_line()]
        nodes = snapshot.node_lines()
        if len(nodes) == 1:
            nodes = []  # a single loop (the root's only node): the run line carries its figures
        for index, (depth, name, state, stats) in enumerate(nodes):
            # Running tasks every time; others once, when they reach a new state.
            changed = self._states.get((index, name)) != state
            self._states[(index, name)] = state
            if state == "running" or (changed and state != "pending"):
                lines.append(f"{'  ' * depth}{name}: {stats}")
        # A run that ends before its first snapshot is taken shows its end twice (the start's
        # snapshot and the end's); the same ended lines again tell a log reader nothing.
        ended = snapshot.state not in ("pending", "running")
        if ended and lines == self._ended:
            return
        self._ended = lines if ended else None
        self._write(lines)

    def close(self) -> None:
        note = self._failures.end(self._final)
        if note is not None:
            self._write([note])
        self._out.close()
