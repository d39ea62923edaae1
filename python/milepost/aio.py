"""asyncio: `track()` over an async iterable, `async_map` and `async_as_completed`.

Nothing here blocks the event loop: counting is a C call, and the live channel's retries reach
a pool through `Again`'s lock, held for a list swap only. asyncio itself is imported when a
pool runs (inside a coroutine, so it is loaded already), never by `import milepost`.
"""

from __future__ import annotations

import inspect
import itertools
from collections import deque
from typing import (
    Any,
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _milepost
from .budget import Reservation, reserve_all
from .errors import Cancelled, InvalidValueError
from .pools import Again, PoolScope, default_name
from .retrying import NO_RETRIES, RetryPolicy, call_async
from .task import Task, length_of

__all__ = ["AsyncTracker", "async_map", "async_as_completed"]

T = TypeVar("T")
R = TypeVar("R")

#: Results finished ahead of the consumer of `async_as_completed`, per slot: past them the
#: workers wait, so a slow consumer never makes the pool read its items ahead without bound.
_AHEAD_PER_SLOT = 4
#: What a worker hands the consumer: a result, a failure of the item (a result under
#: `return_exceptions`), or what ends the pool (Ctrl-C, the items' iterable raising).
_OK, _FAILED, _FATAL = 0, 1, 2
_END = object()


class _LoopEnd:
    """An async loop's end, told once (by the loop, or by its guard when the loop was dropped
    after `break` or an exception), and the reservation of the item it handed out last, which
    ends with it."""

    __slots__ = ("on_end", "held")

    def __init__(self, on_end: Callable[..., Any]) -> None:
        self.on_end: Optional[Callable[..., Any]] = on_end
        #: Under a budget: the item handed out last is reserved until the next is asked for.
        self.held: Optional[Reservation] = None

    def release(self, finished: bool = True) -> None:
        held, self.held = self.held, None
        if held is not None:
            held.release(finished)

    def __call__(self, how: str, exc: Optional[BaseException] = None) -> None:
        self.release()
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(how, exc)


def _being_cancelled(task: Any) -> bool:
    """Whether `task` was asked to cancel (Python 3.11+ can tell; before, assume it was)."""
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or bool(cancelling())


class AsyncTracker:
    """What `track()` returns for an async iterable: `async for` counts an item done when the
    next one is asked for, ends the loop's task as the sync tracker does (completed when
    exhausted, `break` or `aclose()`: cancelled, an exception: `outcome.end_state`'s rule), and
    raises `milepost.Cancelled` instead of handing out items once the run is cancelled."""

    __slots__ = ("_source", "_advance", "_context", "_pending", "_end", "_guard", "_task")

    def __init__(self, source: AsyncIterator[Any], task: Task, on_end: Callable[..., Any]) -> None:
        self._source = source
        self._task = task
        self._advance = task.advance
        self._context = task.context
        self._pending = False
        self._end = _LoopEnd(on_end)
        # A native tracker over nothing, kept for its end only: collected while an exception
        # leaves the loop's body it reports that exception, after `break` an abandoned loop.
        # No Python object could tell them apart (`__del__` runs with the exception put aside).
        # It holds the end, not this object: no cycle, so it goes when the loop's frame does.
        self._guard = _milepost.Tracker(iter(()), task.node, None, self._end)

    def __aiter__(self) -> AsyncTracker:
        return self

    async def __anext__(self) -> Any:
        if self._pending:  # the body of the item handed out last finished
            self._pending = False
            self._advance()
        self._end.release()
        budgets = self._task.budgets
        if not self._task.stopped and budgets:
            self._end.held = reserve_all(budgets)
        if self._task.stopped or (budgets and self._end.held is None):
            exc = self._task.stopped_error("the items left were not handed out")
            self._end.release(finished=False)
            self._end("raised", exc)
            raise exc
        try:
            item = await self._source.__anext__()
        except BaseException as e:
            self._end.release(finished=False)
            if isinstance(e, StopAsyncIteration):
                self._end("completed")
            else:
                self._end("raised", e)
            raise
        self._pending = True
        return item

    async def aclose(self) -> None:
        """Ends the loop now, as `break` does (cancelled), and closes the iterable."""
        self._end("abandoned")
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()

    def update(self, n: int = 1) -> None:
        """Counts `n` more items done (tqdm's `update`)."""
        self._advance(n)

    def set_description(self, desc: str, refresh: bool = True) -> None:
        if desc:
            self._task.rename(desc)


def _concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"concurrency must be an int >= 1, got {value!r}")
    return value


def _check_fn(fn: Any) -> None:
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with `async def __call__`
    if not (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)):
        raise TypeError(f"async_map needs an async function (async def), got {fn!r}")


class _AsyncPool:
    """One `async_map` or `async_as_completed`: a long-lived worker coroutine, and a lane, per
    concurrency slot, pulling the items one at a time (nothing is read ahead of a free slot)."""

    def __init__(
        self,
        fn: Callable[[Any], Awaitable[Any]],
        items: Union[Iterable[Any], AsyncIterable[Any]],
        concurrency: Any,
        item_name: Callable[[Any, int], str],
        scope_args: Tuple[Any, ...],
        policy: RetryPolicy = NO_RETRIES,
    ) -> None:
        # Checked before anything starts: no phase, no run, no coroutine made.
        self.n = _concurrency(concurrency)
        self.policy = policy
        _check_fn(fn)
        if hasattr(items, "__iter__"):
            self._iter: Optional[Iterator[Any]] = iter(items)  # type: ignore[arg-type]
            self._aiter: Optional[AsyncIterator[Any]] = None
        elif hasattr(items, "__aiter__"):
            self._iter, self._aiter = None, items.__aiter__()
        else:
            raise TypeError(f"items must be an iterable or an async iterable, got {type(items).__name__}")
        self.fn = fn
        self.item_name = item_name
        self._scope_args = scope_args
        self._total = scope_args[2] if scope_args[2] is not None else length_of(items)  # type: ignore[arg-type]
        self._count = itertools.count()
        self._retry: Deque[Tuple[int, Any]] = deque()
        self._exhausted = False
        self._stopping = False
        self._running = 0
        self._return_exceptions = False

    def _open(self) -> None:
        import asyncio  # loaded already: a coroutine is running

        fn_, description, _, unit, run, task, display = self._scope_args
        self.scope = PoolScope(fn_, description, self._total, unit, run, task, display)
        self.context = self.scope.context
        self.again = Again(self.scope.task, lambda: not (self.scope.task.stopped or self._stopping))
        self._out: asyncio.Queue[Any] = asyncio.Queue(self.n * _AHEAD_PER_SLOT)
        self._pulling = asyncio.Lock()  # an async iterator takes one `__anext__` at a time

    async def stream(self, return_exceptions: bool) -> AsyncGenerator[Tuple[int, Any], None]:
        """`(index, result or exception)` as items finish; raises what ends the pool."""
        import asyncio

        self._open()
        self._return_exceptions = return_exceptions
        steer = self.context.steer
        if steer is not None and return_exceptions:  # without, the first failure ends the pool
            steer.add_pool(self.again)
        lanes = [self.context.add_lane(f"w{i}") for i in range(self.n)]
        self._running = self.n
        workers = [asyncio.ensure_future(self._worker(lane)) for lane in lanes]
        failure: Optional[BaseException] = None
        try:
            while self._running or not self._out.empty():
                message = await self._out.get()
                if message is _END:
                    continue
                index, value, kind = message
                if kind == _FATAL or (kind == _FAILED and not return_exceptions):
                    raise value
                yield index, value
            if self.scope.task.stopped:
                raise self.scope.task.stopped_error("items in flight finished, the others did not run")
        except BaseException as e:
            failure = e
            raise
        finally:
            self.again.close()
            if steer is not None:
                steer.remove_pool(self.again)
            await self._close(workers, failure)
            self.context.finish_lanes(lanes)
            self.scope.end(failure)

    async def _close(self, workers: List[Any], failure: Optional[BaseException]) -> None:
        """Cancels the workers still running (on an error, Ctrl-C, the caller cancelled) and
        awaits every one of them, even through a second cancel, so that no task is left
        pending; then raises that second cancel, if any."""
        import asyncio

        self._stopping = True
        for w in workers:
            w.cancel()  # a worker that ended already ignores it
        interrupted: Optional[BaseException] = None
        pending = [w for w in workers if not w.done()]
        while pending:
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError as e:
                interrupted = e
            pending = [w for w in pending if not w.done()]
        if interrupted is not None and failure is None:
            raise interrupted

    async def _worker(self, lane: Any) -> None:
        import asyncio

        self.context.bind_lane(lane)  # this task's context: the lane of this slot only
        budgets = self.scope.task.budgets
        try:
            while True:
                # Reserved before the item is taken: one a budget refuses (which stops its
                # task) is never read from the iterable. Released once the item ended.
                reservation = reserve_all(budgets) if budgets else None
                if budgets and reservation is None:
                    if any(b.cancels_in_flight and b.refused for b in budgets):  # `on_budget="cancel"`
                        error = self.scope.task.stopped_error("items in flight were cancelled, the others did not run")
                        await self._out.put((-1, error, _FATAL))  # ends the pool as a failure would
                    return
                job, ended = None, False
                try:
                    job = await self._take()
                    result = await self._call(*job) if job is not None else None
                    ended = job is not None
                finally:
                    if reservation is not None:
                        reservation.release(ended)  # not started, or cancelled: no item's length
                if result is None:
                    return
                await self._out.put(result)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the items' iterable raised (Ctrl-C too): it ends the pool
            self._stopping = True
            await self._out.put((-1, e, _FATAL))
        finally:
            self._running -= 1
            if not self._running and not self._out.full():
                self._out.put_nowait(_END)  # wakes the consumer, which sees nobody running

    async def _take(self) -> Optional[Tuple[int, Any]]:
        """The next job of a free slot: an item asked to run again, else the next item; None
        once the pool stops, is cancelled or has nothing left."""
        while not (self._stopping or self.scope.task.stopped):
            self._retry.extend(self.again.take())
            if self._retry:
                return self._retry.popleft()
            if not self._exhausted:
                item = await self._pull()
                if item is not _END:
                    return next(self._count), item
                self._exhausted = True
            # The last slot still working waits for retries asked meanwhile; the others leave.
            if self._running > 1 or not self.again.pending_or_close():
                return None
        return None

    async def _pull(self) -> Any:
        if self._iter is not None:
            return next(self._iter, _END)
        async with self._pulling:
            if self._exhausted or self._aiter is None:
                return _END
            try:
                return await self._aiter.__anext__()
            except StopAsyncIteration:
                return _END

    async def _call(self, index: int, item: Any) -> Tuple[int, Any, int]:
        import asyncio

        name = None
        try:
            name = self.item_name(item, index)
            with self.scope.task.item(name):
                if not self.policy.retries:
                    return index, await self.fn(item), _OK
                stopped = lambda: self._stopping or self.scope.task.stopped  # noqa: E731
                return index, await call_async(self.policy, self.scope.task, name, lambda: self.fn(item), stopped), _OK
        except asyncio.CancelledError as e:
            if self._stopping or _being_cancelled(asyncio.current_task()):
                raise  # this worker is being cancelled: the item was counted cancelled
            return index, e, _FAILED  # raised by the item's own code: the slot goes on
        except Cancelled as e:
            return index, e, _FAILED  # cancelled, not failed: nothing to run again
        except Exception as e:  # noqa: BLE001 - reported per the return_exceptions contract
            if not self._return_exceptions:
                self._stopping = True  # the first failure ends the map: no item starts after it
            elif not self._stopping and name is not None:  # an item whose name failed never ran
                self.again.failed(index, item, name)
            return index, e, _FAILED
        except BaseException as e:  # Ctrl-C, SystemExit: the caller gets it, not the loop
            self._stopping = True
            return index, e, _FATAL


async def async_map(
    fn: Callable[[T], Awaitable[R]],
    items: Union[Iterable[T], AsyncIterable[T]],
    concurrency: int = 16,
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
    """Awaits `fn(item)` for every item, `concurrency` at a time, each call an item in its
    slot's lane (`w0`, `w1`...); results in input order. `items` may be an iterable or an async
    iterable, read one item per free slot.

    An item that raises is counted failed; with `return_exceptions=True` its exception takes its
    place in the results (and the live channel's retry runs it again), otherwise the first
    failure ends the map as in `asyncio.TaskGroup`: items in flight are cancelled (counted
    cancelled), the others do not run, and the failure is raised. A run cancel lets the items in
    flight finish, then raises `milepost.Cancelled`. The caller's task cancelled (or Ctrl-C)
    cancels the items in flight and awaits them before the cancel propagates.

    Items are counted in `task`, or a new phase of `run` or of the current run, or a run of
    their own, as in `thread_map`. `retries`, `retry_on` and `backoff` retry an item in its
    slot as in `thread_map` (the wait is awaited: the loop goes on meanwhile).
    """
    policy = RetryPolicy.of(retries, retry_on, backoff)
    pool = _AsyncPool(fn, items, concurrency, item_name, (fn, description, total, unit, run, task, display), policy)
    results: List[Any] = []
    stream = pool.stream(return_exceptions)
    try:
        async for index, value in stream:
            if index >= len(results):
                results.extend([None] * (index + 1 - len(results)))
            results[index] = value  # an item run again replaces its failure
    finally:
        await stream.aclose()
    return results


def async_as_completed(
    fn: Callable[[T], Awaitable[R]],
    items: Union[Iterable[T], AsyncIterable[T]],
    concurrency: int = 16,
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
) -> AsyncIterator[Tuple[int, Union[R, BaseException]]]:
    """`async_map`'s items as they finish: `(index, result or exception)` (an item run again
    comes again). The arguments are checked now; the pool starts at the first `async for`
    step. Leaving the loop early cancels the items in flight once the iterator is closed: wrap
    it in `contextlib.aclosing` to close it at once."""
    policy = RetryPolicy.of(retries, retry_on, backoff)
    pool = _AsyncPool(fn, items, concurrency, item_name, (fn, description, total, unit, run, task, display), policy)
    return pool.stream(return_exceptions)
