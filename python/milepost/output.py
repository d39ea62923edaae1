"""Writing text while bars are on screen: a print helper, a logging handler and a suspend."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Iterator

from .renderers.native import ACTIVE

__all__ = ["print", "LoggingHandler", "suspend"]

_builtin_print = print


def print(*values: Any, sep: str = " ", end: str = "\n") -> None:  # noqa: A001 - mirrors builtins.print
    """Like `print`, but the text appears above the native bars instead of through them."""
    text = sep.join(str(v) for v in values) + end
    if ACTIVE:
        for line in text.rstrip("\n").split("\n"):
            ACTIVE[-1].println(line)
    else:
        sys.stdout.write(text)


class LoggingHandler(logging.Handler):
    """A logging handler that writes records above the native bars (or to stderr when no
    native display is drawing). Add it in place of a `StreamHandler`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            if ACTIVE:
                for line in msg.split("\n"):
                    ACTIVE[-1].println(line)
            else:
                sys.stderr.write(msg + "\n")
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)


@contextlib.contextmanager
def suspend() -> Iterator[None]:
    """Clears the native bars from the screen for the duration of the block (for output that
    cannot go line by line, such as a subprocess writing to the terminal)."""
    if not ACTIVE:
        yield
        return
    display = ACTIVE[-1]
    display.pause(True)
    try:
        yield
    finally:
        display.pause(False)
