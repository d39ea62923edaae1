"""`map` and `as_completed` on a Dask cluster, like `process_map` and `process_as_completed`."""

from __future__ import annotations

import functools
import itertools
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from ..errors import InvalidValueError, MilepostError
from ..owner import Owner
from ..pools import PoolScope, default_name
from ..retrying import NO_RETRIES, RetryPolicy, call
from ..task import Task, length_of
from .link import connect

__all__ = ["as_completed", "map"]

T = TypeVar("T")
R = TypeVar("R")

#: A pool item's result from a worker: index, ok, value (or exception), and the item's row
#: when the run stores it from here (a worker on the run's shared memory has no store).
Result = Tuple[int, bool, Any, Any]


def run_chunk(
    handle: Tuple[Callable[..., Task], Tuple[Any, ...]],
    fn: Callable[[Any], Any],
    chunk: List[Tuple[int, Any, str]],
    policy: RetryPolicy,
) -> Any:
    """In a Dask worker: `fn` over a chunk, each call an item of the task `handle` names (what
    unpickling the task makes), counted when it ends."""
    make, args = handle
    task = make(*args)
    out: List[Result] = []
    # On shared memory nothing here stores a row (a worker keeps rows only in a process pool's
    # chunk): the run stores them from the results.
    rows = task.context.rows
    returns_rows = rows is None or rows.buffer is None
    for index, item, name in chunk:
        it = task.item(name)
        try:
            with it:
                value = (
                    call(policy, task, name, functools.partial(fn, item), lambda: False) if policy.retries else fn(item)
                )
            ok = True
        except Exception as e:  # noqa: BLE001 - returned per item
            ok, value = False, e
        out.append((index, ok, value, it.row if returns_rows else None))
    # Where its counts travel: the run holds the chunk's future until a message sent after
    # this one arrived (see `_DaskPool.results`).
    sent = getattr(task.context, "last_sent", None)
    return out, sent() if sent is not None else None


def _chunk_failed(chunk: List[Tuple[int, Any, str]], got: Any) -> List[Result]:
    """Each item of a chunk that failed as a whole (a worker died too often, or it was
    cancelled): `got` is Dask's `(type, exception, traceback)` or the exception."""
    error = got[1] if isinstance(got, tuple) else got
    if not isinstance(error, BaseException):
        error = MilepostError(f"the chunk failed: {error!r}")
    return [(i, False, error, None) for i, _, _ in chunk]


def _chunks(
    items: Iterable[Any], size: int, item_name: Callable[[Any, int], str]
) -> Iterator[List[Tuple[int, Any, str]]]:
    indexed = ((i, item, item_name(item, i)) for i, item in enumerate(items))
    return iter(lambda: list(itertools.islice(indexed, size)), [])


def _chunksize(chunksize: Optional[int], total: Optional[int], client: Any) -> int:
    if chunksize not in (None, 0):
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise InvalidValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
        return chunksize
    threads = max(1, sum(client.nthreads().values()))
    # About eight chunks a thread: few enough that the scheduler's cost per task (a
    # millisecond or so) stays small next to a chunk's, enough to balance the load.
    return max(1, -(-(total or 0) // (threads * 8))) if total else 16


def _client(client: Any) -> Any:
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        raise MilepostError("milepost.dask.map needs a Dask client: pass client=, or make one first") from None


class _DaskPool:
    """One map: chunks as Dask tasks, results as they come, exact counts at the end."""

    def __init__(self, fn: Callable[[Any], Any], items: Iterable[Any], client: Any, kw: Dict[str, Any]) -> None:
        self.client = _client(client)
        total = kw["total"] if kw["total"] is not None else length_of(items)
        size = _chunksize(kw["chunksize"], total, self.client)
        self.scope = PoolScope(fn, kw["description"], total, kw["unit"], kw["run"], kw["task"], kw["display"])
        try:
            owner = self.scope.context
            if not isinstance(owner, Owner):
                raise MilepostError("milepost.dask.map is called in the process that started the run")
            self.link = connect(owner, self.client)
            self.fn = fn
            self.policy = RetryPolicy.of(kw["retries"], kw["retry_on"], kw["backoff"]) if kw["retries"] else NO_RETRIES
            self.chunks = list(_chunks(items, size, kw["item_name"]))
        except BaseException as e:
            # The items, or a name of one, raised: the phase made above (and a run of its own)
            # ends failed with it (it stayed running, and the run it made stayed current).
            self.scope.end(e)
            raise

    def results(self) -> Iterator[Tuple[int, Any]]:
        from distributed import as_completed as dask_completed
        from distributed import wait

        task = self.scope.task
        # The task's handle, not the task: Dask's client keeps its last 1,000 messages, task
        # graphs and their arguments with them, and a task kept there kept its whole run.
        handle = task.__reduce__()
        futures = self.client.map(
            run_chunk,
            [handle] * len(self.chunks),
            [self.fn] * len(self.chunks),
            self.chunks,
            [self.policy] * len(self.chunks),
            pure=False,
        )
        # Results fetched on the client's loop as chunks end, not one blocking call each.
        completed = dask_completed(futures, with_results=True, raise_errors=False)
        pending = {f.key: (f, c) for f, c in zip(futures, self.chunks, strict=True)}
        del futures
        # A chunk's future, once its results are taken, is released once its worker's counts
        # of it have arrived (a message it sent after the chunk ended): a future held is one
        # Dask runs again when the worker holding its result dies (every chunk a dying worker
        # had finished ran again, and counted again), and one released before its counts
        # arrived had them die with the worker.
        held: List[Tuple[Any, Optional[Tuple[str, int]]]] = []
        try:
            for fut, got in completed:
                _, chunk = pending.pop(fut.key)
                whole = fut.status != "finished"
                results: List[Result] = _chunk_failed(chunk, got) if whole else got[0]
                held.append((fut, None if whole else got[1]))
                held = [(f, sent) for f, sent in held if not self._release(f, sent)]
                del fut
                for (index, _, value, row), (_, _, name) in zip(results, chunk, strict=True):
                    if row is not None:
                        task.record(name, row, "dask")
                    elif whole:  # its workers died (or it was cancelled): each item fails here
                        task.fail(name, value)
                    yield index, value
        finally:
            self.client.cancel([f for f, _ in pending.values() if not f.done()])
            pending.clear()
            if sys.exc_info()[1] is None:
                # Chunks whose worker died before its counts of them went: Dask runs them
                # again (they are held), and that run counts them.
                wait([f for f, _ in held if not f.done()])
            self.link.catch_up()  # what the workers counted is in the run before the map returns
            held.clear()

    def _release(self, fut: Any, sent: Optional[Tuple[str, int]]) -> bool:
        """Releases the future of a chunk whose counts are in the run: those of a worker on
        shared memory are at once; a remote worker's, once it sent a message after the chunk's
        (`sent`: its address and the number of its last message then). One whose worker died
        first stays held: Dask runs it again, and that run counts it (released, it ran nowhere
        and its counts were lost)."""
        if sent is not None and not self.link.merger.heard_after(*sent):
            return False
        fut.release()
        return True


def as_completed(
    fn: Callable[[T], R],
    items: Iterable[T],
    client: Any = None,
    chunksize: Optional[int] = None,
    *,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = default_name,
    run: Optional[Task] = None,
    task: Optional[Task] = None,
    display: Optional[str] = "auto",
    retries: int = 0,
    retry_on: Any = (Exception,),
    backoff: float = 0.5,
) -> Iterator[Tuple[int, Union[R, BaseException]]]:
    """Runs `fn` over `items` on a Dask cluster (`client`, or the default one); yields
    `(index, result or exception)` as chunks complete. Every call is an item of the pool's
    phase, counted inside the worker when it ends, in a lane per Dask worker."""
    kw = dict(
        description=description,
        total=total,
        unit=unit,
        item_name=item_name,
        run=run,
        task=task,
        display=display,
        retries=retries,
        retry_on=retry_on,
        backoff=backoff,
        chunksize=chunksize,
    )
    pool = _DaskPool(fn, items, client, kw)
    failure: Optional[BaseException] = None
    try:
        yield from pool.results()
    except BaseException as e:
        failure = e
        raise
    finally:
        pool.scope.end(failure)


def map(  # noqa: A001 - milepost.dask.map, as Client.map
    fn: Callable[[T], R],
    items: Iterable[T],
    client: Any = None,
    chunksize: Optional[int] = None,
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
    """`fn` over `items` on a Dask cluster, results in input order. An item that raises is
    counted failed with its error; with `return_exceptions=True` its exception takes its place
    in the results, otherwise the first one (in input order) is raised once everything ran."""
    kw = dict(
        description=description,
        total=total,
        unit=unit,
        item_name=item_name,
        run=run,
        task=task,
        display=display,
        retries=retries,
        retry_on=retry_on,
        backoff=backoff,
        chunksize=chunksize,
    )
    pool = _DaskPool(fn, items, client, kw)
    failure: Optional[BaseException] = None
    try:
        results = dict(pool.results())
        ordered = [results[i] for i in range(len(results))]
        if not return_exceptions:
            for value in ordered:
                if isinstance(value, BaseException):
                    raise value
        return ordered
    except BaseException as e:
        failure = e
        raise
    finally:
        pool.scope.end(failure)
