"""Plain lines for CI and log files: newline-terminated, never a carriage return."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from .. import _milepost
from ..events import Event, ItemFailed, LogLine
from ..observers.base import BaseObserver
from .target import Output, Target

if TYPE_CHECKING:
    from ..snapshot import Snapshot


#: Failures printed one by one before only the counts go on.
SHOWN_FAILURES = 20


class PlainRenderer(BaseObserver):
    """A summary line for the run and one per running phase every `interval` seconds, and
    at every run, phase or step boundary; log lines and failures as they happen."""

    snapshot_on_boundaries = True

    def __init__(self, target: Target = None, interval: float = 10.0,
                 wall: Callable[[], float] = time.time) -> None:
        self._out = Output(target)
        self.interval = interval
        self._wall = wall
        self._failures_shown = 0
        self._states: dict[tuple[int, str], str] = {}

    def _write(self, lines: list[str]) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self._wall()))
        text = "".join(f"[milepost {stamp}] {line}\n" for line in lines)
        self._out.write(text.replace("\r", " "))

    def on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            src = f" [{_milepost.sanitize(event.source)}]" if event.source else ""
            self._write([f"{event.level.upper()}{src} {_milepost.sanitize(event.message)}"])
        elif isinstance(event, ItemFailed) and self._failures_shown <= SHOWN_FAILURES:
            # The first failures are shown one by one; after that the counts tell the story.
            self._failures_shown += 1
            if self._failures_shown > SHOWN_FAILURES:
                self._write([f"more failures are counted but not printed (first {SHOWN_FAILURES} shown)"])
                return
            self._write([f"failed {_milepost.sanitize(event.item)}: {_milepost.sanitize(event.error)}"])

    def on_snapshot(self, snapshot: Snapshot) -> None:
        lines = [snapshot.run_line()]
        nodes = snapshot.node_lines()
        if len(nodes) == 1 and not snapshot.root["children"][0]["children"]:
            nodes = []  # a single loop: the run line already carries its figures
        for index, (depth, name, state, stats) in enumerate(nodes):
            # Running tasks every time; others once, when they reach a new state.
            changed = self._states.get((index, name)) != state
            self._states[(index, name)] = state
            if state == "running" or (changed and state != "pending"):
                lines.append(f"{'  ' * depth}{name}: {stats}")
        self._write(lines)

    def close(self) -> None:
        self._out.close()
