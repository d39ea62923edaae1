"""A past run's failures, merged from its events and its item rows (each failure once)."""

from __future__ import annotations

import json
import sqlite3
from typing import Dict, List, Optional, Tuple

from .. import _milepost
from .items import failed_rows
from .paths import display_path, path_levels
from .records import FailureRecord

_EVENTS = (
    "SELECT path AS phase, json_extract(data, '$.item') AS name, message AS error, ts AS at, "
    "json_extract(data, '$.path') AS names FROM events WHERE run_id = ? AND kind = 'item_failed'"
)
#: How long an item name is kept (in events, sanitized and clipped to this).
_NAME_CHARS = 256


def recorded_failures(db: sqlite3.Connection, run_id: str) -> List[FailureRecord]:
    """Every failure the history holds for a run, newest first.

    Every failure is an event (those of workers, and a dead worker's item, included); a failure
    from `item()` or `fail()` also has an item row, which stands in for its event if that was
    dropped. An event names its phase by the names of its levels (the run's first), an item
    row by its history path: they are matched on the names.
    """
    events: List[FailureRecord] = []
    unmatched: Dict[Tuple[Tuple[str, ...], str], List[FailureRecord]] = {}
    for r in db.execute(_EVENTS, (run_id,)):
        names = _event_names(r["names"], r["phase"])
        failure: FailureRecord = {
            "phase": r["phase"],
            "name": r["name"],
            "error": r["error"],
            "at": r["at"],
            "phase_display": display_path([(n, 1) for n in names]),
        }
        events.append(failure)
        unmatched.setdefault((names, _item_key(r["name"])), []).append(failure)
    failures = list(events)
    for row in failed_rows(db, run_id):
        levels = path_levels(row["phase"])
        key = (tuple(n for n, _ in levels), _item_key(row["name"]))
        if unmatched.get(key):
            # The same failure: the row's path also says which of same-named phases it was.
            unmatched[key].pop(0)["phase_display"] = display_path(levels)
        else:
            failures.append(
                {
                    "phase": row["phase"],
                    "name": row["name"],
                    "error": row["error"],
                    "at": row["at"],
                    "phase_display": display_path(levels),
                }
            )
    failures.sort(key=lambda f: f["at"] or 0.0, reverse=True)
    return failures


def recorded_retries(db: sqlite3.Connection, run_id: str) -> List[FailureRecord]:
    """Every attempt the history holds that failed and was tried again (`item_retried` events:
    the error of the attempt before), newest first. A retry asked for by hand has no error."""
    retries: List[FailureRecord] = []
    for r in db.execute(_EVENTS.replace("'item_failed'", "'item_retried'") + " ORDER BY ts DESC", (run_id,)):
        names = _event_names(r["names"], r["phase"])
        retries.append(
            {
                "phase": r["phase"],
                "name": r["name"],
                "error": r["error"],
                "at": r["at"],
                "phase_display": display_path([(n, 1) for n in names]),
            }
        )
    return retries


def _event_names(names: Optional[str], path: Optional[str]) -> Tuple[str, ...]:
    """The names of an event's levels below the run: from its `path` list, else (an event
    stored without one) from its path column."""
    try:
        listed = json.loads(names) if names else None
    except ValueError:
        listed = None
    if isinstance(listed, list) and listed:
        return tuple(str(n) for n in listed[1:])
    return tuple(n for n, _ in path_levels(path))


def _item_key(name: Optional[str]) -> str:
    """An item's name as an event keeps it (sanitized, clipped): item rows keep it as given."""
    return _milepost.sanitize(name or "")[:_NAME_CHARS]
