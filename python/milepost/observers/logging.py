"""Lifecycle events and periodic summaries as stdlib `logging` records with structured `extra`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, Optional

from ..events import ItemFailed, LogLine
from .base import BaseObserver

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LoggingObserver(BaseObserver):
    """Logs every event (failures at WARNING, log lines at their own level) and a progress
    summary every `interval` seconds. Each record carries `extra={"milepost": {...}}`, which
    structlog and JSON log formatters pick up as fields."""

    def __init__(
        self, logger: Optional[logging.Logger] = None, interval: Optional[float] = 30.0, level: int = logging.INFO
    ) -> None:
        self._logger = logger or logging.getLogger("milepost.run")
        self.interval = interval
        self._level = level

    def on_event(self, event: Event) -> None:
        level = self._level
        if isinstance(event, ItemFailed):
            level = logging.WARNING
            msg = f"item failed: {event.item}: {event.error}"
        elif isinstance(event, LogLine):
            level = _LEVELS.get(event.level, logging.INFO)
            msg = event.message
        else:
            what = getattr(event, "name", "") or event.run_name
            msg = f"{event.kind.replace('_', ' ')}: {what}"
        self._logger.log(level, msg, extra={"milepost": event.to_dict()})

    def on_snapshot(self, snapshot: Snapshot) -> None:
        root = snapshot.root
        fields: Dict[str, object] = {
            "done": root["done"],
            "failed": root["failed"],
            "skipped": root["skipped"],
            "retried": root["retried"],
            "total": root["total"],
            "rate": root["rate"],
            "eta": root["eta"],
        }
        fields["run_id"] = snapshot.data["run_id"]
        self._logger.log(self._level, snapshot.run_line(), extra={"milepost": fields})
