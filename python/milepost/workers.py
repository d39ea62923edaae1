"""Worker processes: the same task API as in the parent, counting into shared memory.

A task pickles to a small handle (the segment's path and the node's index); unpickled in a
worker process it becomes a `Task` whose context is a `WorkerContext` and whose node counts
into this process's slot. A child made by `fork` hands the runs it inherits to worker
contexts the same way (see `owner.py`). Events (failures, log lines) go to the parent through
the slot's bounded ring.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import json
import operator
import os
import signal
import tempfile
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from . import _milepost, context, events, remote
from .context import ItemRow
from .errors import Cancelled, InvalidValueError, MilepostError
from .events import Event
from .output import print as _print
from .remote import Route
from .retrying import NO_RETRIES, RetryPolicy, call
from .task import Task

#: Segments attached in this process, by path.
_attached: Dict[str, _milepost.SharedRun] = {}
#: Worker contexts of this process, by segment path.
_workers: Dict[str, "WorkerContext"] = {}
#: Runs this process shares with its workers, by segment path (their `Owner`s): a task of one
#: of these unpickled here (a deep copy, a result sent back) is the run's own task. Weak: a
#: run that ended and is no longer used is freed (every run that shared stayed, for as long
#: as the process lived).
owned: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()

#: Where a run finds the route its remote workers reach it by, asked when it first hands out
#: a task (`milepost.dask` adds one: a Dask client in this process). Each takes the run's
#: context and returns a route, or None.
ROUTE_FINDERS: List[Any] = []

#: Text room of an event record in the segment, as the core lays it out.
RECORD_BYTES: int = _milepost.RECORD_BYTES


def shm_dir() -> str:
    """Where segments live: `MILEPOST_SHM_DIR`, else /dev/shm (memory), else the temp dir."""
    configured = os.environ.get("MILEPOST_SHM_DIR")
    if configured:
        return configured
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


#: The exit hook that marks this process's slot as cleanly exited, by segment path.
_finalizers: Dict[str, Any] = {}


def attach(path: str) -> _milepost.SharedRun:
    shared = _attached.get(path)
    if shared is None:
        shared = _attached[path] = _milepost.SharedRun.attach(path)
        atexit.register(shared.detach)
        detach_at_exit(shared)
    return shared


def detach_at_exit(shared: _milepost.SharedRun) -> None:
    """multiprocessing children leave through os._exit: their finalizers run, atexit does not.
    A child's bootstrap clears the finalizers registered before it (while its arguments were
    unpickled), so this is checked again whenever the worker works."""
    from multiprocessing import util

    hook = _finalizers.get(shared.path)
    if hook is None or not hook.still_active():
        _finalizers[shared.path] = util.Finalize(None, shared.detach, exitpriority=100)


class WorkerRun(Task):
    """The run inside a worker process (`current_run()`, `task.run`): the task API on the
    run's root, and what a job asks of its run (phases, lanes, whether it was cancelled,
    `print`). The parent keeps the run's lifecycle, its history and its snapshots."""

    __slots__ = ()  # as `Task`'s (why: see there)

    @property
    def id(self) -> str:
        return self.context.id

    @property
    def cancelled(self) -> bool:
        return self.context.cancelled

    @property
    def finished(self) -> bool:
        return self.context.finished

    @property
    def history_path(self) -> None:
        return None  # the parent keeps the history

    def phase(
        self,
        name: str,
        total: Optional[int] = None,
        unit: str = "it",
        budget: Optional[Dict[str, float]] = None,
        on_budget: str = "finish",
    ) -> Task:
        # A budget here counts what this worker process spends in the phase (the run's are
        # the parent's).
        return self.child("phase", name, total, unit, budget, on_budget)

    def add_lane(self, name: str) -> None:
        return None  # a worker process is its own lane

    @contextlib.contextmanager
    def lane(self, name: str) -> Iterator[None]:
        yield None

    def cancel(self, reason: str = "") -> None:
        raise MilepostError("cancel() is asked of the run in the process that started it, not in its workers")

    def print(self, *values: Any, sep: str = " ", end: str = "\n") -> None:
        _print(*values, sep=sep, end=end)


#: A chunk's history rows as its worker encoded them: the run's id, and the rows in chunks as
#: `RowBuffer.take()` returns them (one JSON array each, with its counts, and the phase and start
#: its short rows share).
ChunkRowsText = Tuple[str, List["ChunkText"]]
#: One chunk of rows as `RowBuffer.take()` gives it: the JSON array, its rows, how many are done,
#: failed and skipped, and the phase and start its short rows share (None, None: whole rows).
ChunkText = Tuple[str, int, int, int, int, Optional[str], Optional[float]]


class ChunkRows:
    """Where the items of a pool's chunk keep their history rows in a worker process (the
    `RowSink` of a `WorkerContext`): a buffer while `run_chunk` runs a chunk, whose rows go
    back to the parent with the results, which stores them. No buffer otherwise: an item
    counted here outside a pool's chunk keeps no row (as in a child forked from the run).
    Items ended natively are handed the buffer (`ItemPath.use_buffer`), not asked for it."""

    def __init__(self) -> None:
        self.buffer: Optional[_milepost.RowBuffer] = None
        #: The worker's item path, once made: given each chunk's buffer.
        self.path: Optional[_milepost.ItemPath] = None

    def begin(self, run_id: str, origin: float) -> None:
        # Short rows: the chunk's rows share their phase and are timed from `origin`, the
        # pool's start, as in its other workers (history schema 6; the parent joins them).
        self.buffer = _milepost.RowBuffer(run_id, origin)
        if self.path is not None:
            self.path.use_buffer(self.buffer)

    def end(self) -> Optional[ChunkRowsText]:
        """The chunk's rows (None: none), and no buffer from now on."""
        buffer, self.buffer = self.buffer, None
        if self.path is not None:
            self.path.use_buffer(None)
        if buffer is None:
            return None
        buffer.close()  # an item still holding it keeps no row in it from now on
        taken = buffer.take()
        return None if taken is None else (buffer.run_id, taken)

    def pushed(self, waiting: int) -> None:
        pass  # the rows go back with the chunk's results

    def item(
        self,
        phase: str,
        name: str,
        status: str,
        started_at: float,
        duration: Optional[float],
        error: Optional[str],
        metrics: Optional[str],
    ) -> None:
        if self.buffer is not None:
            self.buffer.push(phase, name, status, started_at, duration, error, metrics)


class WorkerContext:
    """The `RunContext` of a run inside a worker process: counts go to this process's slot
    of the run's shared memory, events through its ring; the parent keeps the history, draws,
    samples and ends the run. The worker's view of the run (`task.run`) is its `root`."""

    keeps_rows = True  # a pool item's row goes back to the parent, which stores it
    finished = False  # the native layer refuses updates once the parent ended the run
    steer = None  # the live channel is the parent's
    budget = None  # the budget is the parent's (what process workers spend does not reach it)

    def __init__(
        self, shared: _milepost.SharedRun, run_id: str, name: str, finished: Optional[Dict[str, Set[str]]] = None
    ) -> None:
        self._shared = shared
        #: In a child forked from a resumed run, what the run it continues had finished (by
        #: task key): `pending()` works there as in the parent.
        self._finished = finished or {}
        self._id = run_id
        self._name = name
        self._index: Dict[Tuple[str, ...], int] = {}
        #: Unix time at the clock's zero (`now` is the monotonic clock): an item's start.
        self._wall_origin = time.time() - time.monotonic()
        self._item_path: Optional[_milepost.ItemPath] = None
        self._path_lock = threading.Lock()
        #: A pool chunk's rows while it runs (`run_chunk`).
        self.rows = ChunkRows()
        self.wall = functools.partial(operator.add, self._wall_origin)
        self._pools = itertools.count(1)
        #: The run's root in this process: the parent of loops and pools made here (in a
        #: child made by fork, the `Run` it inherited; see `adopt`).
        self.root: Task = WorkerRun(self, shared.node(0), (name,), None, borrowed=True)
        self._index[(name,)] = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        return self._shared.path

    @property
    def run(self) -> Task:
        return self.root

    @property
    def cancelled(self) -> bool:
        return bool(self._shared.cancelled)

    @property
    def cancel_reason(self) -> str:
        return ""  # the shared segment carries the cancel bit only

    def task(self, index: int, path: Tuple[str, ...], parent: Optional[Task] = None) -> Task:
        """The task of shared node `index` (one handed over by the parent when `parent` is
        None: the parent decides when it ends)."""
        self._index[path] = index
        return Task(self, self._shared.node(index), path, parent, borrowed=parent is None)

    def adopt(self, task: Task) -> None:
        """A task inherited through `fork`: it counts into this process's slot from now on."""
        index = task.shared_index
        if index is not None:
            self._index[task.path] = index
            task.hand_over(self, self._shared.node(index))
            if task.kind == "run":
                self.root = task  # the child's `current_run()` stays the `Run` it knows

    # -- RunContext ---------------------------------------------------------------------------
    # An item reads the clock twice and asks for its lane and its start's wall time: these are
    # builtins here (no Python frame each), as a pool's worker runs thousands of items a second.
    #: Seconds on the monotonic clock.
    now = staticmethod(time.monotonic)
    #: `wall(t)`: Unix time of `now()`'s `t` (bound in `__init__`).
    wall: Callable[[float], float]

    def emit(self, cls: type[Event], path: Tuple[str, ...], **fields: Any) -> None:
        index = self._index.get(tuple(path), 0)
        self._shared.emit(index, fit_record({"event": cls.kind, "timestamp": time.time(), **fields}))

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
        # Loops entered again find their shared node by name: `reuse` is the segment's way.
        index = self._shared.child(parent.shared_index or 0, kind, name, unit, total)
        task = self.task(index, (*parent.path, str(name)), parent)
        task.begin(total)
        return task

    # A worker process is its own lane: a thread pool inside it adds none. (`NoneType()` is
    # None: the lane an item asks for, with no Python frame.)
    lane: staticmethod[[], None] = staticmethod(type(None))

    def item_path(self) -> _milepost.ItemPath:
        """Items here are entered and ended natively too, timed on this process's own clock;
        a pool chunk's items queue their rows in the buffer `ChunkRows` gives the path, and an
        ended item keeps its row to be read (`item.row`)."""
        if self._item_path is None:
            # Under a lock: a second path made by another thread at the same moment would
            # never be given a chunk's buffer, and its items' rows would be lost.
            with self._path_lock:
                if self._item_path is None:
                    wall_origin = time.time() - _milepost.process_now()
                    path = _milepost.ItemPath(wall_origin, None, None, 0, keep_rows=True)
                    self.rows.path = path
                    path.use_buffer(self.rows.buffer)
                    self._item_path = path
        return self._item_path

    def keep_rows(self, task: Task, key: str) -> None:
        """The items of `task` (a pool's, in its worker) keep their rows, under history key
        `key` (the parent's), while a chunk runs."""
        index = task.shared_index
        if index is not None:
            task.hand_over(self, self._shared.node(index, key))

    def add_lane(self, name: str) -> None:
        return None

    def bind_lane(self, lane: Optional[_milepost.Lane]) -> None:
        pass

    def finish_lanes(self, lanes: Iterable[Optional[_milepost.Lane]]) -> None:
        pass

    def finished_keys(self, key: str) -> Set[str]:
        return self._finished.get(key, set())

    def handle(self, task: Task) -> Tuple[Any, Tuple[Any, ...]]:
        return (task_in_worker, (self._shared.path, task.shared_index or 0, self._id, self._name, task.path))

    def sample(self) -> None:
        pass  # the parent samples

    def next_pool(self) -> int:
        return next(self._pools)

    def stop_pool(self, pool: int, stop: bool) -> None:
        pass  # a worker's own pools are threads; process pools start in the parent

    def pool_stopped(self, pool: int) -> bool:
        """Whether the parent told pool `pool` to stop handing out items (a Ctrl-C)."""
        return bool(self._shared.pool_stopped(pool))

    def stopping_workers(self, pids: List[int]) -> None:
        pass

    def stopped_workers(self) -> None:
        pass

    def workers_left(self, pids: List[int]) -> Optional[bool]:
        return None  # a worker's own pools are threads (see `stop_pool`)

    def arm(self) -> None:
        """Marks this process's slot exited when the process ends, including in children that
        multiprocessing bootstraps (their bootstrap clears finalizers, then runs after-fork
        callbacks: this is one)."""
        from multiprocessing import util

        detach_at_exit(self._shared)
        util.register_after_fork(self, _rearm)

    def detach_hook(self) -> None:
        detach_at_exit(self._shared)


def fit_record(payload: Dict[str, Any]) -> str:
    """The event as JSON that fits a ring record: long texts (an error with a traceback) are
    clipped, longest first, then long lists shortened, so that the record is always whole and
    parses."""
    text = json.dumps(payload, ensure_ascii=False)
    limit = 600
    while len(text.encode("utf-8")) > RECORD_BYTES and limit > 8:
        for key in ("error", "message", "item", "source", "name"):
            value = payload.get(key)
            if isinstance(value, str) and len(value) > limit:
                payload[key] = value[:limit] + "…"
        text = json.dumps(payload, ensure_ascii=False)
        limit //= 2
    # An item's report (`ItemDetails`) keeps its first checks and artifacts, as many as fit.
    lists = [payload[key] for key in ("artifacts", "checks") if isinstance(payload.get(key), list)]
    while len(text.encode("utf-8")) > RECORD_BYTES and any(lists):
        max(lists, key=len).pop()
        text = json.dumps(payload, ensure_ascii=False)
    return text


def _rearm(worker: WorkerContext) -> None:
    worker.detach_hook()


def register_worker(worker: WorkerContext) -> None:
    """A worker context of this process (a fork's child hands its inherited runs to one)."""
    _workers[worker.path] = worker
    worker.arm()


def run_for(path: str, run_id: str, name: str) -> WorkerContext:
    worker = _workers.get(path)
    if worker is None:
        worker = WorkerContext(attach(path), run_id, name)
        register_worker(worker)
        # Loops tracked by worker code without a handle join this run (spawned workers run
        # tasks on their main thread, whose context this is).
        context.set_current(worker.root)
    return worker


def task_in_worker(
    path: str, index: int, run_id: str, name: str, task_path: Tuple[str, ...], route: Optional[Route] = None
) -> Task:
    """Unpickles a task handle: in a worker process, a task counting into shared memory, or,
    where the segment cannot be mapped (or `MILEPOST_TRANSPORT=dask` says so) and the run gave
    a route, counting locally and sent over it (`remote.py`); in the process that owns the
    run, the run's own task."""
    owner = owned.get(path)
    if owner is not None:
        own = owner.task_for_index(index)
        if own is not None:
            return own
    if route is not None and (transport() == "dask" or not _can_attach(path)):
        if not route.reachable():
            return PassedHandle((path, index, run_id, name, tuple(task_path), route))  # type: ignore[return-value]
        return remote.context_for(route, run_id, name).task(index, tuple(task_path))
    return run_for(path, run_id, name).task(index, tuple(task_path))


class PassedHandle:
    """A task handle unpickled where it cannot count (a Dask scheduler reading the task graph
    it was sent): it pickles again to what it came as, and counts where that is unpickled."""

    def __init__(self, args: Tuple[Any, ...]) -> None:
        self._args = args

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (task_in_worker, self._args)

    def __getattr__(self, name: str) -> Any:
        # AttributeError: what `hasattr` (Dask's own probing of task arguments) expects.
        raise AttributeError(
            f"task {'/'.join(self._args[4])!r} of run {self._args[2]} cannot count in this process "
            f"(it is not a worker of the run): {name!r} is not available here"
        )


#: `MILEPOST_TRANSPORT`'s values: the segment when it can be mapped, else the run's route.
TRANSPORTS = ("auto", "shm", "dask")


def transport() -> str:
    """How workers reach their run (`MILEPOST_TRANSPORT`): "auto" (unset), "shm" or "dask"."""
    value = os.environ.get("MILEPOST_TRANSPORT", "").strip().lower() or "auto"
    if value not in TRANSPORTS:
        raise InvalidValueError(
            f"MILEPOST_TRANSPORT must be one of {', '.join(TRANSPORTS)}, got {os.environ['MILEPOST_TRANSPORT']!r}"
        )
    return value


def _can_attach(path: str) -> bool:
    if path in _workers or path in _attached:
        return True
    if transport() == "shm":
        return True  # forced: attaching says why it cannot
    try:
        attach(path)
    except (MilepostError, OSError):
        return False
    return True


#: Event classes by their `kind`, as worker records name them.
_KINDS: Dict[str, type[Event]] = {
    cls.kind: cls for cls in vars(events).values() if isinstance(cls, type) and issubclass(cls, Event)
}


def events_from_workers(core: _milepost.RunCore, run_id: str, run_name: str) -> List[Event]:
    """The parent's side: worker events as typed events of the run."""
    out: List[Event] = []
    for path, text, pid in core.take_worker_events():
        try:
            data = json.loads(text)
        except ValueError:
            continue
        cls = _KINDS.get(data.pop("event", ""))
        if cls is None:
            continue
        fields = {
            k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("run_id", "run_name", "path")
        }
        fields.setdefault("timestamp", time.time())
        if cls is events.LogLine and not fields.get("source"):
            fields["source"] = f"pid {pid}"
        out.append(cls(run_id=run_id, run_name=run_name, path=tuple(path), **fields))
    return out


# -- fork: the worker's side (the parent's runs hand themselves over in owner.py) ---------------


def _after_fork_in_child() -> None:
    """In the child. Takes no lock that another thread of the parent could have held."""
    _milepost.after_fork_in_child()
    owned.clear()
    for worker in _workers.values():
        worker.arm()


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the process pool's side --------------------------------------------------------------------

_pool_task: Optional[Task] = None
_pool = 0

#: Seconds between a pool worker's checks that its parent still runs.
PARENT_CHECK = 0.5


def init_pool_worker(task: Task, parent_pid: int, pool: int) -> None:
    """ProcessPoolExecutor initializer: the task every chunk of this worker counts in, and the
    pool's number (the bit the parent sets to stop it).

    Ctrl-C reaches every process of the terminal's foreground group; a pool's workers let the
    parent decide (see `processes._stop_on_interrupt`), so that no item is cut half-way and
    none starts after it. Their handler does nothing (rather than ignoring the signal, which
    programs the items start would inherit: a caught signal goes back to its default on exec).
    A worker whose parent is gone (killed with SIGKILL, unable to stop its pool) exits within
    a second."""
    global _pool_task, _pool
    _pool_task, _pool = task, pool
    signal.signal(signal.SIGINT, _parent_decides)
    _watch_parent(parent_pid)


def _parent_decides(signum: int, frame: Any) -> None:
    """A pool worker's SIGINT handler: nothing; the parent stops the pool."""


def _watch_parent(parent_pid: int) -> None:
    # The pool's processes are children of the parent (or, under forkserver, of the fork
    # server, which exits with the parent): either way a dead parent changes ours.
    first = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK)
            if os.getppid() != first or not _alive(parent_pid):
                os._exit(1)  # nobody is left to read our results

    threading.Thread(target=watch, name="milepost-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_name(item: Any, index: int) -> str:
    """An item's name in a pool: the item for strings, numbers and paths, else `#index`.
    (Here, below the pools, so that a process pool's workers name the items of a chunk.)"""
    if isinstance(item, (str, int, float)) or hasattr(item, "__fspath__"):
        return str(item)
    return f"#{index}"


def default_names(indices: Sequence[int], items: List[Any]) -> List[str]:
    """`default_name` of each item; `str()` straight for the common types (what
    `default_name` returns for them), without a Python call per item."""
    plain = (str, int, float)
    return [str(item) if type(item) in plain else default_name(item, i) for i, item in zip(indices, items, strict=True)]


#: A chunk as the parent hands it to a worker: the items' indices, the items, and their names
#: (None: the default names, which the worker makes).
Chunk = Tuple[Sequence[int], List[Any], Optional[List[str]]]

#: An item kept for the run's recent list: name (as given), status, duration, end (Unix time).
Recent = Tuple[Any, str, Optional[float], float]

#: What a worker returns for a chunk, in one piece (see `run_chunk`); its newest items as one
#: `bytes` (`_milepost.encode_recent`), which the parent keeps in one call (`Node.record_recent`).
ChunkDone = Tuple[int, List[Any], List[int], Optional[ChunkRowsText], bytes]

#: How many items of a chunk the parent puts in the run's recent list: the list keeps the
#: newest 32 (the core's `RECENT_ITEMS`), so the chunk's earlier ones would only pass through.
RECENT_ITEMS = 32


def run_chunk(
    fn: Any,
    chunk: Chunk,
    policy: Optional[RetryPolicy] = None,
    phase: Optional[str] = None,
    origin: Optional[float] = None,
) -> ChunkDone:
    """Runs `fn` over a chunk in a worker, each call an item of the pool's task (tried again
    here per `policy`: None, never), counted into shared memory as it ends. Returns, in one
    piece: this worker's pid (the lane the items ran in); each item's result (its exception
    for one that raised or did not start, in chunk order); the positions of the items that ran
    and raised; the history rows of the items that ran, queued natively as each ended, for the
    store of task `phase`, their starts timed from `origin`, the pool's start (`ChunkRowsText`;
    None when none ran, when `phase` is None, the parent keeping no history, or when the
    context keeps its rows itself); and the chunk's last items for the run's recent list, in
    one `bytes` (failures are there already: the worker's event put them there)."""
    task = _pool_task
    assert task is not None, "init_pool_worker did not run"
    policy = policy or NO_RETRIES
    ctx = task.context
    sink: Optional[ChunkRows] = None
    if isinstance(ctx, WorkerContext) and phase is not None:
        sink = ctx.rows
        if task.node.path != phase:
            ctx.keep_rows(task, phase)
    indices, items, names = chunk
    failed: List[int] = []
    first_of_tail = max(0, len(items) - RECENT_ITEMS)
    if sink is not None:
        sink.begin(ctx.id, time.time() if origin is None else origin)
    try:
        if isinstance(ctx, WorkerContext) and not policy.retries:
            # The common case, one native loop (`_milepost.run_items`): what the loop below
            # does, minus the interpreter's work around each item.
            shared = ctx._shared  # noqa: SLF001 - the context's own segment
            # Default names are the native loop's to make (a number names itself).
            values, raised, started, recent = _milepost.run_items(
                task,
                fn,
                list(items),
                None if names is None else list(names),
                shared,
                _pool,
                first_of_tail,
                default_name,
                indices,
            )
            if started < len(items):
                left = names[started:] if names is not None else default_names(indices[started:], items[started:])
                values.extend(Cancelled.not_started(name) for name in left)
            for k, ran in raised:
                values[k] = _returned(values[k])
                if ran:  # an item the run refused did not run
                    failed.append(k)
        else:
            stopped = _stopper(ctx, _pool)
            names = default_names(indices, items) if names is None else names
            values, failed, tail = _run_items(task, fn, items, names, policy, stopped, first_of_tail)
            recent = _milepost.encode_recent(_recent(tail))
    finally:
        rows = sink.end() if sink is not None else None
    return os.getpid(), values, failed, rows, recent


def _run_items(
    task: Task,
    fn: Any,
    items: List[Any],
    names: List[Any],
    policy: RetryPolicy,
    stopped: Callable[[], bool],
    first_of_tail: int,
) -> Tuple[List[Any], List[int], List[Tuple[Any, Optional[ItemRow]]]]:
    """`run_chunk`'s loop in Python (items tried again per `policy`, or a context without
    shared memory): each item's result, the positions of those that ran and raised, and the
    rows of the items from `first_of_tail` on."""
    values: List[Any] = []
    failed: List[int] = []
    tail: List[Tuple[Any, Optional[ItemRow]]] = []
    item = task.item
    retrying = bool(policy.retries)
    for k, name in enumerate(names):
        if stopped():  # the rest of the chunk is not started
            values.append(Cancelled.not_started(name))
            continue
        it = item(name)
        try:
            with it:
                if retrying:
                    value: Any = call(policy, task, name, functools.partial(fn, items[k]), stopped)
                else:
                    value = fn(items[k])
        except Exception as e:  # noqa: BLE001 - returned to the parent per item
            value = _returned(e)
            if it.row is not None:  # it ran (an item the run refused did not)
                failed.append(k)
        values.append(value)
        if k >= first_of_tail:
            tail.append((name, it.row))
    return values, failed, tail


def _recent(tail: List[Tuple[Any, Optional[ItemRow]]]) -> List[Recent]:
    """Of the chunk's last items, those that ran and did not fail, oldest first, as many as
    the run's recent list keeps, each name as the item was given it (`encode_recent` makes it
    text as the native loop does)."""
    return [
        (name, row[0], row[2], row[1] + (row[2] or 0.0))
        for name, row in tail[-RECENT_ITEMS:]
        if row is not None and row[0] != "failed"
    ]


def _stopper(ctx: Any, pool: int) -> Callable[[], bool]:
    """Whether the run was cancelled or the parent stopped pool `pool` (a Ctrl-C): asked
    before each item, straight from the segment in a worker of the run."""
    if isinstance(ctx, WorkerContext):
        shared = ctx._shared  # noqa: SLF001 - the context's own segment, read per item
        return lambda: shared.cancelled or shared.pool_stopped(pool)
    return lambda: bool(ctx.cancelled or ctx.pool_stopped(pool))


class RemoteTraceback(Exception):
    """The traceback of an item's exception in its worker process: the cause of the exception
    the parent gets (`concurrent.futures` gives its own the same way), so that the line of the
    job's function that raised is shown where the pool raises it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _with_remote_traceback(e: BaseException, text: str) -> BaseException:
    e.__cause__ = RemoteTraceback(text)
    return e


class _Returned:
    """An item's exception on its way to the parent, which unpickles it with its worker's
    traceback as its cause (see `RemoteTraceback`)."""

    __slots__ = ("error", "text")

    def __init__(self, error: BaseException, text: str) -> None:
        self.error, self.text = error, text

    def __reduce__(self) -> Tuple[Any, Tuple[BaseException, str]]:
        return _with_remote_traceback, (self.error, self.text)


def _returned(e: BaseException) -> Any:
    """What a chunk returns for an item that raised `e`: `e` (or its text, if it cannot be
    pickled), with the worker's traceback of it."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    error = _picklable(e)
    error.__traceback__ = None  # its frames hold the item's locals: not kept past the chunk
    return _Returned(error, f'\n"""\n{tb}"""')


def _picklable(e: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(e).__name__}: {e}")
