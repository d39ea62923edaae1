"""Thread pools whose workers each get a lane."""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

from . import context
from .budget import reserve_all
from .errors import Cancelled, InvalidValueError, NotStarted
from .outcome import end_state
from .retrying import NO_RETRIES, RetryPolicy, call
from .run import Run
from .task import Task, length_of
from .workers import default_name

__all__ = ["thread_map", "default_name"]

T = TypeVar("T")
R = TypeVar("R")

#: Items submitted ahead of the workers, per worker: enough to keep them busy, few enough
#: that a million-item iterable is never materialized as futures at once.
_AHEAD_PER_WORKER = 4


def pool_task(
    fn: Callable[..., Any],
    description: Optional[str],
    total: Optional[int],
    unit: str,
    run: Optional[Task],
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
    parent: Optional[Task] = run if run is not None else context.current_root()
    own: Optional[Run] = None
    if parent is None:
        own = Run(label, display=display, history=False).start()
        parent = own
    # A pool makes its own phase (a step under a task). In a resumed run it starts from
    # nothing: the pool runs every item it is given, so it counts them all now.
    kind = "phase" if parent.kind == "run" else "step"
    return parent.context.child(parent, kind, label, total, unit, restore=False), own, True


class Again:
    """A pool's failed items, and those asked to run again (`milepost retry`, the monitor's
    `r`), for thread and process pools alike. A retry counts as one more item: the task's total
    grows by the items run again, and each counts as retried; the failure stays counted.

    `counted`: for a pool whose workers hand in their failures only with their chunk's results
    (a process pool), the failures each worker (by pid) has counted so far. A retry asked while
    a worker's chunk is out also takes that chunk's failures counted by then: the first of its
    failures to come back (a worker runs its items in order)."""

    def __init__(
        self, task: Task, taking: Callable[[], bool], counted: Optional[Callable[[], Dict[int, int]]] = None
    ) -> None:
        self._task = task
        #: Whether the pool still takes work (not once the run was cancelled or the pool broke).
        self._taking = taking
        self._counted = counted
        self._failed: List[Tuple[int, Any, str]] = []
        self._queued: List[Tuple[int, Any, str]] = []
        #: Per worker: failures handed in, and failures a retry took before they were handed in.
        self._handed_in: Dict[int, int] = {}
        self._owed: Dict[int, int] = {}
        self._closed = False
        self._lock = threading.Lock()

    def failed(self, index: int, item: Any, name: str, worker: Optional[int] = None) -> None:
        """An item that failed (`worker`: the pid whose chunk handed it in, if it came back
        with one)."""
        with self._lock:
            if worker is not None:
                self._handed_in[worker] = self._handed_in.get(worker, 0) + 1
                if self._owed.get(worker, 0) > 0:
                    self._owed[worker] -= 1
                    if not self._closed and self._taking():
                        self._run_again([(index, item, name)])
                        return
            self._failed.append((index, item, name))

    def request_retry(self) -> int:
        # The workers' counts are read first, outside the lock (a snapshot of the run).
        counted = self._counted() if self._counted is not None else {}
        # Under the lock from the answer to the queue: the pool cannot close in between (items
        # counted, never run), nor run an item before its total grew.
        with self._lock:
            if self._closed or not self._taking():
                return 0
            out = {w: n - self._handed_in.get(w, 0) - self._owed.get(w, 0) for w, n in counted.items()}
            out = {w: n for w, n in out.items() if n > 0}
            again, self._failed = self._failed, []
            self._run_again(again)
            for worker, n in out.items():
                self._owed[worker] = self._owed.get(worker, 0) + n
        return len(again) + sum(out.values())

    def _run_again(self, jobs: List[Tuple[int, Any, str]]) -> None:
        """Under the lock: `jobs` counted as retried and queued to run again."""
        if jobs and self._task.total is not None:
            self._task.add_total(len(jobs))
        for _, _, name in jobs:
            self._task.retry(name)
        self._queued += jobs

    @property
    def waiting(self) -> bool:
        """Whether items wait to run again (read without the lock, as a hint: a pool asks per
        item, and `take` and `pending_or_close` settle it under the lock)."""
        return bool(self._queued)

    def take(self) -> List[Tuple[int, Any]]:
        """The items asked to run again, as `(index, item)` (a process pool needs their names:
        `take_jobs`)."""
        return [(index, item) for index, item, _ in self.take_jobs()]

    def take_jobs(self) -> List[Tuple[int, Any, str]]:
        with self._lock:
            queued, self._queued = self._queued, []
        return queued

    def pending_or_close(self) -> bool:
        """Whether items wait to run again; if none do, no more are taken."""
        with self._lock:
            self._closed = not self._queued
            return not self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True


class PoolScope:
    """A pool's task and how it ends, for thread and process pools alike: the one rule of
    `outcome.end_state` for the exception the pool call ends with; without one, failed when
    the pool broke (a worker process died), cancelled when the run was cancelled."""

    def __init__(
        self,
        fn: Callable[..., Any],
        description: Optional[str],
        total: Optional[int],
        unit: str,
        run: Optional[Task],
        task: Optional[Task],
        display: Optional[str],
    ) -> None:
        self.task, self._own, self._made = pool_task(fn, description, total, unit, run, task, display)
        self.broken = False

    @property
    def context(self) -> Any:
        """The run as the pool's task sees it (see `context.RunContext`)."""
        return self.task.context

    def state(self, exc: Optional[BaseException]) -> str:
        if exc is not None:
            return end_state(type(exc), exc)
        if self.broken:
            return "failed"
        return "cancelled" if self.task.stopped else "completed"

    def end(self, exc: Optional[BaseException]) -> None:
        """Ends the task made here (or any task the pool failed or cancelled) and a run of
        the pool's own."""
        state = self.state(exc)
        if self._made or state != "completed":
            self.task.end(state)
        if self._own is not None:
            self._own.finish(state)


def worker_count(workers: Optional[int], default: int) -> int:
    """How many workers a pool gets: `workers`, or `default`; at least one."""
    n = workers if workers is not None else default
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidValueError(f"workers must be an int >= 1, got {workers!r}")
    return n


def thread_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    *,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = default_name,
    return_exceptions: bool = False,
    run: Optional[Task] = None,
    task: Optional[Task] = None,
    display: Optional[str] = "auto",
    retries: int = 0,
    retry_on: Any = (Exception,),
    backoff: float = 0.5,
) -> List[Union[R, BaseException]]:
    """`fn` over `items` on a thread pool, each call tracked as an item in a worker's lane.

    Results come back in input order. An item that raises is counted failed with its error;
    with `return_exceptions=True` its exception takes its place in the results, otherwise the
    first one (in input order) is raised once the items before it are done, and items not yet
    started are not run.

    Items are counted in `task` when given (a phase you made, so `fn` can add metrics to
    it); otherwise in a new phase of `run` (a step when `run` is a phase), or of the current
    run; without any, the work gets a run of its own. A task made here ends with the map.

    An item raising one of `retry_on` is tried again, up to `retries` more times, in its
    thread, after a jittered wait growing from `backoff` seconds (see `retrying`).
    """
    # ThreadPoolExecutor's own default, which tqdm's thread_map uses too.
    n_workers = worker_count(workers, min(32, (os.cpu_count() or 1) + 4))
    policy = RetryPolicy.of(retries, retry_on, backoff)
    total = total if total is not None else length_of(items)
    scope = PoolScope(fn, description, total, unit, run, task, display)
    pool = _ThreadPool(scope, fn, n_workers, item_name, policy)
    return pool.map(items, return_exceptions)


class _ThreadPool:
    """One `thread_map`: a lane per worker thread, bounded read-ahead, results in order."""

    def __init__(
        self,
        scope: PoolScope,
        fn: Callable[[Any], Any],
        n_workers: int,
        item_name: Callable[[Any, int], str],
        policy: RetryPolicy = NO_RETRIES,
    ) -> None:
        self.scope = scope
        self.policy = policy
        self.fn = fn
        self.n_workers = n_workers
        self.item_name = item_name
        self.lanes: List[Any] = []
        self._numbers = itertools.count()
        self.again = Again(scope.task, lambda: not scope.task.stopped)
        #: The map ended (an error, Ctrl-C): items in flight finish in the background, and
        #: one waiting to be tried again stops waiting.
        self._ended = False

    def _stopped(self) -> bool:
        return self._ended or self.scope.task.stopped

    def _bind_lane(self) -> None:
        ctx = self.scope.context
        lane = ctx.add_lane(f"w{next(self._numbers)}")
        self.lanes.append(lane)
        ctx.bind_lane(lane)

    def _call(self, index: int, item: Any) -> Any:
        task = self.scope.task
        # Queued before the cancel, or refused by a budget (which stops its task): not started.
        if task.stopped:
            raise Cancelled.not_started(self.item_name(item, index))
        reservation = reserve_all(task.budgets) if task.budgets else None
        if task.budgets and reservation is None:
            raise Cancelled.not_started(self.item_name(item, index))
        try:
            return self._run_item(index, item)
        finally:
            if reservation is not None:
                reservation.release()  # the item ended: its spend is in the metrics

    def _run_item(self, index: int, item: Any) -> Any:
        name = self.item_name(item, index)
        try:
            with self.scope.task.item(name):
                if not self.policy.retries:
                    return self.fn(item)
                return call(self.policy, self.scope.task, name, lambda: self.fn(item), self._stopped)
        except Cancelled:
            raise  # cancelled, not failed: nothing to run again
        except Exception:
            # Retryable from the moment it failed, not once the results before it are in.
            self.again.failed(index, item, name)
            raise

    def map(self, items: Iterable[Any], return_exceptions: bool) -> List[Any]:
        failure: Optional[BaseException] = None
        pool = ThreadPoolExecutor(self.n_workers, thread_name_prefix="milepost-worker", initializer=self._bind_lane)
        pending: Deque[Tuple[int, Any, Future[Any]]] = deque()
        steer = self.scope.context.steer
        if steer is not None and return_exceptions:  # without, the first failure ends the map
            steer.add_pool(self.again)
        try:
            return self._collect(pool, pending, items, return_exceptions)
        except BaseException as e:
            failure = e
            raise
        finally:
            self._ended = True
            self.again.close()
            if steer is not None:
                steer.remove_pool(self.again)
            # Items not started are dropped. A cancel lets the items in flight finish first;
            # an error or Ctrl-C returns at once (a thread cannot be interrupted: items in
            # flight finish in the background, and the interpreter's exit waits for them).
            for _, _, f in pending:
                f.cancel()
            pool.shutdown(wait=failure is None or isinstance(failure, Cancelled), cancel_futures=True)
            self.scope.context.finish_lanes(self.lanes)
            self.scope.end(failure)

    def _submit(
        self, pool: ThreadPoolExecutor, pending: Deque[Tuple[int, Any, Future[Any]]], index: int, item: Any
    ) -> None:
        pending.append((index, item, pool.submit(self._call, index, item)))

    def _collect(
        self,
        pool: ThreadPoolExecutor,
        pending: Deque[Tuple[int, Any, Future[Any]]],
        items: Iterable[Any],
        return_exceptions: bool,
    ) -> List[Any]:
        """Feeds the pool with bounded read-ahead and gathers results in input order; items
        asked to run again go in beside the new ones, and the map waits for them."""
        task = self.scope.task
        again = self.again
        results: List[Any] = []
        source = enumerate(items)
        for index, item in itertools.islice(source, self.n_workers * _AHEAD_PER_WORKER):
            self._submit(pool, pending, index, item)
        # This loop hands every item to the pool and takes its result: it runs once an item,
        # with the workers waiting on it, so it does only that (no objects made per item).
        while pending:
            index, item, fut = pending.popleft()
            try:
                value = fut.result()
            except NotStarted:
                continue  # queued before the cancel, not started; Cancelled is raised below
            except Exception as e:  # noqa: BLE001 - reported per the return_exceptions contract
                if not return_exceptions:
                    raise
                value = e
            if index < len(results):
                results[index] = value  # an item run again
            else:
                results.append(value)
            if task.stopped:
                continue
            if again.waiting:
                for index, item in again.take():
                    self._submit(pool, pending, index, item)
            nxt = next(source, None)  # enumerate's items are tuples: None is its end
            if nxt is not None:
                self._submit(pool, pending, *nxt)
            if not pending and again.pending_or_close():
                for index, item in again.take():
                    self._submit(pool, pending, index, item)
        if task.stopped:
            raise task.stopped_error("items in flight finished, the others did not run")
        return results
