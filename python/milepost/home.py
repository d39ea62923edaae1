"""Where milepost keeps a run's history by default (one rule, read by the store, the CLI and
the displays that say where to look)."""

from __future__ import annotations

import os
from pathlib import Path

from .config import setting

__all__ = ["default_history", "history_on"]


def default_history() -> Path:
    """`MILEPOST_HISTORY` (or `[tool.milepost] history`) when it is a path, else
    `$MILEPOST_HOME/runs.db`, else `.milepost/runs.db` in the working directory."""
    configured = setting("history")
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("MILEPOST_HOME")
    return Path(home) / "runs.db" if home else Path(".milepost") / "runs.db"


def history_on() -> bool:
    """Whether runs keep a history unless told otherwise (`MILEPOST_HISTORY=off` says no)."""
    return setting("history") is not None
