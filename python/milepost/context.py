"""What a task needs from its run: the one interface between a `Task` and whatever runs it.

A task counts into its native node on its own (that is the hot path); everything else it
asks of its run goes through a `RunContext`: the clock, events, new phases and steps, worker
lanes, where item rows are kept, what a resumed run had finished, what a task pickles to, and
the pool controls. There is one implementation in the process that made the run
(`owner.Owner`) and one in a worker process (`workers.WorkerContext`); a worker counting over
a network transport (Dask) or an asyncio job would be one more implementation of this
protocol, never a branch inside `Task`.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Protocol, Set, Tuple

if TYPE_CHECKING:
    from . import _milepost
    from .budget import Budget
    from .events import Event
    from .steer import Steer
    from .task import Task

__all__ = ["RowSink", "RunContext", "current_root", "set_current", "reset_current"]

#: An item's history row: status, start (Unix time), duration, error text, metrics as JSON.
ItemRow = Tuple[str, float, Optional[float], Optional[str], Optional[str]]


class RowSink(Protocol):
    """Where item rows go (the history's store): its native buffer for an item's end to queue
    its row in the same call that counts it, and the row API for items counted elsewhere."""

    @property
    def buffer(self) -> Optional[_milepost.RowBuffer]: ...

    def pushed(self, waiting: int) -> None: ...

    def item(
        self,
        phase: str,
        name: str,
        status: str,
        started_at: float,
        duration: Optional[float],
        error: Optional[str],
        metrics: Optional[str],
    ) -> None: ...


class RunContext(Protocol):
    """A task's run, as the task sees it (see the module's docstring)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def run(self) -> Any:
        """The public run object (`task.run`)."""

    @property
    def finished(self) -> bool:
        """The run has ended: its counts are final."""

    @property
    def cancelled(self) -> bool:
        """Cancel was asked for: loops and pools hand out no more items."""

    @property
    def cancel_reason(self) -> str:
        """Why the run was cancelled, as given to `cancel()` ("" when not said, or not known
        here: a worker process knows only that it was)."""

    @property
    def keeps_rows(self) -> bool:
        """Items build their history row (someone stores it: here, or the parent)."""

    @property
    def rows(self) -> Optional[RowSink]:
        """Where item rows are stored in this process (None: not here)."""

    @property
    def budget(self) -> Optional[Budget]:
        """The run's budget in this process: metrics feed it, pools reserve items (None: none)."""

    @property
    def steer(self) -> Optional[Steer]:
        """What the live channel sees and asks of the run here (None: not in this process)."""

    def now(self) -> float:
        """Seconds on the run's clock."""

    def wall(self, t: float) -> float:
        """Unix time of run-clock second `t`."""

    def emit(self, cls: type[Event], path: Tuple[str, ...], **fields: Any) -> None:
        """A lifecycle event of the task at `path`."""

    def child(
        self,
        parent: Task,
        kind: str,
        name: str,
        total: Optional[int],
        unit: str,
        *,
        reuse: bool = False,
        restore: bool = True,
    ) -> Task:
        """A new phase or step under `parent` (`reuse`: a loop's ended one of that name goes
        on; `restore`: in a resumed run it takes over what it had counted)."""

    def lane(self) -> Optional[_milepost.Lane]:
        """The worker lane bound to the calling thread, if any."""

    def add_lane(self, name: str) -> Optional[_milepost.Lane]: ...

    def item_path(self) -> Optional[_milepost.ItemPath]:
        """What the native item path needs of this run (its clock, lanes, where rows go), for
        a task's items to be entered and ended natively; None: by `Item`'s Python."""

    def bind_lane(self, lane: Optional[_milepost.Lane]) -> None: ...

    def finish_lanes(self, lanes: Iterable[Optional[_milepost.Lane]]) -> None: ...

    def finished_keys(self, key: str) -> Set[str]:
        """In a resumed run, the items of the task at history key `key` recorded done or
        skipped by the run it continues."""

    def handle(self, task: Task) -> Tuple[Any, Tuple[Any, ...]]:
        """What `task` pickles to (`__reduce__`'s callable and arguments): enough for a worker
        process to count into it."""

    def sample(self) -> None:
        """A sample now: deaths of workers accounted for, their last events taken."""

    # -- pools ---------------------------------------------------------------------------------
    def next_pool(self) -> int:
        """A number for a new process pool (the bit its workers are told to stop by)."""

    def stop_pool(self, pool: int, stop: bool) -> None: ...

    def pool_stopped(self, pool: int) -> bool: ...

    def stopping_workers(self, pids: List[int]) -> None:
        """Worker processes about to be stopped on purpose: not deaths."""

    def stopped_workers(self) -> None:
        """The stopped workers are gone: their items in flight leave flight uncounted."""

    def workers_left(self, pids: List[int]) -> Optional[bool]:
        """Whether these worker processes have all left the run (each marks so on its way out,
        before its process is torn down); None where this context cannot tell, or one of them
        never counted (it may be a process still starting)."""


#: The root task of the innermost run of this context (a `Run` in the process that made it,
#: a worker's root task in a worker process): the parent of loops and pools made without one.
_current: contextvars.ContextVar[Optional[Task]] = contextvars.ContextVar("milepost_run", default=None)


def current_root() -> Optional[Task]:
    """The root task of the innermost run still going in this context."""
    root = _current.get()
    return root if root is not None and not root.context.finished else None


def set_current(root: Optional[Task]) -> contextvars.Token[Optional[Task]]:
    return _current.set(root)


def reset_current(token: contextvars.Token[Optional[Task]], root: Task) -> None:
    """Undoes `set_current` (from another context, e.g. a tracker collected elsewhere, the
    token cannot be used: the root is taken off if it is still current)."""
    try:
        _current.reset(token)
    except ValueError:
        if _current.get() is root:
            _current.set(None)
