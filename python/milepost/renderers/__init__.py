"""Displays. Every one reads the same snapshot; which one runs is chosen by `resolve_display`.

| name     | where                                   | how                                          |
|----------|-----------------------------------------|----------------------------------------------|
| `native` | a terminal                              | drawn by a Rust thread, never with the GIL   |
| `rich`   | Jupyter, or on request                  | rich `Live`, from the dispatcher thread      |
| `plain`  | CI and log files (not a terminal)       | a summary line every `interval` s, no `\\r`    |
| `json`   | machines                                | JSON lines: snapshots and events             |
| `none`   | nowhere                                 |                                              |
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Optional, TextIO

from ..config import setting
from ..errors import InvalidValueError

__all__ = ["DISPLAYS", "resolve_display"]

DISPLAYS = ("auto", "native", "rich", "notebook", "plain", "json", "none")

_log = logging.getLogger("milepost")


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _is_terminal(stream: Optional[TextIO]) -> bool:
    try:
        return stream is not None and stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def native_target(stream: Optional[TextIO]) -> Optional[str]:
    """ "stderr" or "stdout" when `stream` (default stderr) is that standard stream and a
    terminal: the only places the native renderer draws."""
    stream = stream if stream is not None else sys.stderr
    if not _is_terminal(stream):
        return None
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return {2: "stderr", 1: "stdout"}.get(fd)


def resolve_display(display: Optional[str], stream: Optional[TextIO] = None) -> str:
    """Picks the display: an explicit `display` argument wins, then `MILEPOST_DISPLAY`, then
    auto-detection (Jupyter: rich; a terminal: native; anything else: plain). A bad argument
    is an error; a bad `MILEPOST_DISPLAY` is warned about and ignored (`auto`): a setting
    meant for every job must not stop one."""
    if display not in (None, "auto"):
        choice = str(display).strip().lower()
        if choice not in DISPLAYS:
            raise InvalidValueError(f"display must be one of {', '.join(DISPLAYS)}; got {display!r}")
    else:  # MILEPOST_DISPLAY, then [tool.milepost] display (a bad one is said and ignored)
        choice = setting("display")
    if choice == "auto":
        if _in_jupyter():
            # An HTML output the kernel updates in place: it needs nothing beyond IPython, and
            # its final frame stays in the saved notebook (a widget's would not).
            return "notebook"
        return "native" if native_target(stream) else "plain"
    if choice == "rich" and _in_jupyter() and not _importable("ipywidgets"):
        return "notebook"  # rich's Live shows nothing in Jupyter without ipywidgets
    if choice == "native" and not native_target(stream):
        # The native renderer draws only on a terminal; elsewhere plain lines say the same.
        return "plain"
    return choice


def interval_from_env(default: float) -> float:
    """`MILEPOST_INTERVAL` (then `[tool.milepost] interval`) in seconds if set and valid; else
    (a bad one said) `default`."""
    configured = setting("interval")
    return float(configured) if configured is not None else default
