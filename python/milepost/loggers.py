"""The stdlib logging handlers milepost moves while bars are drawn: those writing to a console
stream (a `StreamHandler`, not a file's), on the root logger and on every logger made so far."""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence

__all__ = ["console_handlers"]


def console_handlers(loggers: Optional[Sequence[logging.Logger]] = None) -> List[logging.StreamHandler]:
    """The console handlers of `loggers` (default: the root and every logger there is), each once."""
    if loggers is None:
        made = logging.Logger.manager.loggerDict.values()
        loggers = [logging.getLogger(), *(lg for lg in made if isinstance(lg, logging.Logger))]
    found: List[logging.StreamHandler] = []
    for logger in loggers:
        for handler in logger.handlers:
            if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                continue
            if handler not in found:
                found.append(handler)
    return found
