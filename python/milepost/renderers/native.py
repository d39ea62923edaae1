"""Glue for the native renderer: the drawing happens on a Rust thread; this module starts it,
keeps `print` and log output from garbling the screen, and shows log lines above the bars."""

from __future__ import annotations

import logging
import os
import sys
import threading
import unicodedata
from typing import TYPE_CHECKING, Any, List, Optional, TextIO, Tuple

from .. import _milepost
from ..config import setting
from ..events import Event, LogLine
from ..loggers import console_handlers
from ..observers.base import BaseObserver
from ..text import FirstFailures, log_line

if TYPE_CHECKING:
    from ..snapshot import Snapshot

#: Native displays currently drawing, newest last; `milepost.print` and the logging handler
#: write through the newest one.
ACTIVE: List["NativeDisplay"] = []

#: Failures printed above the bars one by one (the first ones); the frame shows the latest.
SHOWN_FAILURES = 5

#: A line longer than this without a newline is shown as it is, keeping the buffer bounded.
MAX_PENDING = 8192


def _columns(ch: str) -> int:
    """The terminal columns a character takes: 2 for wide East Asian ones, 0 for combining
    marks and format characters, else 1."""
    if ch < "\u0300":
        return 1
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def clip_to(text: str, columns: int) -> str:
    """`text` as it fits in `columns` terminal columns: whole, or cut and ending in `…`."""
    used, cut = 0, None
    for i, ch in enumerate(text):
        width = _columns(ch)
        if cut is None and used + width > columns - 1:
            cut = i  # what is kept if the text is too long: room for the `…`
        used += width
        if used > columns:
            return text[:cut] + "…"
    return text


def _terminal_of(stream: Any) -> Optional[str]:
    """The terminal device a stream writes to, if it is one."""
    try:
        fd = stream.fileno()
        return os.ttyname(fd) if os.isatty(fd) else None
    except (AttributeError, OSError, ValueError):
        return None


def retarget_handlers(stream: Any, proxy: Any) -> List[Tuple[logging.StreamHandler, Any]]:
    """Points the logging StreamHandlers writing to `stream` at `proxy`: `(handler, proxy)`
    for each, to put back."""
    moved = []
    for handler in console_handlers():
        if handler.stream is stream:
            handler.setStream(proxy)
            moved.append((handler, proxy))
    return moved


class _LineRedirect:
    """Stands in for sys.stdout or sys.stderr while bars are drawn on the same terminal:
    whole lines go above the bars. Everything else is the original stream's."""

    def __init__(self, display: NativeDisplay, original: TextIO) -> None:
        self._display = display
        self._original = original
        self._pending: List[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            pieces = s.split("\n")
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                if not last and piece.endswith("\r"):
                    piece = piece[:-1]  # a Windows line end
                if "\r" in piece:
                    # A carriage return starts the line over (another tool's own progress
                    # line): keep only what would be left on screen.
                    self._pending, self._size = [], 0
                    piece = piece.rsplit("\r", 1)[1]
                self._pending.append(piece)
                self._size += len(piece)
                if not last or self._size > MAX_PENDING:
                    self._emit()
        return len(s)

    def _emit(self) -> None:
        line = "".join(self._pending)
        self._pending, self._size = [], 0
        self._display.println(line, fallback=self._original)

    def flush(self) -> None:
        # A partial line stays until its newline (print(..., end="", flush=True) then more):
        # emitting it now would split it in two above the bars. close() emits what is left.
        self._original.flush()

    def close(self) -> None:
        with self._lock:
            if self._size:
                self._emit()

    def isatty(self) -> bool:
        return self._original.isatty()

    @property
    def original(self) -> TextIO:
        """The stream this one stands in for."""
        return self._original

    def __getattr__(self, name: str) -> Any:
        # buffer, encoding, errors, fileno, reconfigure...: the original stream's own.
        return getattr(self._original, name)


class NativeDisplay(BaseObserver):
    """Starts the Rust ticker in drawing mode and prints log lines and the first failures
    above the bars, and at the end how many more failures there were."""

    def __init__(
        self,
        core: _milepost.RunCore,
        hz: float = 10.0,
        max_lanes: int = 8,
        leave: bool = True,
        redirect: bool = True,
        stdout: bool = False,
        manual: bool = False,
    ) -> None:
        self._core = core
        #: The run's clock is injected (tests): nothing runs in the background, so no frames
        #: are drawn and no stream is redirected; log lines and failures are still printed.
        self._manual = manual
        self._hz = hz
        self._max_lanes = max_lanes
        self._leave = leave
        self._redirect = redirect
        self._stdout = stdout
        self._proxies: List[tuple[str, _LineRedirect]] = []
        self._handlers: List[Tuple[logging.StreamHandler, _LineRedirect]] = []
        self._failures = FirstFailures(SHOWN_FAILURES)
        self._final: Optional[Snapshot] = None

    def start(self) -> None:
        if self._manual:
            return
        color = setting("color")  # "auto" leaves it to the terminal and NO_COLOR
        if color != "auto":
            _milepost.set_colors(color == "always")
        self._core.start_ticker(
            self._hz, native=True, max_lanes=self._max_lanes, leave=self._leave, stdout=self._stdout
        )
        ACTIVE.append(self)
        if self._redirect:
            drawn_on = _terminal_of(sys.stdout if self._stdout else sys.stderr)
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                # Only the terminal the bars are on: `job.py > out.csv` keeps its rows.
                if drawn_on is not None and _terminal_of(stream) == drawn_on:
                    proxy = _LineRedirect(self, stream)
                    setattr(sys, name, proxy)
                    self._proxies.append((name, proxy))
                    # A StreamHandler made before the bars (`logging.basicConfig()`) holds
                    # the stream itself, not `sys.stderr`: its lines go above the bars too.
                    self._handlers += retarget_handlers(stream, proxy)

    def println(self, line: str, fallback: Optional[TextIO] = None) -> None:
        if not self._core.println(line):
            out = fallback or sys.__stderr__ or sys.stderr
            out.write(line + "\n")

    def pause(self, paused: bool) -> None:
        self._core.pause(paused)

    def _fit(self, line: str) -> str:
        """A log line or failure as one row of the terminal the bars are on (at its width now):
        a 2,000-character error would wrap over a screenful. The snapshot and the history keep
        the whole text."""
        try:
            cols = os.get_terminal_size(1 if self._stdout else 2).columns
        except OSError:
            return line
        # A column spare (the frame keeps two): a line as wide as the terminal wraps on some.
        return clip_to(line, max(cols - 1, 20)) if cols > 0 else line

    def on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.println(self._fit(log_line(event.level, event.message, event.source)))
        else:
            failure = self._failures.on_event(event)
            if failure is not None:
                self.println(self._fit(f"✗ {failure}"))

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._final = snapshot  # interval None: the final snapshot only

    def close(self) -> None:
        # Above the final frame, which the run draws after closing its observers.
        note = self._failures.end(self._final)
        if note is not None:
            self.println(note)

    def restore_streams(self) -> None:
        """Puts back the streams this display redirected."""
        for name, proxy in self._proxies:
            # Only if nobody replaced our proxy in the meantime (a redirect_stdout or a
            # capture that began later must not be clobbered).
            if getattr(sys, name) is proxy:
                setattr(sys, name, proxy.original)
        self._proxies.clear()
        for handler, proxy in self._handlers:
            if handler.stream is proxy:
                handler.setStream(proxy.original)
        self._handlers.clear()

    def stop(self) -> None:
        """Draws the final frame (after `close()`'s lines above it) and gives the streams back."""
        for _, proxy in self._proxies:
            proxy.close()
        self.restore_streams()
        if self in ACTIVE:
            ACTIVE.remove(self)
        self._core.stop_ticker()


def _forget_displays() -> None:
    """In a child made by fork: no display draws there (the child has no ticker thread), and
    the streams the parent's displays redirected are the child's own again."""
    for display in ACTIVE:
        display.restore_streams()
    ACTIVE.clear()


os.register_at_fork(after_in_child=_forget_displays)
