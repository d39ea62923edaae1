"""What a past run's items reported as they ran (`Item.progress`, `check`, `artifact`): kept as
one `item_details` event an item, written when the item ended."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, List

from .paths import display_path
from .records import ReportRecord

_EVENTS = "SELECT data FROM events WHERE run_id = ? AND kind = 'item_details' ORDER BY id"


def recorded_reports(db: sqlite3.Connection, run_id: str) -> List[ReportRecord]:
    """Every item that reported anything, in the order they ended."""
    out: List[ReportRecord] = []
    for (data,) in db.execute(_EVENTS, (run_id,)):
        event = json.loads(data or "{}")
        names = [str(n) for n in (event.get("path") or [])[1:]]
        progress = event.get("progress")
        out.append(
            {
                "phase_display": display_path([(n, 1) for n in names]),
                "name": str(event.get("item", "")),
                "status": str(event.get("status", "")),
                "progress": [int(n) for n in progress] if isinstance(progress, list) else None,
                "checks": [(str(c[0]), bool(c[1])) for c in _pairs(event.get("checks"))],
                "artifacts": [(str(a[0]), str(a[1])) for a in _pairs(event.get("artifacts"))],
            }
        )
    return out


def _pairs(value: Any) -> List[Any]:
    return [v for v in value if isinstance(v, list) and len(v) == 2] if isinstance(value, list) else []
