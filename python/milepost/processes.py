"""Process pools whose workers count every item into the run's shared memory."""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, TypeVar, Union

from .errors import Cancelled, MilepostError
from .pools import _default_name, pool_task
from .run import Run, current_run
from .task import Task, _length, _text
from .workers import ChunkResult, init_pool_worker, run_chunk

__all__ = ["process_map", "process_as_completed", "WorkerDied"]

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(MilepostError):
    """A worker process died (killed, out of memory): the pool could not run this item."""


def _not_run(name: str, state: str) -> BaseException:
    if state == "cancelled":
        return Cancelled.not_started(name)
    return WorkerDied(f"{name!r} did not run: a worker process died and broke the pool")


def _lost(name: str) -> WorkerDied:
    # Its chunk's results never came back; the counts in the run say whether it ran.
    return WorkerDied(f"no result for {name!r}: a worker process died and its chunk was lost")


def _record_rows(task: Task, chunk: List[Tuple[int, Any, str]], results: List[ChunkResult]) -> None:
    """History rows for a chunk's items (one result per item, in chunk order), stored by the
    parent (a worker has no store), so that a resumed run's `pending()` knows the items the
    pool finished. Items that did not start have no row: a resumed run runs them."""
    store = task.run._store
    if store is None:
        return
    for (_, _, name), (_, _, _, row) in zip(chunk, results):
        if row is not None:
            store.item(task._history_path, _text(name), *row)


def _chunksize(total: Optional[int], workers: int) -> int:
    # multiprocessing.Pool.map's rule: about four chunks a worker.
    if total is None:
        return 16
    size, extra = divmod(total, workers * 4)
    return max(1, size + bool(extra))


def process_as_completed(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = _default_name,
    run: Optional[Union[Run, Task]] = None,
    task: Optional[Task] = None,
    mp_context: Optional[Any] = None,
    display: Optional[str] = "auto",
) -> Iterator[Tuple[int, Union[R, BaseException]]]:
    """Runs `fn` over `items` in worker processes; yields `(index, result or exception)` as
    chunks complete. Every call is an item of the task, counted when it ends inside the
    worker (not when its chunk comes back), in a lane per worker process.

    `fn` must be picklable (defined at module level), as for `ProcessPoolExecutor`. Inside
    it, `milepost.current_item()` is the item being processed. If a worker dies, its item in
    flight is counted failed ("worker died"), the pool breaks (as `concurrent.futures`' does)
    and the items that did not run come back as `WorkerDied`.
    """
    n_workers = workers or multiprocessing.cpu_count()
    if n_workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    total = total if total is not None else _length(items)
    size = chunksize or _chunksize(total, n_workers)
    if size < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    task, own, made = pool_task(fn, description, total, unit, run, task, display)
    r = task.run
    indexed = ((i, item, item_name(item, i)) for i, item in enumerate(items))
    chunks = iter(lambda: list(itertools.islice(indexed, size)), [])
    ctx = mp_context or multiprocessing.get_context()
    pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=init_pool_worker, initargs=(task,))
    pending: Dict[Future[List[ChunkResult]], List[Tuple[int, Any, str]]] = {}
    state = "completed"
    try:
        # Enough chunks queued that a worker never waits for the parent to submit the next one
        # (on a busy machine the parent's thread may not run for a while), few enough that a
        # long iterable is never materialized.
        for chunk in itertools.islice(chunks, max(16, n_workers * 4)):
            pending[pool.submit(run_chunk, fn, chunk)] = chunk
        while pending:
            done: Set[Future[Any]]
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                chunk = pending.pop(fut)
                if fut.cancelled():
                    for i, _, name in chunk:
                        yield i, _not_run(name, "cancelled")
                    continue
                try:
                    results = fut.result()
                except BrokenProcessPool:
                    state = "failed"
                    results = [(i, False, _lost(name), None) for i, _, name in chunk]
                _record_rows(task, chunk, results)
                for index, _ok, value, _row in results:
                    yield index, value
                if r.cancelled:
                    state = "cancelled"
                    for f in pending:
                        f.cancel()  # chunks not started yet
                if state == "completed":
                    for nxt in itertools.islice(chunks, 1):
                        pending[pool.submit(run_chunk, fn, nxt)] = nxt
                else:
                    for nxt in chunks:  # broken or cancelled: what is left does not run
                        for i, _, name in nxt:
                            yield i, _not_run(name, state)
    except BaseException as e:
        state = "cancelled" if isinstance(e, (KeyboardInterrupt, GeneratorExit)) else "failed"
        raise
    finally:
        for f in pending:
            f.cancel()
        # Ctrl-C returns at once; otherwise wait, so that the final count sees every worker
        # that ended (a broken pool terminates its workers: that is quick).
        pool.shutdown(wait=state != "cancelled", cancel_futures=True)
        r._sample_now()  # account for workers that died, take their last events
        if made or state != "completed":
            task.end(state)
        if own is not None:
            own.finish(state)


def process_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    return_exceptions: bool = False,
    **kwargs: Any,
) -> List[Union[R, BaseException]]:
    """`fn` over `items` in worker processes, results in input order (see
    `process_as_completed` for the arguments). An item that raises is counted failed with
    its error; with `return_exceptions=True` its exception takes its place in the results,
    otherwise the first exception (in input order) is raised once everything has run."""
    results: Dict[int, Union[R, BaseException]] = dict(
        process_as_completed(fn, items, workers, chunksize, **kwargs)
    )
    ordered = [results[i] for i in range(len(results))]
    if any(isinstance(v, Cancelled) for v in ordered):
        raise Cancelled("the run was cancelled: items not started were not run")
    if not return_exceptions:
        for value in ordered:
            if isinstance(value, BaseException):
                raise value
    return ordered
