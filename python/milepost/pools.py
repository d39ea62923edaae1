"""Thread pools whose workers each get a lane."""

from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Iterable, List, Optional, Tuple, TypeVar, Union

from .errors import Cancelled, NotStarted
from .outcome import end_state
from .run import Run, current_run
from .task import Task, _length

__all__ = ["thread_map"]

T = TypeVar("T")
R = TypeVar("R")

#: Items submitted ahead of the workers, per worker: enough to keep them busy, few enough
#: that a million-item iterable is never materialized as futures at once.
_AHEAD_PER_WORKER = 4


def _default_name(item: Any, index: int) -> str:
    if isinstance(item, (str, int, float)) or hasattr(item, "__fspath__"):
        return str(item)
    return f"#{index}"


def pool_task(
    fn: Callable[..., Any],
    description: Optional[str],
    total: Optional[int],
    unit: str,
    run: Optional[Union[Run, Task]],
    task: Optional[Task],
    display: Optional[str],
) -> Tuple[Task, Optional[Run], bool]:
    """The task a pool counts into, for thread and process pools alike: `task` if given; else a
    new phase of `run` (a step when `run` is a task) or of the current run; else a run of its
    own. Returns the task, that own run (to finish) and whether the task was made here."""
    if task is not None:
        if total is not None and task.total is None:
            # The task expects this pool's items on top of those it counted already (a resumed
            # phase starts from what it had done, and the pool brings what is left).
            task.set_total(task.done + task.failed + task.skipped + total)
        return task, None, False
    label: str = description or getattr(fn, "__name__", None) or "map"
    parent: Optional[Union[Run, Task]] = run or current_run()
    own: Optional[Run] = None
    if parent is None:
        own = Run(label, display=display, history=False).start()
        parent = own
    return _own_phase(parent, label, total, unit), own, True


def _own_phase(parent: Union[Run, Task], label: str, total: Optional[int], unit: str) -> Task:
    """The phase a pool makes (a step under a task). In a resumed run it starts from nothing:
    the pool runs every item it is given, so it counts them all now."""
    if isinstance(parent, Run):
        return parent._child(parent, "phase", label, total, unit, restore=False)
    if isinstance(parent, Task):
        return parent.run._child(parent, "step", label, total, unit, restore=False)
    return parent.phase(label, total, unit)  # a worker process's run: nothing to restore there


class PoolScope:
    """A pool's task and how it ends, for thread and process pools alike: the one rule of
    `outcome.end_state` for the exception the pool call ends with; without one, failed when
    the pool broke (a worker process died), cancelled when the run was cancelled."""

    def __init__(self, fn: Callable[..., Any], description: Optional[str], total: Optional[int], unit: str,
                 run: Optional[Union[Run, Task]], task: Optional[Task], display: Optional[str]) -> None:
        self.task, self._own, self._made = pool_task(fn, description, total, unit, run, task, display)
        self.broken = False

    @property
    def run(self) -> Run:
        return self.task.run

    def state(self, exc: Optional[BaseException]) -> str:
        if exc is not None:
            return end_state(type(exc), exc)
        if self.broken:
            return "failed"
        return "cancelled" if self.run.cancelled else "completed"

    def end(self, exc: Optional[BaseException]) -> None:
        """Ends the task made here (or any task the pool failed or cancelled) and a run of
        the pool's own."""
        state = self.state(exc)
        if self._made or state != "completed":
            self.task.end(state)
        if self._own is not None:
            self._own.finish(state)


def thread_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    *,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = _default_name,
    return_exceptions: bool = False,
    run: Optional[Union[Run, Task]] = None,
    task: Optional[Task] = None,
    display: Optional[str] = "auto",
) -> List[Union[R, BaseException]]:
    """`fn` over `items` on a thread pool, each call tracked as an item in a worker's lane.

    Results come back in input order. An item that raises is counted failed with its error;
    with `return_exceptions=True` its exception takes its place in the results, otherwise the
    first one (in input order) is raised once the items before it are done, and items not yet
    started are not run.

    Items are counted in `task` when given (a phase you made, so `fn` can add metrics to
    it); otherwise in a new phase of `run` (a step when `run` is a phase), or of the current
    run; without any, the work gets a run of its own. A task made here ends with the map.
    """
    # ThreadPoolExecutor's own default, which tqdm's thread_map uses too.
    n_workers = workers if workers is not None else min(32, (os.cpu_count() or 1) + 4)
    if n_workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    total = total if total is not None else _length(items)
    scope = PoolScope(fn, description, total, unit, run, task, display)
    task, r = scope.task, scope.run
    counter = itertools.count()
    lanes: List[Any] = []

    def bind_lane() -> None:
        lane = r.add_lane(f"w{next(counter)}")
        lanes.append(lane)
        r._bind_lane(lane)

    def call(index: int, item: T) -> R:
        if r.cancelled:  # queued before the cancel: not started
            raise Cancelled.not_started(item_name(item, index))
        with task.item(item_name(item, index)):
            return fn(item)

    failure: Optional[BaseException] = None
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="milepost-worker", initializer=bind_lane)
    pending: Deque[Future[R]] = deque()
    try:
        return _collect(pool, pending, call, items, n_workers, return_exceptions, r)
    except BaseException as e:
        failure = e
        raise
    finally:
        # Items not started are dropped. A cancel lets the items in flight finish first; an
        # error or Ctrl-C returns at once (a thread cannot be interrupted: items in flight
        # finish in the background, and the interpreter's exit waits for them).
        for f in pending:
            f.cancel()
        pool.shutdown(wait=failure is None or isinstance(failure, Cancelled), cancel_futures=True)
        r._finish_lanes(lanes)
        scope.end(failure)


def _collect(pool: ThreadPoolExecutor, pending: Deque[Future[R]], call: Callable[[int, T], R],
             items: Iterable[T], n_workers: int, return_exceptions: bool, r: Run) -> List[Union[R, BaseException]]:
    """Feeds the pool with bounded read-ahead and gathers results in input order."""
    results: List[Union[R, BaseException]] = []
    source = enumerate(items)
    for index, item in itertools.islice(source, n_workers * _AHEAD_PER_WORKER):
        pending.append(pool.submit(call, index, item))
    while pending:
        fut = pending.popleft()
        try:
            results.append(fut.result())
        except NotStarted:
            continue  # queued before the cancel, not started; Cancelled is raised below
        except Exception as e:  # noqa: BLE001 - reported per the return_exceptions contract
            if not return_exceptions:
                raise
            results.append(e)
        if not r.cancelled:
            for index, item in itertools.islice(source, 1):
                pending.append(pool.submit(call, index, item))
    if r.cancelled:
        raise Cancelled("the run was cancelled: items in flight finished, the others did not run")
    return results
