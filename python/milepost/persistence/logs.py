"""Log lines and failures as the dashboard's log pane lists them: one row shape and one filter,
for a live run's ring of rows and for a past run's events alike."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

from ..errors import InvalidValueError
from .records import LogRecord

#: Levels by rank; a filter keeps its level and worse.
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def log_row(event_id: int, data: Mapping[str, Any]) -> LogRecord:
    """A log line or a failure as the log pane shows it.

    Args:
        event_id: The event's id (the live stream's, or the history's row id).
        data: The event's dict (`Event.to_dict()`), as kept live and in the history alike.

    Returns:
        The row. `path` is below the run (the run is the page's subject); a failure's source
        is its phase's path and its level `error`.
    """
    path = [str(p) for p in list(data.get("path") or [])[1:]]
    if data.get("event") == "item_failed":
        level, source = "error", "/".join(path) or None
        message = f"{data.get('item', '')}: {data.get('error', '')}"
    else:
        level, source, message = str(data.get("level") or "info"), data.get("source"), str(data.get("message", ""))
    return {
        "id": event_id,
        "ts": data.get("timestamp"),
        "kind": data.get("event"),
        "level": level,
        "source": source,
        "message": message,
        "path": path,
    }


def rows_matching(
    rows: Iterable[LogRecord], level: Optional[str], source: Optional[str], after: int
) -> List[LogRecord]:
    """The rows after id `after`, at `level` or worse, from `source` (None: any)."""
    if level is not None and (not isinstance(level, str) or level.lower() not in LEVELS):
        raise InvalidValueError(f"level must be one of {', '.join(LEVELS)} (or None), got {level!r}")
    floor = LEVELS.get((level or "").lower(), 0)
    return [
        r
        for r in rows
        if r["id"] > after and LEVELS.get(r["level"], 20) >= floor and (not source or r["source"] == source)
    ]
