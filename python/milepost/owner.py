"""The run as its tasks see it in the process that made it: the `RunContext` of a `Run`.

It holds what the run's tasks share (the native core, the clock, the delivery of events, the
history, what a resumed run takes over, worker lanes, the sharing with worker processes);
`Run` keeps only the run's lifecycle. In a child made by `fork`, every task is handed to a
`workers.WorkerContext` instead (`become_worker`).
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, cast

from . import _milepost, workers
from .budget import Budget
from .errors import MilepostError, RunEndedError
from .events import LogLine, RunFinished, TaskFinished
from .persistence.store import EAGER_BATCH
from .steer import Steer
from .task import Task

if TYPE_CHECKING:
    from .context import RowSink
    from .dispatch import Delivery
    from .events import Event
    from .persistence import Resume, Store

__all__ = ["Owner"]


class Owner:
    """The `RunContext` of a run in the process that made it."""

    def __init__(
        self,
        core: _milepost.RunCore,
        clock: Optional[Callable[[], float]],
        store: Optional[Store],
        resume: Optional[Resume],
        stall_after: float,
        budget: Optional[Budget] = None,
    ) -> None:
        self.core = core
        #: The run's budget, if it has one: its tasks' metrics feed it, its pools reserve items.
        self.budget = budget
        self._clock: Callable[[], float] = clock or time.monotonic
        self._manual = clock is not None
        self._origin = self._clock()
        #: Unix time at the run clock's zero: an item's start in the history without a clock call.
        self._wall_origin = time.time()
        self.store = store
        self.resume = resume
        self.prior: Dict[str, float] = {}
        self.stall_after = stall_after
        self.delivery: Optional[Delivery] = None
        #: Worker processes may have events for the run (it was shared with them).
        self._shared = False
        self.tasks: List[Task] = []
        # Bound per context, not per thread: an asyncio task has a context of its own (its
        # lane), and each thread starts with one of its own too.
        self._lanes: contextvars.ContextVar[Optional[_milepost.Lane]] = contextvars.ContextVar(
            "milepost_lane", default=None
        )
        self._run: Optional[weakref.ReferenceType[Any]] = None
        self._item_path: Optional[_milepost.ItemPath] = None
        self._finished = False
        self._cancel_reason = ""
        self._pools = 0
        self._lock = threading.Lock()
        #: What the live channel sees and asks of the run here (see `steer`).
        self.steer: Optional[Steer] = Steer()
        #: How remote workers reach this run (see `remote.py`), once a route finder gave one.
        self.route: Optional[Any] = None
        #: The run's links to remote workers (`milepost.dask`'s): settled before the run's
        #: counts are final, closed after.
        self.links: List[Any] = []
        LIVE.add(self)

    def bind(self, run: Task, delivery: Delivery) -> None:
        """The run this is the context of, and how its events are delivered."""
        self._run = weakref.ref(run)
        self.delivery = delivery

    # -- RunContext: identity and state ----------------------------------------------------------
    @property
    def id(self) -> str:
        return self.core.id

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def run(self) -> Any:
        return self._run() if self._run is not None else None

    @property
    def finished(self) -> bool:
        return self._finished

    def mark_finished(self) -> bool:
        """Marks the run ended; False if it was already (another thread is ending it)."""
        with self._lock:
            first, self._finished = not self._finished, True
        LIVE.discard(self)
        return first

    @property
    def cancelled(self) -> bool:
        return bool(self.core.cancelled)

    @property
    def cancel_reason(self) -> str:
        return self._cancel_reason

    def note_cancel(self, reason: str) -> None:
        """`Run.cancel`'s reason, for what loops and pools raise (the first one given)."""
        self._cancel_reason = self._cancel_reason or reason

    @property
    def keeps_rows(self) -> bool:
        return self.store is not None

    @property
    def rows(self) -> Optional[RowSink]:
        return self.store

    # -- RunContext: time and events -------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the run began; pushes the time into a manual clock."""
        t = self._clock() - self._origin
        if self._manual:
            self.core.set_time(t)
        return t

    def wall(self, t: float) -> float:
        return self._wall_origin + t

    @property
    def manual(self) -> bool:
        return self._manual

    def emit(self, cls: type[Event], path: Tuple[str, ...], **fields: Any) -> None:
        # No event is made for a run nobody listens to (a bare `track()` loop's).
        if self.delivery is not None and self.delivery.listening:
            if self._shared and issubclass(cls, (TaskFinished, RunFinished)):
                # What the workers said before this end goes before it (a pool's last failures
                # came after its phase's end, and a replay put them under the next phase).
                self.delivery.pull_now()
            self.delivery.emit(cls(self.core.id, self.core.name, time.time(), (self.core.name, *path[1:]), **fields))

    # -- RunContext: the tree --------------------------------------------------------------------
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
        """A new phase or step (with `reuse`, a loop's ended one of that name goes on). In a
        resumed run a phase you make takes over what it had counted (`restore`); a loop or a
        pool making its own counts what it runs now, since it runs what it is given again."""
        if self._finished:
            raise RunEndedError(f"{kind}() after run {self.name!r} ended")
        if reuse:
            # A loop entered again (the inner loop of a nested pair) goes on in its ended
            # phase: one line, bounded memory, counts that accumulate.
            # By the name it was made with: tqdm's set_postfix and set_description rename a bar.
            for task in reversed(self.tasks):
                if task.parent is parent and task.kind == kind and task.path[-1] == name and task.state != "running":
                    task.reopen(total)
                    return task
        # In the process that made the run, every node is the run's own.
        node = self.core.add_node(cast(_milepost.Node, parent.node), kind, name, total, unit)
        task = Task(self, node, (*parent.path, node.name), parent)
        self.tasks.append(task)
        rate = self.prior.get(task.key)
        if rate is not None:
            node.set_prior_rate(rate)  # the ETA until this run has a pace of its own
        if self.resume is not None and restore:
            # A resumed phase starts from what it had reached: its items from their rows.
            node.restore(*self.resume.counts(task.key))
        task.begin(total)
        return task

    def take_prior(self, rates: Dict[str, float]) -> None:
        """The pace earlier runs of this name reached, per phase, read in the background: the
        tasks made meanwhile take theirs now, the ones to come when they are made."""
        self.prior = rates
        for task in list(self.tasks):
            rate = rates.get(task.key)
            if rate is not None:
                task.node.set_prior_rate(rate)

    def finished_keys(self, key: str) -> Set[str]:
        return self.resume.finished.get(key, set()) if self.resume is not None else set()

    # -- RunContext: lanes -----------------------------------------------------------------------
    def lane(self) -> Optional[_milepost.Lane]:
        return self._lanes.get()

    def add_lane(self, name: str) -> Optional[_milepost.Lane]:
        return self.core.add_lane(name)

    # -- RunContext: items -----------------------------------------------------------------------
    def item_path(self) -> Optional[_milepost.ItemPath]:
        """One a run: its items are timed, laned and kept natively, unless its clock is the
        user's (a manual clock is read in Python, and pushed into the core)."""
        if self._manual:
            return None
        if self._item_path is None:
            # Native items are timed on the core's clock: the Unix time at its zero.
            wall_origin = self._wall_origin + self.now() - self.core.now()
            self._item_path = _milepost.ItemPath(wall_origin, self._lanes, self.store, EAGER_BATCH)
        return self._item_path

    def bind_lane(self, lane: Optional[_milepost.Lane]) -> None:
        self._lanes.set(lane)

    def finish_lanes(self, lanes: Iterable[Optional[_milepost.Lane]]) -> None:
        now = self.core.now()
        for lane in lanes:
            if lane is not None:
                lane.finish(now)

    # -- RunContext: worker processes and pools --------------------------------------------------
    def sample(self) -> None:
        self.core.sample()

    def share(self) -> str:
        """Shares the run with worker processes (once): the segment's path."""
        path = self.core.enable_sharing(workers.shm_dir(), self.stall_after)
        self._shared = True
        workers.owned[path] = self
        return path

    def handle(self, task: Task) -> Tuple[Any, Tuple[Any, ...]]:
        path = self.share()
        index = task.shared_index
        if index is None:
            raise MilepostError(
                f"{'/'.join(task.path)!r} cannot be shared with workers: a run shares at most "
                f"{_milepost.MAX_SHARED_NODES} phases and steps"
            )
        return (workers.task_in_worker, (path, index, self.id, self.name, task.path, self.find_route()))

    def find_route(self) -> Optional[Any]:
        """The route remote workers reach this run by (None: only the segment)."""
        if self.route is None and not self._finished:
            for finder in workers.ROUTE_FINDERS:
                self.route = finder(self)
                if self.route is not None:
                    break
        return self.route

    def settle_links(self) -> None:
        """Before the run's counts are final: what remote workers counted, all in."""
        for link in list(self.links):
            link.settle()

    def close_links(self) -> None:
        for link in list(self.links):
            link.close()
        self.links.clear()

    def task_for_index(self, index: int) -> Optional[Task]:
        run = self.run
        for task in (run, *self.tasks):
            if task is not None and task.shared_index == index:
                return task
        return None

    def worker_events(self) -> List[Event]:
        return workers.events_from_workers(self.core, self.id, self.name)

    def pending_events(self) -> List[Event]:
        """What the run's observers get from outside its threads: the worker processes'
        events, then the resource sampling's warnings (low disk space) as log lines."""
        found = self.worker_events()
        for message in self.core.take_resource_warnings():
            found.append(
                LogLine(
                    self.id, self.name, time.time(), (self.name,), level="warning", message=message, source="milepost"
                )
            )
        return found

    def next_pool(self) -> int:
        with self._lock:
            self._pools += 1
            return self._pools

    def stop_pool(self, pool: int, stop: bool) -> None:
        self.core.stop_pool(pool, stop)

    def pool_stopped(self, pool: int) -> bool:
        return False  # asked in workers; the parent sets the bit

    def stopping_workers(self, pids: List[int]) -> None:
        self.core.stopping_workers(pids)

    def stopped_workers(self) -> None:
        self.core.stopped_workers()

    def workers_left(self, pids: List[int]) -> Optional[bool]:
        return self.core.workers_left(pids)

    def become_worker(self) -> None:
        """In a child made by fork: every task of the run counts into shared memory from now
        on, through a worker's context; nothing is drawn or stored here."""
        shared = self.core.shared()
        run = self.run
        if shared is None or run is None:
            return
        worker = workers.WorkerContext(shared, self.id, self.name, self.resume.finished if self.resume else None)
        workers.register_worker(worker)
        for task in (run, *self.tasks):
            worker.adopt(task)


#: Runs not yet finished in this process: a fork shares them all with the child, which hands
#: them over to worker contexts.
LIVE: "weakref.WeakSet[Owner]" = weakref.WeakSet()


def _before_fork() -> None:
    for owner in list(LIVE):
        if not owner.finished:
            try:
                owner.share()
            except OSError:
                pass  # the child's counts stay in the child then; nothing breaks in the parent


def _after_fork_in_child() -> None:
    """In the child (after the workers' own hook). Takes no lock that another thread of the
    parent could have held."""
    for owner in list(LIVE):
        owner.become_worker()
    LIVE.clear()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
