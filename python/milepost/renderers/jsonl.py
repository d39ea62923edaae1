"""JSON lines for machines: one object per snapshot interval and per lifecycle event.

Every line has `schema` (the snapshot schema version), `type` (`snapshot` or `event`) and `ts`
(Unix time). Snapshot lines carry the snapshot under `snapshot`; event lines carry the event's
fields with its kind under `event`. The README documents both.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Callable

from .. import _milepost
from ..observers.base import BaseObserver
from .target import Output, Target

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot


class JsonLinesRenderer(BaseObserver):
    """Writes JSON lines to a stream, or appends them to a file given by path
    (`"stdout"` and `"stderr"` name the standard streams)."""

    def __init__(self, target: Target = None, interval: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self._wall = wall
        self._out = Output(target)

    def _emit(self, obj: dict[str, object]) -> None:
        self._out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def on_event(self, event: Event) -> None:
        self._emit({"schema": _milepost.SCHEMA_VERSION, "type": "event", "ts": event.timestamp, **event.to_dict()})

    def on_snapshot(self, snapshot: Snapshot) -> None:
        # The snapshot's own JSON is spliced in as-is: no parse and re-serialize per line.
        head = json.dumps(
            {"schema": _milepost.SCHEMA_VERSION, "type": "snapshot", "ts": self._wall()}, separators=(",", ":")
        )
        self._out.write(f'{head[:-1]},"snapshot":{snapshot.json()}}}\n')

    def close(self) -> None:
        self._out.close()
