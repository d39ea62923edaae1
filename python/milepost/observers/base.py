"""A do-nothing observer to subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot


class BaseObserver:
    """Implements the observer protocol with no-ops; `interval=None`: final snapshot only.

    The order of calls: `start()` once, then events and snapshots, then the final snapshot,
    `close()`, and `stop()` once the run has let go of everything (its display included).
    """

    interval: Optional[float] = None
    snapshot_on_boundaries: bool = False
    #: `start()` and `stop()` below are called: an observer that does not subclass this
    #: class sets it to True to have its own called.
    lifecycle: bool = True

    def start(self) -> None:
        """Called once when the run starts, before any event."""

    def on_event(self, event: Event) -> None:
        """Called for every lifecycle event, in order."""

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Called every `interval` seconds and once at the end."""

    def close(self) -> None:
        """Called once when the run has finished, after the final snapshot."""

    def stop(self) -> None:
        """Called once after `close()`, when the run has stopped its threads and display."""
