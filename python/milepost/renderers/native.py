"""Glue for the native renderer: the drawing happens on a Rust thread; this module starts it,
keeps `print` and log output from garbling the screen, and shows log lines above the bars."""

from __future__ import annotations

import io
import sys
import threading
from typing import List, Optional, TextIO

from .. import _milepost
from ..events import Event, ItemFailed, LogLine
from ..observers.base import BaseObserver

#: Native displays currently drawing, newest last; `milepost.print` and the logging handler
#: write through the newest one.
ACTIVE: List["NativeDisplay"] = []


class _LineRedirect(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr while bars are drawn: whole lines go above the bars."""

    def __init__(self, display: NativeDisplay, original: TextIO) -> None:
        self._display = display
        self._original = original
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            self._buf += s
            while "\n" in self._buf:
                line, self._buf = self._buf.split("\n", 1)
                self._display.println(line, fallback=self._original)
        return len(s)

    def flush(self) -> None:
        with self._lock:
            if self._buf:
                self._display.println(self._buf, fallback=self._original)
                self._buf = ""
        self._original.flush()

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")


class NativeDisplay(BaseObserver):
    """Starts the Rust ticker in drawing mode and prints log lines and the first failures
    above the bars."""

    def __init__(self, core: _milepost.RunCore, hz: float = 10.0, max_lanes: int = 8, leave: bool = True,
                 redirect: bool = True) -> None:
        self._core = core
        self._hz = hz
        self._max_lanes = max_lanes
        self._leave = leave
        self._redirect = redirect
        self._saved: Optional[tuple[TextIO, TextIO]] = None
        self._failures_shown = 0

    def start(self) -> None:
        self._core.start_ticker(self._hz, native=True, max_lanes=self._max_lanes, leave=self._leave)
        ACTIVE.append(self)
        if self._redirect:
            self._saved = (sys.stdout, sys.stderr)
            sys.stdout = _LineRedirect(self, sys.stdout)
            sys.stderr = _LineRedirect(self, sys.stderr)

    def println(self, line: str, fallback: Optional[TextIO] = None) -> None:
        if not self._core.println(line):
            out = fallback or (self._saved[1] if self._saved else sys.stderr)
            out.write(line + "\n")

    def pause(self, paused: bool) -> None:
        self._core.pause(paused)

    def on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            src = f" [{_milepost.sanitize(event.source)}]" if event.source else ""
            self.println(f"{event.level.upper()}{src} {_milepost.sanitize(event.message)}")
        elif isinstance(event, ItemFailed) and self._failures_shown < 5:
            self._failures_shown += 1
            self.println(f"✗ {_milepost.sanitize(event.item)}: {_milepost.sanitize(event.error)}")

    def stop(self) -> None:
        if self._saved is not None:
            for proxy in (sys.stdout, sys.stderr):
                if isinstance(proxy, _LineRedirect):
                    proxy.flush()
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        if self in ACTIVE:
            ACTIVE.remove(self)
        self._core.stop_ticker()
