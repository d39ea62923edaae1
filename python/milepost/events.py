"""Lifecycle events: typed, timestamped records of what happened in a run.

Events are queued when they happen and delivered to observers by the dispatcher thread, never
on the caller's thread. Counters are not events: observers see them through snapshots.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Tuple

__all__ = [
    "Event",
    "RunStarted",
    "RunFinished",
    "TaskStarted",
    "TaskFinished",
    "PhaseStarted",
    "PhaseFinished",
    "StepStarted",
    "StepFinished",
    "ItemFailed",
    "ItemRetried",
    "ItemDetails",
    "LogLine",
    "BOUNDARY_EVENTS",
]


@dataclass(frozen=True)
class Event:
    """Common fields: which run, when (Unix time), and where in the tree (`path`)."""

    run_id: str
    run_name: str
    timestamp: float
    path: Tuple[str, ...] = field(default=())
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict, with its `event` kind (a copy: changing it changes
        no event)."""
        # Field by field, not `dataclasses.asdict`, which deep-copies every value (most of what
        # handing an event to the history and the live channel cost): only a list or a dict
        # (an item's details; a field of an event a worker or a peer sent as JSON) can change.
        d: dict[str, Any] = {"event": self.kind}
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(self))
        for name in names:
            value = getattr(self, name)
            d[name] = copy.deepcopy(value) if isinstance(value, (list, dict)) else value
        d["path"] = list(self.path)
        return d


#: Each event class's field names, in order (asked once a class).
_FIELD_NAMES: Dict[type, Tuple[str, ...]] = {}


@dataclass(frozen=True)
class RunStarted(Event):
    """The run started; `history` is the database it is kept in (None: it keeps none)."""

    history: Optional[str] = None
    kind: ClassVar[str] = "run_started"


@dataclass(frozen=True)
class RunFinished(Event):
    state: str = "completed"
    elapsed: float = 0.0
    kind: ClassVar[str] = "run_finished"


@dataclass(frozen=True)
class TaskStarted(Event):
    """A phase or a step started."""

    name: str = ""
    total: Optional[int] = None


@dataclass(frozen=True)
class TaskFinished(Event):
    """A phase or a step ended, in `state` (completed, failed or cancelled)."""

    name: str = ""
    state: str = "completed"


@dataclass(frozen=True)
class PhaseStarted(TaskStarted):
    kind: ClassVar[str] = "phase_started"


@dataclass(frozen=True)
class PhaseFinished(TaskFinished):
    kind: ClassVar[str] = "phase_finished"


@dataclass(frozen=True)
class StepStarted(TaskStarted):
    kind: ClassVar[str] = "step_started"


@dataclass(frozen=True)
class StepFinished(TaskFinished):
    kind: ClassVar[str] = "step_finished"


@dataclass(frozen=True)
class ItemFailed(Event):
    item: str = ""
    error: str = ""
    kind: ClassVar[str] = "item_failed"


@dataclass(frozen=True)
class ItemRetried(Event):
    """An item tried again; `error` is the error of the attempt before (empty when the retry
    was asked for, not automatic)."""

    item: str = ""
    error: str = ""
    kind: ClassVar[str] = "item_retried"


@dataclass(frozen=True)
class ItemDetails(Event):
    """What an item reported as it ran, given when it ended in `status`: its own `progress`
    ([n, of], or None), its `checks` ([name, ok] each) and `artifacts` ([kind, path] each)."""

    item: str = ""
    status: str = ""
    progress: Optional[List[int]] = None
    checks: List[List[Any]] = field(default_factory=list)
    artifacts: List[List[str]] = field(default_factory=list)
    kind: ClassVar[str] = "item_details"


@dataclass(frozen=True)
class LogLine(Event):
    level: str = "info"
    message: str = ""
    source: Optional[str] = None
    kind: ClassVar[str] = "log"


#: Events after which boundary-aware observers (the plain renderer) get a fresh snapshot.
BOUNDARY_EVENTS = (RunStarted, RunFinished, TaskStarted, TaskFinished)
