"""Writing text while bars are on screen: a print helper, a logging handler and a suspend."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from .loggers import console_handlers
from .renderers.native import ACTIVE

__all__ = ["print", "LoggingHandler", "suspend", "logging_redirect", "RunLogHandler"]

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
def logging_redirect(loggers: Optional[Sequence[logging.Logger]] = None) -> Iterator[None]:
    """For the block, the console handlers of `loggers` (default: the root logger and every
    logger made so far) write above the bars: each is replaced by a `LoggingHandler` with its
    level, formatter and filters, and put back after (tqdm's `logging_redirect_tqdm`)."""
    swapped: List[Tuple[logging.Logger, logging.Handler, logging.Handler]] = []
    targets = loggers if loggers is not None else [logging.getLogger(), *_made_loggers()]
    for logger in targets:
        for handler in console_handlers([logger]):
            above = LoggingHandler(handler.level)
            above.setFormatter(handler.formatter)
            above.filters = list(handler.filters)
            logger.removeHandler(handler)
            logger.addHandler(above)
            swapped.append((logger, handler, above))
    try:
        yield
    finally:
        for logger, console, redirected in swapped:
            logger.removeHandler(redirected)
            logger.addHandler(console)


def _made_loggers() -> List[logging.Logger]:
    return [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]


#: Python's levels, as the run's log lines name them (a custom level takes the one below it).
_LEVELS = (
    (logging.CRITICAL, "critical"),
    (logging.ERROR, "error"),
    (logging.WARNING, "warning"),
    (logging.INFO, "info"),
)


class RunLogHandler(logging.Handler):
    """`Run(capture_logging=...)`: the application's log records as the run's log lines (the
    displays, the live channel, the history), `source` the logger's name. milepost's own
    loggers are left out: an observer that logs the run's events must not feed them back."""

    def __init__(self, log: Callable[..., None], level: int) -> None:
        super().__init__(level)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "milepost" or record.name.startswith("milepost."):
            return
        try:
            level = next((name for number, name in _LEVELS if record.levelno >= number), "debug")
            self._log(self.format(record), level=level, source=record.name)
        except Exception:  # noqa: BLE001 - logging's own convention (a run that ended, say)
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
