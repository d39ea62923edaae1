"""Where milepost keeps a run's history by default (one rule, read by the store, the CLI and
the displays that say where to look)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_history"]


def default_history() -> Path:
    """`$MILEPOST_HOME/runs.db`, else `.milepost/runs.db` in the working directory."""
    home = os.environ.get("MILEPOST_HOME")
    return Path(home) / "runs.db" if home else Path(".milepost") / "runs.db"
