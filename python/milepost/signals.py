"""Ctrl-C while a run writes its end: held until the history has the final state."""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Iterator, List, Optional

#: Ctrl-Cs held while a run ends; one more and the end is left unfinished (the user insists).
MAX_HELD = 2


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Within the block, SIGINT is noted instead of raising KeyboardInterrupt in the middle of
    it; after the block it is delivered again, to the handler that was there before (a second
    Ctrl-C during the end of a run interrupts what follows, not the run's last writes). Only on
    the main thread, where Python handles signals; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    held: List[int] = []

    def hold(signum: int, frame: Optional[FrameType]) -> None:
        held.append(signum)
        if len(held) > MAX_HELD:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, hold)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is hold:
            signal.signal(signal.SIGINT, previous)
        if 0 < len(held) <= MAX_HELD:
            signal.raise_signal(signal.SIGINT)
