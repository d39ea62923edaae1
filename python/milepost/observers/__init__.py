"""Observers: one protocol, fed off the hot path by the run's dispatcher thread.

An observer gets `start()` when the run starts, lifecycle events as they are dequeued
(`on_event`), snapshots every `interval` seconds (`on_snapshot`; `None` means only the final
one), `close()` after the final snapshot and `stop()` once the run has stopped.
Set `snapshot_on_boundaries = True` to also get a snapshot right after a run, phase or step
starts or finishes. An observer that raises is reported once and never stops the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, runtime_checkable

from .base import BaseObserver
from .console import ConsoleSummary
from .logging import LoggingObserver
from .snapshot_file import JsonSnapshotFile

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot

__all__ = ["Observer", "BaseObserver", "ConsoleSummary", "LoggingObserver", "JsonSnapshotFile"]


@runtime_checkable
class Observer(Protocol):
    """What the dispatcher calls. Subclass `BaseObserver` to implement only what you need;
    its `start()` and `stop()` are called too (on another class, only if it sets
    `lifecycle = True`: a `start()` may mean something else there)."""

    interval: Optional[float]

    def on_event(self, event: Event) -> None: ...

    def on_snapshot(self, snapshot: Snapshot) -> None: ...

    def close(self) -> None: ...
