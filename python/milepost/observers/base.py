"""A do-nothing observer to subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..events import Event
    from ..snapshot import Snapshot


class BaseObserver:
    """Implements the observer protocol with no-ops; `interval=None`: final snapshot only."""

    interval: Optional[float] = None
    snapshot_on_boundaries: bool = False

    def on_event(self, event: Event) -> None:
        """Called for every lifecycle event, in order."""

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Called every `interval` seconds and once at the end."""

    def close(self) -> None:
        """Called once when the run has finished, after the final snapshot."""
