"""Process pools whose workers count every item into the run's shared memory."""

from __future__ import annotations

import itertools
import multiprocessing
import operator
import os
import pickle
import queue
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union, cast

from . import _milepost
from .budget import Budget
from .context import RowSink
from .errors import Cancelled, InvalidValueError, MilepostError, NotStarted
from .persistence.items import unpack
from .pools import Again, PoolScope, default_name, worker_count
from .retrying import NO_RETRIES, RetryPolicy
from .snapshot import node_paths
from .task import Task, length_of
from .workers import Chunk, ChunkDone, ChunkRowsText, ChunkText, init_pool_worker, run_chunk

__all__ = ["process_map", "process_as_completed", "WorkerDied"]

T = TypeVar("T")
R = TypeVar("R")

#: An item as the pool hands it out: its index, the item, its name.
Job = Tuple[int, Any, str]


class WorkerDied(MilepostError):
    """A worker process died (killed, out of memory): the pool could not run this item."""


def _not_run(name: str, state: str) -> BaseException:
    if state == "cancelled":
        return Cancelled.not_started(name)
    return WorkerDied(f"{name!r} did not run: a worker process died and broke the pool")


def _lost(name: str) -> WorkerDied:
    # Its chunk's results never came back; the counts in the run say whether it ran.
    return WorkerDied(f"no result for {name!r}: a worker process died and its chunk was lost")


class _Chunk:
    """Items handed to a worker together: their indices, the items, and their names when the
    parent made them (None: they have the default names, which the worker makes, and the
    parent only for the few it needs: a failure, an item not run)."""

    __slots__ = ("indices", "items", "names", "_name")

    def __init__(
        self, indices: Sequence[int], items: List[Any], names: Optional[List[str]], name: Callable[[Any, int], str]
    ) -> None:
        self.indices = indices
        self.items = items
        self.names = names
        self._name = name

    @classmethod
    def of_jobs(cls, jobs: List[Job], name: Callable[[Any, int], str]) -> _Chunk:
        return cls([i for i, _, _ in jobs], [item for _, item, _ in jobs], [n for _, _, n in jobs], name)

    def __len__(self) -> int:
        return len(self.items)

    def split(self, k: int) -> Tuple[_Chunk, _Chunk]:
        names = self.names
        first = _Chunk(self.indices[:k], self.items[:k], None if names is None else names[:k], self._name)
        return first, _Chunk(self.indices[k:], self.items[k:], None if names is None else names[k:], self._name)

    def name(self, k: int) -> str:
        return self.names[k] if self.names is not None else self._name(self.items[k], self.indices[k])

    def job(self, k: int) -> Job:
        return self.indices[k], self.items[k], self.name(k)

    def args(self) -> Chunk:
        """What the worker is handed (see `workers.Chunk`)."""
        return self.indices, self.items, self.names


def _chunks(items: Iterable[Any], size: int, item_name: Callable[[Any, int], str]) -> Iterator[_Chunk]:
    """`items` in chunks of `size`, made as they are asked for (a long iterable is never
    materialized). Default names are left to the workers."""
    source = iter(items)
    named = item_name is not default_name
    start = 0
    while True:
        batch = list(itertools.islice(source, size))
        if not batch:
            return
        indices = range(start, start + len(batch))
        names = [item_name(item, i) for i, item in zip(indices, batch, strict=True)] if named else None
        yield _Chunk(indices, batch, names, item_name)
        start += len(batch)


def _record(task: Task, pid: int, rows: Optional[ChunkRowsText], recent: bytes) -> None:
    """What the parent keeps of a chunk whose results came back: the history rows of the
    items that ran (a worker has no store), so that a resumed run's `pending()` knows them,
    and its newest items in the run's recent list (in the lane of the worker they ran in).
    Items that did not start have no row: a resumed run runs them."""
    sink = task.context.rows
    if rows is not None and sink is not None:
        run_id, chunks = rows
        for chunk in chunks:
            _store(sink, run_id, chunk)
    task.node.record_recent(recent, task.context.wall(0.0), f"pid {pid}")


def _store(sink: RowSink, run_id: str, chunk: ChunkText) -> None:
    """A chunk of rows as the worker encoded them (`RowBuffer.take()`: the text, its counts by
    status, and what its short rows share): queued in one call into the store's buffer; row by
    row into any other sink (a store that is off counts them)."""
    buffer = sink.buffer
    if buffer is not None:
        try:
            sink.pushed(_milepost.extend_rows(buffer, run_id, *chunk))
            return
        except ValueError:  # not rows of this buffer's run (never seen): they go in as its own
            pass
    text, phase, t0 = chunk[0], chunk[5], chunk[6]
    for row_phase, name, status, started, duration, error, metrics in unpack(text, phase, t0):
        sink.item(row_phase, name, status, started, duration, error, metrics)


def _chunksize(total: Optional[int], workers: int) -> int:
    # multiprocessing.Pool.map's rule: about four chunks a worker.
    if total is None:
        return 16
    size, extra = divmod(total, workers * 4)
    return max(1, size + bool(extra))


def _stop_on_interrupt(pool: ProcessPoolExecutor, pending: Dict[Future[Any], _Chunk], task: Task, number: int) -> None:
    """Ctrl-C in the parent stops the pool as Cancel would (the run goes on, if the job goes
    on): the workers, whose handler leaves the decision to the parent, hand out no new items
    (the chunks still queued come back at once, not started), and the call returns once the
    items in flight have ended; their rows are kept, so a resumed run skips them. A second
    Ctrl-C stops the workers at once; their items in flight are left uncounted, as an item
    interrupted by Ctrl-C is."""
    task.context.stop_pool(number, True)
    try:
        wait(pending)
    except KeyboardInterrupt:
        _stop_workers(pool, task)
        raise
    for fut in pending:
        if not fut.cancelled() and fut.exception() is None:
            pid, _, _, rows, recent = fut.result()
            _record(task, pid, rows, recent)


#: Seconds a pool whose chunks all came back waits for its workers to leave the run before it
#: waits for their processes to end instead (a worker's exit handler that takes its time).
LEAVE_WAIT = 2.0
#: Seconds between looks at whether they left, for their first 50 ms.
LEAVE_NAP = 0.0002


def _close_served(pool: ProcessPoolExecutor, context: Any) -> None:
    """Shuts down a pool whose chunks all came back, and returns once its workers have left the
    run: each marks its slot on its way out, a millisecond or so after it is told to go, where
    the rest of its interpreter's teardown, the kernel's and the executor's reaping of it took
    4 to 6 ms more here (the executor's own thread reaps them meanwhile; the interpreter's exit
    waits for it). So the final count sees every worker as finished, and the job does not wait
    for the processes to be gone. Where the context cannot tell (None: a remote worker's pool, or
    a worker that never counted, which may be a process still starting and about to attach to
    the run's segment), or the workers take longer than LEAVE_WAIT, this waits for their
    processes as `shutdown` does."""
    pids = [p.pid for p in _processes(pool)]
    # The executor's thread is its only record of its workers' reaper (typeshed has the
    # attribute as its wake-up object).
    reaper = cast(Optional[threading.Thread], pool._executor_manager_thread)  # noqa: SLF001
    pool.shutdown(wait=False, cancel_futures=True)
    start = time.monotonic()
    while True:
        left = None if None in pids else context.workers_left(cast(List[int], pids))
        if left:
            return
        waited = time.monotonic() - start
        if left is None or waited > LEAVE_WAIT:
            break
        # A look costs a microsecond: often while the workers are leaving (about 1 to 3 ms
        # here), then seldom (an exit handler of the job's may run first).
        time.sleep(LEAVE_NAP if waited < 0.05 else 0.005)
    if reaper is not None:
        reaper.join()  # what `shutdown(wait=True)` waits for


def _processes(pool: ProcessPoolExecutor) -> List[multiprocessing.Process]:
    """The pool's worker processes: `_processes` is the executor's only record of them."""
    return list((pool._processes or {}).values())  # noqa: SLF001


def _stop_workers(pool: ProcessPoolExecutor, task: Task) -> None:
    """Kills the pool's workers, telling the run first that these are no deaths."""
    procs = _processes(pool)
    task.context.stopping_workers([p.pid for p in procs if p.pid is not None])
    for p in procs:
        p.kill()
    for p in procs:
        p.join(2)
    # The executor notices its workers are gone and fails their futures; let it finish that
    # before anything else touches them (cancelling one it is failing raises in its thread).
    pool.shutdown(wait=True)
    task.context.stopped_workers()


class _Pool:
    """One process pool run: chunks submitted with bounded read-ahead, results as they come
    back. Marks the scope broken when a worker dies; leaves ending the task to the caller."""

    def __init__(
        self,
        scope: PoolScope,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        n_workers: int,
        size: int,
        item_name: Callable[[Any, int], str],
        ctx: Any,
        policy: RetryPolicy = NO_RETRIES,
    ) -> None:
        self.scope = scope
        self.fn = fn
        self.policy = policy
        self.item_name = item_name
        self.chunks: Iterator[_Chunk] = _chunks(items, size, item_name)
        self.number = scope.context.next_pool()
        #: The pool's start, which its workers time their items' rows from: the same in all,
        #: so that the parent joins their chunks of rows (see `RowBuffer`).
        self.origin = time.time()
        self.pool = ProcessPoolExecutor(
            n_workers, mp_context=ctx, initializer=init_pool_worker, initargs=(scope.task, os.getpid(), self.number)
        )
        self.pending: Dict[Future[ChunkDone], _Chunk] = {}
        #: The submitted chunks' futures as they finish (each puts itself here, from the
        #: executor's thread, when it is done or cancelled). `wait(FIRST_COMPLETED)` installed
        #: a waiter in every pending future and took it out again, for each chunk that came back.
        self.finished: "queue.SimpleQueue[Future[ChunkDone]]" = queue.SimpleQueue()
        self.again = Again(scope.task, lambda: scope.state(None) == "completed", self._counted_failures)
        #: The run's budget: each chunk is reserved before it is submitted, and the spend is
        #: read from the run's totals as chunks come back (the workers' metrics are counted in
        #: shared memory, where the budget's own sum cannot see them).
        self.budgets = scope.task.budgets
        #: The budget that refused a chunk: nothing is submitted until the chunks in flight
        #: are back, then the pool asks again with nothing in flight (the counts of a snapshot
        #: taken while workers run can price an item twice); refused then, the budget is spent.
        self.refusing: Optional[Budget] = None
        # Enough chunks queued that a worker never waits for the parent to submit the next one
        # (on a busy machine the parent's thread may not run for a while), few enough that a
        # long iterable is never materialized. Under a budget, a chunk a worker: what is
        # submitted is spent, and a queue of chunks submitted before the spend per item is
        # known could pass the budget.
        self.ahead = n_workers if self.budgets else max(16, n_workers * 4)
        #: Chunks in flight below which the queue is topped up to `ahead` again: in batches,
        #: as each submission wakes the executor's thread once (a pipe write, a `poll`, a turn
        #: of its loop), where the chunks of a batch wake it about once together.
        self.refill = self.ahead - 1 if self.budgets else self.ahead // 2
        self._handed_out = 0
        #: Items each budget's task had finished before this pool (by the budget's key).
        self._base: Dict[str, int] = {}

    def _counted_failures(self) -> Dict[int, int]:
        """The failures each of the pool's workers has counted (by pid), as the run's shared
        counts have them now (a retry takes those whose chunk is not back yet too)."""
        pids = {p.pid for p in _processes(self.pool)}
        lanes = self.scope.context.run.snapshot().data["lanes"]
        return {lane["pid"]: lane["failed"] for lane in lanes if lane["pid"] in pids}

    def _submit(self, chunk: _Chunk) -> None:
        if self.budgets:
            fit = self._reserve(len(chunk)) if self.refusing is None else 0
            if not fit:  # back in front of the queue, for when the chunks in flight are back
                self.chunks = itertools.chain([chunk], self.chunks)
                return
            if fit < len(chunk):  # what fits goes now; the rest is asked for next
                chunk, rest = chunk.split(fit)
                self.chunks = itertools.chain([rest], self.chunks)
        task = self.scope.task
        phase = task.key if task.context.keeps_rows else None  # no history: no rows are made
        # No policy without retries: None pickles in a byte, a policy as an object a chunk.
        policy = self.policy if self.policy.retries else None
        fut = self.pool.submit(run_chunk, self.fn, chunk.args(), policy, phase, self.origin)
        self.pending[fut] = chunk
        fut.add_done_callback(self.finished.put)

    def _submit_next(self, n: int) -> None:
        """Up to `n` more chunks, in order. None once a budget refused one: the refused chunk
        (or what did not fit of it) waits in front of `chunks` for the next ask, and no later
        chunk may run before it. `chunks` is read afresh for each: `_submit` puts back there."""
        for _ in range(n):
            if self.refusing is not None:
                return
            chunk = next(self.chunks, None)
            if chunk is None:
                return
            self._submit(chunk)

    def _reserve(self, n: int) -> int:
        """How many of `n` items the budgets let this pool hand out now, judged from one
        snapshot: each budget's task's spend and items finished, and this pool's items not
        finished."""
        root = self.scope.context.run.snapshot().root
        nodes = dict(node_paths(root))
        fit = n
        for budget in self.budgets:
            node = nodes.get(budget.key, root)
            base = self._base.setdefault(budget.key, node["processed"])
            budget.observe(node["metrics"])
            outstanding = self._handed_out - (node["processed"] - base)
            fit = budget.fit(fit, (node["processed"], max(outstanding, 0)))
            if not fit:
                self.refusing = self.refusing or budget
                break
        self._handed_out += fit
        return fit

    def results(self) -> Iterator[Tuple[int, Any]]:
        """`(index, result or exception)` as chunks come back."""
        for indices, values in self.chunk_results():
            yield from zip(indices, values, strict=True)

    def chunk_results(self) -> Iterator[Tuple[Sequence[int], List[Any]]]:
        """`(indices, results or exceptions)` of each chunk, as chunks come back (and of the
        items left over, once the pool broke or was stopped)."""
        wait_at_end = True
        #: Every chunk came back and nothing broke: the pool's workers are only told to go.
        served = False
        try:
            self._submit_next(self.ahead)
            steer = self.scope.context.steer
            if steer is not None:
                steer.add_pool(self.again)
            while self.pending or self._run_again() or self._ask_again():
                fut = self.finished.get()  # a Ctrl-C interrupts it, as it did `wait`
                if fut in self.pending:
                    yield from self._chunk_done(fut)
            if self.refusing is not None:  # refused with nothing in flight: the budget is spent
                self.refusing.stop()
                yield from self._left_over(self.scope.state(None))
            served = not self.scope.broken
        except KeyboardInterrupt:
            _stop_on_interrupt(self.pool, self.pending, self.scope.task, self.number)  # a second one raises here
            raise
        except GeneratorExit:
            wait_at_end = False  # the caller stopped listening: chunks in flight end on their own
            raise
        finally:
            self.again.close()
            if self.scope.context.steer is not None:
                self.scope.context.steer.remove_pool(self.again)
            for f in self.pending:
                f.cancel()
            if served:
                _close_served(self.pool, self.scope.context)
            else:
                # Waits for the workers (quick: they have no more items, or were stopped), so
                # that the final count sees every worker that ended.
                # Not `cancel_futures=True`: the chunks not started were cancelled above, and
                # with it a chunk that cannot be pickled (an item holding a lock) hangs the
                # executor's thread, and this call, for good (CPython issue 116685, 3.11 and
                # earlier: it forgets the chunks its feeder fails).
                self.pool.shutdown(wait=wait_at_end)
            self.scope.context.stop_pool(self.number, False)  # the bit may serve another pool
            self.scope.context.sample()  # account for workers that died, take their last events

    def _ask_again(self) -> bool:
        """Every chunk in flight is back after a budget refused one: asks again, with nothing
        in flight (True: some went)."""
        if self.refusing is None or self.scope.state(None) != "completed":
            return False
        self.refusing = None
        self._submit_next(self.ahead)
        return bool(self.pending)

    def _run_again(self) -> bool:
        """Once every chunk came back: the items asked to run again, as one more chunk (the
        pool waits for them); False when there are none (none are taken after this)."""
        if self.scope.state(None) != "completed" or not self.again.pending_or_close():
            return False
        self._submit(_Chunk.of_jobs(self.again.take_jobs(), self.item_name))
        return True

    def _chunk_done(self, fut: Future[ChunkDone]) -> Iterator[Tuple[Sequence[int], List[Any]]]:
        """A chunk's results, then the next chunk submitted (or, once the pool broke or the run
        was cancelled, what is left reported as not run)."""
        chunk = self.pending.pop(fut)
        if fut.cancelled():  # by a broken pool or a cancel: the scope says which
            state = self.scope.state(None)
            yield chunk.indices, [_not_run(chunk.name(k), state) for k in range(len(chunk))]
            return
        try:
            pid, values, failed, rows, recent = fut.result()
            _record(self.scope.task, pid, rows, recent)
        except BrokenProcessPool:
            self.scope.broken = True
            pid, values, failed = None, [_lost(chunk.name(k)) for k in range(len(chunk))], []
        for k in failed:  # they ran and raised: they may be asked to run again
            self.again.failed(*chunk.job(k), worker=pid)
        yield chunk.indices, values
        state = self.scope.state(None)
        if state == "completed":
            again = self.again.take_jobs()
            if again:
                self._submit(_Chunk.of_jobs(again, self.item_name))
            if len(self.pending) <= self.refill:
                self._submit_next(self.ahead - len(self.pending))
            return
        for f in self.pending:
            f.cancel()  # chunks not started yet
        yield from self._left_over(state)

    def _left_over(self, state: str) -> Iterator[Tuple[Sequence[int], List[Any]]]:
        """Broken, cancelled or out of budget: what is left does not run."""
        for nxt in self.chunks:
            yield nxt.indices, [_not_run(nxt.name(k), state) for k in range(len(nxt))]


def _make_pool(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: Optional[int],
    chunksize: Optional[int],
    description: Optional[str],
    total: Optional[int],
    unit: str,
    item_name: Callable[[Any, int], str],
    run: Optional[Task],
    task: Optional[Task],
    mp_context: Optional[Any],
    display: Optional[str],
    policy: RetryPolicy,
) -> _Pool:
    # 0 means the default, as it always has here (None too): one worker per CPU, chunks sized
    # to give each worker about four.
    n_workers = worker_count(None if workers == 0 else workers, multiprocessing.cpu_count())
    total = total if total is not None else length_of(items)
    size = chunksize if chunksize not in (None, 0) else _chunksize(total, n_workers)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
    _check_picklable(fn)
    ctx = _context(mp_context)
    scope = PoolScope(fn, description, total, unit, run, task, display)
    return _Pool(scope, fn, items, n_workers, size, item_name, ctx, policy)


def _context(mp_context: Any) -> Any:
    """A multiprocessing context: the one given, one named by its start method ("spawn", as
    `multiprocessing.get_context` takes it), or the default; anything else is an error naming
    it, before the pool or its phase is made."""
    if mp_context is None:
        return multiprocessing.get_context()
    if isinstance(mp_context, str):
        try:
            return multiprocessing.get_context(mp_context)
        except ValueError:
            methods = ", ".join(multiprocessing.get_all_start_methods())
            raise InvalidValueError(
                f"mp_context must be a start method ({methods}) or a context, got {mp_context!r}"
            ) from None
    if not callable(getattr(mp_context, "get_start_method", None)):
        raise InvalidValueError(
            f"mp_context must be a multiprocessing context or a start method's name, got {mp_context!r}"
        )
    return mp_context


def _check_picklable(fn: Callable[[Any], Any]) -> None:
    """Worker processes get `fn` pickled with every chunk: one that cannot be (a lambda, a
    function defined inside another) is said now, before the pool or its phase is made."""
    try:
        pickle.dumps(fn)
    except Exception as e:  # noqa: BLE001 - whatever pickling raises (PicklingError, AttributeError, TypeError)
        raise InvalidValueError(
            f"fn must be picklable to run in worker processes (a function defined at a module's top level): "
            f"{fn!r} is not ({type(e).__name__}: {e})"
        ) from None


def process_as_completed(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = default_name,
    run: Optional[Task] = None,
    task: Optional[Task] = None,
    mp_context: Optional[Any] = None,
    display: Optional[str] = "auto",
    retries: int = 0,
    retry_on: Any = (Exception,),
    backoff: float = 0.5,
) -> Iterator[Tuple[int, Union[R, BaseException]]]:
    """Runs `fn` over `items` in worker processes; yields `(index, result or exception)` as
    chunks complete. Every call is an item of the task, counted when it ends inside the
    worker (not when its chunk comes back), in a lane per worker process.

    `fn` must be picklable (defined at module level), as for `ProcessPoolExecutor`. Inside
    it, `milepost.current_item()` is the item being processed. If a worker dies, its item in
    flight is counted failed ("worker died"), the pool breaks (as `concurrent.futures`' does)
    and the items that did not run come back as `WorkerDied`. Ctrl-C cancels: no new items
    start, the call returns once the items in flight end (a second Ctrl-C stops them).

    An item raising one of `retry_on` is tried again, up to `retries` more times, in the
    same worker, after a jittered wait growing from `backoff` seconds (see `retrying`).
    """
    policy = RetryPolicy.of(retries, retry_on, backoff)
    pool = _make_pool(
        fn, items, workers, chunksize, description, total, unit, item_name, run, task, mp_context, display, policy
    )
    failure: Optional[BaseException] = None
    try:
        yield from pool.results()
    except BaseException as e:
        failure = e
        raise
    finally:
        pool.scope.end(failure)


def process_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    return_exceptions: bool = False,
    description: Optional[str] = None,
    total: Optional[int] = None,
    unit: str = "it",
    item_name: Callable[[T, int], str] = default_name,
    run: Optional[Task] = None,
    task: Optional[Task] = None,
    mp_context: Optional[Any] = None,
    display: Optional[str] = "auto",
    retries: int = 0,
    retry_on: Any = (Exception,),
    backoff: float = 0.5,
) -> List[Union[R, BaseException]]:
    """`fn` over `items` in worker processes, results in input order (see
    `process_as_completed` for the arguments). An item that raises is counted failed with
    its error; with `return_exceptions=True` its exception takes its place in the results,
    otherwise the first exception (in input order) is raised once everything has run, and the
    pool's task ends failed."""
    policy = RetryPolicy.of(retries, retry_on, backoff)
    pool = _make_pool(
        fn, items, workers, chunksize, description, total, unit, item_name, run, task, mp_context, display, policy
    )
    failure: Optional[BaseException] = None
    try:
        ordered = _in_order(pool.chunk_results())
        errors = _exceptions(ordered)
        if any(isinstance(v, NotStarted) for v in errors):
            raise pool.scope.task.stopped_error("items not started were not run")
        if errors and not return_exceptions:
            raise errors[0]
        return ordered
    except BaseException as e:
        failure = e
        raise
    finally:
        pool.scope.end(failure)


def _in_order(chunks: Iterable[Tuple[Sequence[int], List[Any]]]) -> List[Any]:
    """The results of every chunk in input order: whole chunks of consecutive items put end
    to end, then the results of items run again in place of their first ones. Per chunk, not
    per item: the parent's share of a map over small items is this loop."""
    runs: List[Tuple[int, List[Any]]] = []
    again: List[Tuple[Sequence[int], List[Any]]] = []
    for indices, values in chunks:
        if isinstance(indices, range) and indices.step == 1:
            runs.append((indices.start, values))
        else:
            again.append((indices, values))
    runs.sort(key=operator.itemgetter(0))
    ordered = list(itertools.chain.from_iterable(values for _, values in runs))
    for indices, values in again:
        for i, value in zip(indices, values, strict=True):
            ordered[i] = value
    return ordered


def _exceptions(values: List[Any]) -> List[BaseException]:
    """The exceptions among `values`, in order; looked for only when one of their types is
    one (a set of types, made at C speed, is all a map without failures costs)."""
    # Every result came through pickle, which looks its type up in a dict: the types hash.
    if not any(issubclass(kind, BaseException) for kind in set(map(type, values))):
        return []
    return [v for v in values if isinstance(v, BaseException)]
