"""JSON lines for machines: one object per snapshot interval and per lifecycle event.

Every line has `schema` (the snapshot schema version), `type` (`snapshot` or `event`) and `ts`
(Unix time). Snapshot lines carry the snapshot under `snapshot`; event lines carry the event's
fields with its kind under `event`. The README documents both.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Optional, TextIO, Union

from .. import _milepost
from ..observers.base import BaseObserver

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot

Target = Union[str, Path, TextIO, None]


class JsonLinesRenderer(BaseObserver):
    """Writes JSON lines to a stream, or appends them to a file given by path
    (`"stdout"` and `"stderr"` name the standard streams)."""

    def __init__(self, target: Target = None, interval: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self._wall = wall
        self._owned: Optional[IO[str]] = None
        if isinstance(target, (str, Path)) and str(target) not in ("stdout", "stderr", "-"):
            self._owned = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._stream: Optional[TextIO] = self._owned
        elif target in ("stdout", "-"):
            self._stream = sys.stdout
        elif target == "stderr" or target is None:
            self._stream = None
        else:
            self._stream = target  # type: ignore[assignment]

    def _emit(self, obj: dict[str, object]) -> None:
        out = self._stream or sys.stderr
        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        out.flush()

    def on_event(self, event: Event) -> None:
        self._emit({"schema": _milepost.SCHEMA_VERSION, "type": "event", "ts": event.timestamp, **event.to_dict()})

    def on_snapshot(self, snapshot: Snapshot) -> None:
        # The snapshot's own JSON is spliced in as-is: no parse and re-serialize per line.
        head = json.dumps({"schema": _milepost.SCHEMA_VERSION, "type": "snapshot", "ts": self._wall()})
        out = self._stream or sys.stderr
        out.write(f'{head[:-1]},"snapshot":{snapshot.json()}}}\n')
        out.flush()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
