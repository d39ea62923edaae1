"""Ctrl-C while a run writes its end: held until the history has the final state."""

from __future__ import annotations

import _signal
import threading
from types import FrameType
from typing import Callable, List, Optional

#: Ctrl-Cs held while a run ends; one more and the end is left unfinished (the user insists).
MAX_HELD = 2


class sigint_held:  # noqa: N801 - used as the function it was: `with sigint_held():`
    """Within the block, SIGINT is noted instead of raising KeyboardInterrupt in the middle of
    it; after the block it is delivered again, to the handler that was there before (a second
    Ctrl-C during the end of a run interrupts what follows, not the run's last writes). Only on
    the main thread, where Python handles signals; elsewhere a no-op. A class on `_signal`'s
    functions, not a generator on `signal`'s: every run's end enters it, and the enum
    conversions and generator frames were a tenth of a short loop's set-up."""

    __slots__ = ("_previous", "_held", "_hold")

    def __enter__(self) -> None:
        self._hold: Optional[Callable[[int, Optional[FrameType]], None]] = None
        if threading.current_thread() is not threading.main_thread():
            return
        previous = _signal.getsignal(_signal.SIGINT)
        held: List[int] = []

        def hold(signum: int, frame: Optional[FrameType]) -> None:
            held.append(signum)
            if len(held) > MAX_HELD:
                _signal.signal(_signal.SIGINT, previous)
                raise KeyboardInterrupt

        try:
            _signal.signal(_signal.SIGINT, hold)
        except ValueError:  # not the main interpreter
            return
        self._previous, self._held, self._hold = previous, held, hold

    def __exit__(self, *exc: object) -> None:
        if self._hold is None:
            return
        if _signal.getsignal(_signal.SIGINT) is self._hold:
            _signal.signal(_signal.SIGINT, self._previous)
        if 0 < len(self._held) <= MAX_HELD:
            _signal.raise_signal(_signal.SIGINT)
