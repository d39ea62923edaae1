"""Exceptions raised by milepost."""

from __future__ import annotations

__all__ = ["MilepostError", "InvalidValueError", "Cancelled", "RunEndedError", "SharingError"]


class MilepostError(Exception):
    """Base class of milepost's own exceptions."""


class InvalidValueError(MilepostError, ValueError):
    """A count, total, metric or name that milepost cannot accept; the message names it."""


class Cancelled(MilepostError):
    """The run was cancelled (from the dashboard, or `run.cancel()`): loops and pools stop
    handing out items, items in flight finish, and the run ends "cancelled"."""

    @classmethod
    def run(cls, reason: str, what: str) -> "Cancelled":
        """What a loop or a pool raises once the run was cancelled (`reason`: the cancel's,
        e.g. `budget: cost_usd $1.00 of $1.00 spent`; `what`: what happened to the items)."""
        return cls(f"the run was cancelled{f' ({reason})' if reason else ''}: {what}")

    @classmethod
    def not_started(cls, name: str) -> "Cancelled":
        """What a pool gives for an item it did not start because the run was cancelled."""
        return NotStarted(f"{name!r} did not run: the run was cancelled")


class NotStarted(Cancelled):
    """An item a pool did not start because the run was cancelled (told apart from a
    `Cancelled` that the item's own code raised, which ends the pool cancelled)."""


class RunEndedError(MilepostError, RuntimeError):
    """An update (a count, a total, a metric, an item, a log line) reached a run that has
    ended. Its counts were final when it ended, so a late update is refused rather than lost
    without a word: end the run after the work it counts (join your threads inside `with
    Run`)."""


class SharingError(MilepostError, OSError):
    """The run could not be shared with worker processes: its shared-memory segment could not
    be made (a full or read-only `/dev/shm`; `MILEPOST_SHM_DIR` moves it)."""
