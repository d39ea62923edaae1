"""`Run`: the top of the tree, owner of the display, the observers and the clock."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Sequence, TextIO, Union

from . import _milepost
from .dispatch import Delivery, check_interval
from .events import Event, RunFinished, RunStarted
from .observers import JsonSnapshotFile, Observer
from .errors import InvalidValueError, MilepostError, RunEndedError
from .outcome import end_state, run_end_state
from .renderers import interval_from_env, native_target, resolve_display
from .signals import sigint_held
from .snapshot import Snapshot
from .persistence import HistoryObserver, Resume, Store, find_resumable, prior_rates
from .task import Task

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from .renderers.native import NativeDisplay
    from .workers import WorkerRun

__all__ = ["Run", "current_run"]

#: How often the rates are sampled when nothing is drawn natively.
SAMPLE_HZ = 4.0
#: Seconds a thread leaving a run waits for another thread that is writing the run's end.
FINISH_WAIT = 60.0

_current: contextvars.ContextVar[Optional[Run]] = contextvars.ContextVar("milepost_run", default=None)

#: Runs started and not yet finished: ended as "cancelled" if the interpreter exits first
#: (a loop interrupted at top level keeps its tracker alive in the traceback until then).
_unfinished: "weakref.WeakSet[Run]" = weakref.WeakSet()
#: Every run not yet finished, started or not (a fork shares them all with the child).
_live: "weakref.WeakSet[Run]" = weakref.WeakSet()


@atexit.register
def _finish_unfinished() -> None:
    for run in list(_unfinished):
        run.finish("cancelled")


def current_run() -> Optional[Run]:
    """The run started by the innermost `with Run(...)` in this context, if it is still going
    (a run can be ended elsewhere, e.g. by a tracker collected on another thread)."""
    run = _current.get()
    return run if run is not None and not run._finished else None


class Run(Task):
    """A tracked job: phases, steps and items below it, a display, and observers.

    Args:
        name: What the run is called on screen and in its events.
        display: `auto`, `native`, `rich`, `plain`, `json` or `none` (see `resolve_display`).
        observers: Extra observers, each fed off the hot path.
        interval: Seconds between plain or JSON lines (default 10 and 1; `MILEPOST_INTERVAL`).
        output: Where plain, JSON or rich output goes: a stream, a path (appended to), or
            `"stdout"` / `"stderr"` (default stderr).
        snapshot_file: Keep the latest snapshot in this JSON file (e.g. `.progress.json`).
        refresh_hz: Redraws per second of the live displays (at most 20).
        max_lanes: Worker lanes shown before folding into "… N more lanes".
        leave: Keep the final frame on screen.
        redirect: While the native display draws, route `print` output above the bars.
        clock: A function returning seconds (for tests). With it, nothing runs in the
            background: call `poll()` to deliver events and snapshots.
        run_id: An id for the run (default: a random one).
        stall_after: Seconds a worker process may hold an item without a sign of life
            before its lane shows it stalled.
        history: Keep the run in the history database (`.milepost/runs.db`, or
            `$MILEPOST_HOME/runs.db`, or this path); False: keep nothing.
        resume: Continue an interrupted run instead of starting afresh: True for the latest
            unfinished run of this name, or a run id. Phases take over the counts they had,
            and `task.pending(items)` skips the items already done.
        dashboard: Show the run on the web dashboard: True (127.0.0.1:8080), a port, or the
            keyword arguments of `milepost.dashboard.start` (host, port, token). Needs
            `pip install 'milepost[dashboard]'`.
    """

    def __init__(
        self,
        name: str = "run",
        *,
        display: Optional[str] = "auto",
        observers: Sequence[Observer] = (),
        interval: Optional[float] = None,
        output: Union[TextIO, str, "os.PathLike[str]", None] = None,
        snapshot_file: Union[str, "os.PathLike[str]", None] = None,
        refresh_hz: float = 10.0,
        max_lanes: int = 8,
        leave: bool = True,
        redirect: bool = True,
        clock: Optional[Callable[[], float]] = None,
        run_id: Optional[str] = None,
        stall_after: float = 60.0,
        history: Union[bool, str, "os.PathLike[str]"] = True,
        resume: Union[bool, str] = False,
        dashboard: Union[bool, int, dict] = False,
    ) -> None:
        # Every argument is checked before anything is made (a history row, a thread, a
        # server): bad input leaves no trace.
        stream = output if hasattr(output, "write") else None
        self.display = resolve_display(display, stream)  # type: ignore[arg-type]
        self._interval = check_interval(interval, "interval")
        if isinstance(refresh_hz, bool) or not isinstance(refresh_hz, (int, float)) or not 0 < refresh_hz <= 20:
            raise InvalidValueError(f"refresh_hz must be a number in (0, 20], got {refresh_hz!r}")
        if isinstance(max_lanes, bool) or not isinstance(max_lanes, int) or max_lanes < 0:
            raise InvalidValueError(f"max_lanes must be an int >= 0, got {max_lanes!r}")
        self._stall_after = check_interval(stall_after, "stall_after") or 60.0
        self._clock: Callable[[], float] = clock or time.monotonic
        self._manual = clock is not None
        self._store: Optional[Store] = None
        self._resume: Optional[Resume] = None
        if history:
            store = Store(None if history is True else Path(history))
            # Kept even when it could not open: it counts the item rows the history misses, and
            # says how many at the end.
            self._store = store
        #: Items keep their history row (and their own metrics) only where someone stores it.
        self._keeps_item_rows = self._store is not None
        if resume:
            run_id = self._find_resumable(name, resume) or run_id
        started_at = self._resume.started_at if self._resume is not None else time.time()
        self._core = _milepost.RunCore(run_id or uuid.uuid4().hex[:12], name, self._manual, started_at)
        self._origin = self._clock()
        #: Unix time at the run clock's zero: an item's start in the history without a clock call.
        self._wall_origin = time.time()
        if self._keeps_item_rows:
            self._store.bind_run(self._core.id)  # type: ignore[union-attr]
        super().__init__(self, self._core.root, (self._core.name,))
        if self._resume is not None:
            self._node.restore(*self._resume.counts(""))  # what the run itself had counted
        self._stream = stream
        self._native_stdout = native_target(stream) == "stdout"  # type: ignore[arg-type]
        self._output = output
        self._refresh_hz = max(float(refresh_hz), 0.5)
        self._max_lanes = max_lanes
        self._leave = leave
        self._redirect = redirect
        user = list(observers)
        if snapshot_file is not None:
            user.append(JsonSnapshotFile(snapshot_file))
        self._prior: dict[str, float] = {}
        if dashboard is not False and dashboard is not None:  # 0 is a port: any free one
            from . import dashboard as web

            user.append(web.attach(self, dashboard))
        if self._store is not None and self._store.enabled:
            resumed = self._resume.resumed + 1 if self._resume is not None else 0
            before = self._resume.elapsed if self._resume is not None else 0.0
            self._prior = prior_rates(self._store, self._core.name, self._core.id)
            user.append(HistoryObserver(self._store, self._core.id, self._core.name, started_at, resumed, before))
        self._worker: Optional[WorkerRun] = None
        self._native: Optional[NativeDisplay] = None
        self._dispatcher = Delivery([*user, *self._make_display()], self.snapshot, self._now, pull=self._worker_events)
        self._tasks: List[Task] = []
        self._lanes = threading.local()
        self._token: Optional[contextvars.Token[Optional[Run]]] = None
        self._started = False
        self._launched = False
        self._finished = False
        self._finish_lock = threading.Lock()
        #: Set once the run's end is written: another thread leaving the run waits for it.
        self._ended = threading.Event()
        self._pools = 0
        _live.add(self)

    def _find_resumable(self, name: str, which: Union[bool, str]) -> Optional[str]:
        if self._store is None or not self._store.enabled:
            raise MilepostError("resume needs the run history, which is off (history=False, or the store could not open)")
        found = find_resumable(self._store, name, which)
        if found is None and which is not True:
            raise MilepostError(f"no run with id {which!r} in {self._store.path}")
        if found is not None:
            self._resume = Resume(self._store, found)
        return found

    # -- construction of the display ----------------------------------------------------------
    def _make_display(self) -> List[Observer]:
        from .renderers.native import NativeDisplay

        stream = self._stream
        if self.display == "native":
            self._native = NativeDisplay(self._core, self._refresh_hz, self._max_lanes, self._leave, self._redirect,
                                         stdout=self._native_stdout)
            return [self._native]
        if self.display == "plain":
            from .renderers.plain import PlainRenderer

            return [PlainRenderer(self._output, interval=self._interval or interval_from_env(10.0))]
        if self.display == "json":
            from .renderers.jsonl import JsonLinesRenderer

            return [JsonLinesRenderer(self._output, interval=self._interval or interval_from_env(1.0))]
        if self.display == "rich":
            from .renderers.rich import RichRenderer

            return [RichRenderer(stream, 1.0 / self._refresh_hz, self._leave, self._max_lanes)]  # type: ignore[arg-type]
        return []

    # -- identity and time --------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._core.id

    @property
    def history_path(self) -> Optional[Path]:
        """The history database this run is kept in, or None when it keeps none (or the
        history turned itself off)."""
        return self._store.path if self._store is not None and self._store.enabled else None

    @property
    def observers(self) -> List[Observer]:
        return self._dispatcher.observers

    @property
    def events_dropped(self) -> int:
        """Lifecycle events dropped because a queue was full (never silently): the run's own
        queue and the workers' (also in every snapshot as `worker_events_dropped`)."""
        return self._dispatcher.dropped + int(self.snapshot().data["worker_events_dropped"])

    def _now(self) -> float:
        """Seconds since the run began; pushes the time into a manual clock."""
        if self._worker is not None:
            return self._worker._now()
        t = self._clock() - self._origin
        if self._manual:
            self._core.set_time(t)
        return t

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Run:
        """Starts the display and the background threads (done by `with`)."""
        self._begin()
        return self._launch()

    def _begin(self) -> None:
        """The run's start, before anything is delivered: a loop of its own (`track()`) makes
        its phase between this and `_launch`, so the first line already shows its total."""
        if self._started:
            return
        self._started = True
        _unfinished.add(self)
        self._token = _current.set(self)
        self._emit(RunStarted, ())

    def _launch(self) -> Run:
        """Starts the display and the threads that deliver events (from the start on)."""
        if self._launched:
            return self
        self._launched = True
        if not self._manual:
            if self._native is not None:
                self._native.start()
            else:
                # Sampling only: four observations a second are plenty for windows of seconds.
                self._core.start_ticker(SAMPLE_HZ, native=False)
            # Its threads deliver the start at once; none of it runs on the caller's thread.
            self._dispatcher.start()
        else:
            self._now()
            self._dispatcher.poll()
        return self

    def finish(self, state: str = "completed") -> None:
        """Ends the run (idempotent): open phases end with it, observers get the final
        snapshot and are closed, the display draws its last frame. How it ends follows one
        rule (`outcome.run_end_state`): a cancel asked for ends it cancelled, a failed phase or
        step makes an otherwise completed run failed. Returns once the end is written, also
        when another thread is ending the run."""
        if self._worker is not None:
            return  # a forked worker's copy: the parent ends the run
        dispatcher = self._dispatcher.on_dispatch_thread()
        if dispatcher is not None:
            # Ended from inside an observer (or a collection on that thread): finishing waits
            # for the delivery in progress, so it happens right after it.
            dispatcher.defer(lambda: self._finish(state, wait=False))
            return
        self._finish(state)

    def _finish(self, state: str, wait: bool = True) -> None:
        # A Ctrl-C while the run ends is held until the history has the final state.
        with sigint_held():
            with self._finish_lock:
                started, self._finished = self._finished, True
            if started:
                if wait:  # another thread is ending the run: the end is written when we return
                    self._ended.wait(FINISH_WAIT)
                return
            try:
                self._end(state)
            finally:
                self._ended.set()
                _unfinished.discard(self)

    def _end(self, state: str) -> None:
        self._core.finish()  # counts are final from here: later updates are refused
        _live.discard(self)
        self._now()
        for task in reversed(self._tasks):
            task.end(state)
        self._core.sample()  # takes what the workers sent last
        self._dispatcher.pull_now()  # ...and hands it on before the run's end
        state = run_end_state(state, self.cancelled, self._core.node_states())
        self._core.end_running(state)  # nodes workers created end with the run
        self._node.end(state)
        self._emit(RunFinished, (), state=state, elapsed=self._core.now())
        try:
            self._dispatcher.close()
        finally:
            self._stop_background()

    def _stop_background(self) -> None:
        if self._native is not None:
            self._native.stop()
        else:
            self._core.stop_ticker()
        self._core.stop_sharing()
        if self._store is not None:
            self._store.close()
        self._reset_current()

    def end(self, state: str = "completed") -> None:
        self.finish(state)

    def cancel(self, reason: str = "") -> None:
        """Asks the job to stop: loops and pools hand out no more items (in worker processes
        too), items in flight finish, and the job gets `milepost.Cancelled`, which ends the run
        "cancelled". Thread-safe; the dashboard's Cancel button calls it."""
        if self._core.cancelled:
            return
        self._core.cancel()
        self.log(f"cancel requested{': ' + reason if reason else ''}", level="warning", source="milepost")

    @property
    def cancelled(self) -> bool:
        return bool(self._core.cancelled)

    def _reset_current(self) -> None:
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # finished from another context (a tracker collected elsewhere)
                if _current.get() is self:
                    _current.set(None)
            self._token = None

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.finish(end_state(exc_type, exc))

    # -- tree ---------------------------------------------------------------------------------
    def phase(self, name: str, total: Optional[int] = None, unit: str = "it") -> Task:
        """A phase of the run (setup, map, reduce...). It starts now and ends when its `with`
        block ends, or when the run ends."""
        return self._child(self, "phase", name, total, unit)

    def _child(self, parent: Task, kind: str, name: str, total: Optional[int], unit: str,
               reuse: bool = False, restore: bool = True) -> Task:
        """A new phase or step (with `reuse`, a loop's ended one of that name goes on). In a
        resumed run a phase you make takes over what it had counted (`restore`); a loop or a
        pool making its own counts what it runs now, since it runs what it is given again."""
        if self._worker is not None:
            return self._worker._child(parent, kind, name, total, unit, reuse)
        if self._finished:
            raise RunEndedError(f"{kind}() after run {self.name!r} ended")
        if reuse:
            # A loop entered again (the inner loop of a nested pair) goes on in its ended
            # phase: one line, bounded memory, counts that accumulate.
            for task in reversed(self._tasks):
                if task._parent is parent and task.kind == kind and task.name == name and task.state != "running":
                    if total is not None:
                        task.add_total(total)
                    task._node.reopen()
                    task._announce(total)
                    return task
        node = self._core.add_node(parent._node, kind, name, total, unit)
        task = Task(self, node, (*parent.path, node.name), parent)
        self._tasks.append(task)
        rate = self._prior.get(task._history_path)
        if rate is not None:
            node.set_prior_rate(rate)  # the ETA until this run has a pace of its own
        if self._resume is not None and restore:
            # A resumed phase starts from what it had reached: its items from their rows.
            node.restore(*self._resume.counts(task._history_path))
        task._announce(total)
        return task

    def _pool_stopped(self, pool: int) -> bool:
        """In a worker process: whether the parent told pool `pool` to stop (a Ctrl-C)."""
        return self._worker is not None and self._worker._pool_stopped(pool)

    def _next_pool(self) -> int:
        """A number for a new pool of this run (the bit its workers are told to stop by)."""
        with self._finish_lock:
            self._pools += 1
            return self._pools

    # -- lanes --------------------------------------------------------------------------------
    def add_lane(self, name: str) -> _milepost.Lane:
        return self._core.add_lane(name)

    @contextlib.contextmanager
    def lane(self, name: str) -> Iterator[_milepost.Lane]:
        """Binds a worker lane to the current thread: items started here show in it."""
        lane = self._core.add_lane(name)
        previous = getattr(self._lanes, "lane", None)
        self._lanes.lane = lane
        try:
            yield lane
        finally:
            self._lanes.lane = previous
            lane.finish(self._core.now())

    def _bind_lane(self, lane: Optional[_milepost.Lane]) -> None:
        self._lanes.lane = lane

    def _finish_lanes(self, lanes: List[_milepost.Lane]) -> None:
        """Marks a pool's lanes finished (its threads have exited)."""
        now = self._core.now()
        for lane in lanes:
            lane.finish(now)

    def _sample_now(self) -> None:
        """Takes a sample at once: accounts for workers that died, takes their last events."""
        self._core.sample()

    def _current_lane(self) -> Optional[_milepost.Lane]:
        return getattr(self._lanes, "lane", None)

    # -- observation --------------------------------------------------------------------------
    def _emit(self, cls: type[Event], path: tuple[str, ...], **fields: Any) -> None:
        if self._worker is not None:
            self._worker._emit(cls, path, **fields)
            return
        self._dispatcher.emit(cls(self._core.id, self._core.name, time.time(), (self._core.name, *path[1:]), **fields))

    def snapshot(self) -> Snapshot:
        """A consistent view of the whole run now."""
        if self._worker is not None:
            raise MilepostError("snapshots are taken in the process that started the run, not in its workers")
        self._now()
        self._core.sample()  # what happened since the last sample, then a read that changes nothing
        self._core.add_events_dropped(self._dispatcher.dropped - self._core.events_dropped)
        return Snapshot(self._core.snapshot())

    def poll(self) -> None:
        """Delivers queued events and due snapshots now (what the dispatcher thread does every
        tick; with an injected clock, the only way they are delivered before the end). Also
        records a rate observation, as the background ticker does ten times a second."""
        self._now()
        self._core.sample()
        self._dispatcher.poll()

    # -- worker processes ------------------------------------------------------------------------
    def _share(self) -> str:
        """Shares the run with worker processes (once): the segment's path."""
        from .workers import _owned, shm_dir

        path = self._core.enable_sharing(shm_dir(), self._stall_after)
        _owned[path] = self
        return path

    def _task_for_index(self, index: int) -> Optional[Task]:
        for task in (self, *self._tasks):
            if task._node.shared_index == index:
                return task
        return None

    def _handle_for(self, task: Task) -> tuple[Any, ...]:
        """What a task pickles to: enough for a worker process to count into it."""
        path = self._share()
        index = task._node.shared_index
        if index is None:
            raise MilepostError(f"{'/'.join(task.path)!r} cannot be shared with workers: a run shares at most 256 phases and steps")
        return (path, index, self.id, self.name, task.path)

    def _worker_events(self) -> List[Event]:
        from .workers import events_from_workers

        return events_from_workers(self)

    def _become_worker(self) -> None:
        """In a child made by fork: count into shared memory from now on, draw nothing."""
        from .renderers.native import ACTIVE
        from .workers import WorkerRun, _runs

        shared = self._core.shared()
        if shared is None:
            return
        worker = WorkerRun(shared, self.id, self.name)
        _runs[shared.path] = worker
        for task in (self, *self._tasks):
            index = task._node.shared_index
            if index is not None:
                task._bind(shared.node(index))
                task._shared_index = index
                task._borrowed = True
                worker._index[task.path] = index
        self._worker = worker
        # Item rows' start times: the worker's clock (`_now` is its monotonic time now).
        self._wall_origin = worker._wall_origin
        self._store = None  # the parent writes the history; a worker never does
        self._keeps_item_rows = True  # a pool item's row goes back with its result
        if self._native is not None:
            self._native.restore_streams()  # not stop(): the child has no ticker thread to stop
        ACTIVE.clear()

    def print(self, *values: Any, sep: str = " ", end: str = "\n") -> None:
        """Prints above the native bars (or plainly when they are not drawn)."""
        text = sep.join(str(v) for v in values) + end
        if self._native is not None and self._started and not self._finished:
            for line in text.rstrip("\n").split("\n"):
                self._native.println(line)
        else:
            sys.stdout.write(text)
