"""`Run`: the top of the tree, and the run's lifecycle: it starts, it ends, it can be
cancelled. What its tasks share lives in its context (`owner.Owner`), how it is shown in its
display options (`renderers.options`), how it is kept in the history (`persistence`)."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO, Union

from . import _milepost, context
from .budget import Budget, check_on_budget
from .dispatch import Delivery, check_interval
from .errors import InvalidValueError, MilepostError
from .events import RunFinished, RunStarted
from .home import history_on
from .live.publisher import LivePublisher, Steering
from .observers import JsonSnapshotFile, Observer
from .outcome import end_state, run_end_state
from .output import RunLogHandler
from .output import print as _print
from .owner import Owner
from .persistence import History, HistoryObserver, Resume, Store, claim, find_resumable, prior_rates
from .persistence.store import close_writers
from .renderers.options import DisplayOptions
from .resources import ResourceSettings, written_dirs
from .service import SERVICE, Client
from .signals import sigint_held
from .snapshot import Snapshot
from .steer import Meta
from .task import Task

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Run", "current_run"]

#: How often the rates are sampled when nothing is drawn natively.
SAMPLE_HZ = 4.0
#: Seconds a thread leaving a run waits for another thread that is writing the run's end.
FINISH_WAIT = 60.0

#: Runs started and not yet finished: ended as "cancelled" if the interpreter exits first
#: (a loop interrupted at top level keeps its tracker alive in the traceback until then).
_unfinished: "weakref.WeakSet[Run]" = weakref.WeakSet()
os.register_at_fork(after_in_child=_unfinished.clear)  # a forked child never ends its parent's runs


@atexit.register
def _finish_unfinished() -> None:
    for run in list(_unfinished):
        run.finish("cancelled")
    # Then, with every run's rows queued, the history files are closed: each is whole in its
    # database file, without the WAL beside it.
    close_writers()


def current_run() -> Any:
    """The run started by the innermost `with Run(...)` in this context, if it is still going
    (a run can be ended elsewhere, e.g. by a tracker collected on another thread); in a worker
    process, the worker's view of the run it works for."""
    root = context.current_root()
    return root.run if root is not None else None


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
        dashboard: Show the run on the web dashboard: True (127.0.0.1:8080), a port (0: any
            free one; a busy one moves to the next), or the keyword arguments of
            `milepost.dashboard.start` (host, port, token). Needs `pip install 'milepost[dashboard]'`.
        budget: Limits on metrics (`{"cost_usd": 5.0, "tokens": 2_000_000}`): a warning at 80%,
            and pools and `pending()` loops stop handing out items before one would pass a limit;
            the run is then cancelled with the reason "budget" (see `budget.Budget`).
        on_budget: "finish" (items in flight finish once the budget is spent) or "cancel"
            (`async_map`'s coroutines in flight are cancelled; threads and processes finish).
        meta: What the run is about (model, provider, experiment): shown and kept.
        capture_logging: True (INFO and up), a level number or name: the application's log
            records become the run's log lines (displays, live channel, history).
        resources: Sample the CPU, memory, I/O and open files of the run's processes (its own,
            its worker processes and their children) and the free space where it writes, on a
            thread of the native core: True (every second), False (not at all), or
            `{"interval": seconds, "disk_warn": 0.05}` (a warning once a filesystem the run
            writes to has less than that share free). Not with `clock=`.
    """

    # In slots, as `Task`'s (why: see there).
    __slots__ = (
        "_resources",
        "_sampling",
        "display",
        "_core",
        "_owner",
        "_delivery",
        "_written",
        "_token",
        "_opened",
        "_started",
        "_ended",
        "_capture",
    )

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
        budget: Optional[Dict[str, float]] = None,
        meta: Optional[Mapping[str, Any]] = None,
        on_budget: str = "finish",
        capture_logging: Union[bool, int, str] = False,
        resources: Union[bool, Mapping[str, Any]] = True,
    ) -> None:
        # Every argument is checked before anything is made (a history row, a thread, a
        # server): bad input leaves no trace.
        check_on_budget(on_budget)  # checked with or without a budget: a typo is said at once
        capture = _capture_level(capture_logging)
        limits = Budget(budget, on_budget) if budget is not None else None
        about = _meta(meta)
        options = DisplayOptions.make(display, output, interval, refresh_hz, max_lanes, leave, redirect)
        stall = check_interval(stall_after, "stall_after") or 60.0
        self._resources = ResourceSettings.make(resources)
        #: The starter's promise to start the resource sampling thread (see `start`).
        self._sampling: Optional[Client] = None
        self.display = options.display
        if history is True and not history_on():  # MILEPOST_HISTORY=off: kept nowhere
            history = False
        store = Store(None if history is True else Path(history)) if history else None
        resumed = _resumable(store, name, resume) if resume else None
        started_at = resumed.started_at if resumed is not None else time.time()
        run_id = resumed.run_id if resumed is not None else run_id or os.urandom(6).hex()  # uuid4's source
        core = _milepost.RunCore(run_id, name, clock is not None, started_at)
        owner = Owner(core, clock, store, resumed, stall, limits)
        if owner.steer is not None:
            # A resumed run keeps what its run was about, under the keys it sets again.
            owner.steer.meta.update({**(resumed.meta if resumed is not None else {}), **about})
        if store is not None:
            store.bind_run(core.id)
        super().__init__(owner, core.root, (core.name,))
        self._core = core
        self._owner = owner
        if limits is not None:
            limits.bind(self)
        if resumed is not None:
            core.root.restore(*resumed.counts(""))  # what the run itself had counted
        # What can still fail (a display's output, the dashboard's arguments) is made before
        # the history writes its row: a run that never started leaves none.
        shown = options.displays(core, manual=clock is not None)
        files: List[Observer] = [JsonSnapshotFile(snapshot_file)] if snapshot_file is not None else []
        if dashboard is not False and dashboard is not None:  # 0 is a port: any free one
            files.append(_dashboard(self, dashboard))
        # Delivery follows this order: the history first, so that a slow display (a stalled
        # terminal) never delays what is kept; the user's observers have their own thread.
        own: List[Observer] = [*self._kept(started_at), *files, *shown, *observers]
        self._delivery = Delivery(own, self.snapshot, owner.now, pull=owner.pending_events)
        owner.bind(self, self._delivery)
        self._written = (store.path if store is not None else None, options.output, snapshot_file)
        self._token: Any = None
        self._opened = self._started = False
        #: Held until the run's end is written: another thread leaving the run waits for it
        #: (a plain lock, released by whichever thread ends the run: cheaper than an Event).
        self._ended = threading.Lock()
        self._ended.acquire()
        #: `capture_logging`: the handler on the root logger while the run is open.
        self._capture = RunLogHandler(self.log, capture) if capture is not None else None

    def _kept(self, started_at: float) -> List[Observer]:
        """The history's observer, and the live channel of a run that keeps a history."""
        store, core, resumed = self._owner.store, self._core, self._owner.resume
        if store is None or not store.enabled:
            return []
        if self._owner.manual:  # an injected clock: nothing happens in the background
            self._owner.prior = prior_rates(store, core.name, core.id)
        else:
            store.query(lambda db: History(db).prior_rates(core.name, core.id), self._owner.take_prior)
        before = resumed.elapsed if resumed is not None else 0.0
        times = resumed.resumed + 1 if resumed is not None else 0
        steer = self._owner.steer
        meta = steer.snapshot_meta if steer is not None else dict
        used = (resumed.cpu_seconds, resumed.peak_rss_bytes) if resumed is not None else (None, None)
        kept: List[Observer] = [
            HistoryObserver(
                store,
                core.id,
                core.name,
                started_at,
                times,
                before,
                meta=meta,
                used_before=used,
                carried=resumed.phases if resumed is not None else (),
            )
        ]
        if steer is not None and os.environ.get("MILEPOST_LIVE", "on").lower() not in ("0", "off", "no", "false"):
            steering = Steering(self.cancel, steer.retry, steer.request_skip, steer.snapshot_meta, steer.reports)
            kept.append(LivePublisher(core.id, core.name, started_at, store.path, steering))
        return kept

    # -- identity ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        if not self._opened:  # made, not entered: nothing of it runs or is kept yet
            return f"<Run {self._core.name!r} not started>"
        return super().__repr__()

    @property
    def id(self) -> str:
        return self._core.id

    @property
    def meta(self) -> Dict[str, Any]:
        """What the run is about (model, provider, experiment...), from `Run(meta=...)`: `milepost
        monitor`, `milepost runs`, `milepost show` and the dashboard show it beside the run and
        the history keeps it. Set keys at any time; values other than str, int, float, bool
        and None are kept as their text."""
        steer = self._owner.steer
        return steer.meta if steer is not None else {}

    def _repr_html_(self) -> str:
        """Jupyter shows a run (the last value of a cell) as its frame now."""
        return self.snapshot().html()

    def item_reports(self) -> Dict[str, Dict[str, Any]]:
        """What the items in flight in this process reported (`item.progress`, `check`,
        `artifact`), by item name: `{"progress": [n, of] or None, "checks_ok", "checks",
        "artifacts"}` each (what the monitor and the dashboard show on the item's line)."""
        steer = self._owner.steer
        return steer.reports() if steer is not None else {}

    def meta_json(self) -> Dict[str, Any]:
        """`meta` as JSON-ready values (a copy)."""
        steer = self._owner.steer
        return steer.snapshot_meta() if steer is not None else {}

    @property
    def history_path(self) -> Optional[Path]:
        """The history database this run is kept in, or None when it keeps none (or the
        history turned itself off; in a forked worker, where the parent keeps it)."""
        store = self._owner.store
        if store is None or not store.enabled or self.context is not self._owner:
            return None
        return store.path

    @property
    def observers(self) -> List[Observer]:
        return self._delivery.observers

    @property
    def observer_failures(self) -> int:
        """How many calls to observers raised (each observer's first is logged; the job goes
        on regardless)."""
        return self._delivery.observer_failures()

    @property
    def events_dropped(self) -> int:
        """Lifecycle events dropped because a queue was full (never silently): the run's own
        queue and the workers' (also in every snapshot as `worker_events_dropped`)."""
        return self._delivery.dropped + int(self.snapshot().data["worker_events_dropped"])

    @property
    def cancelled(self) -> bool:
        return self._owner.cancelled

    @property
    def finished(self) -> bool:
        """The run has ended (or is writing its end): its counts are final."""
        return self._owner.finished

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """The run's start, before anything is delivered (`start()` does it): a loop of its
        own (`track()`) makes its phase between this and `start()`, so the first line already
        shows its total."""
        if self._opened:
            return
        self._opened = True
        _unfinished.add(self)
        self._token = context.set_current(self)
        self.context.emit(RunStarted, (), history=None if self.history_path is None else str(self.history_path))
        if self._capture is not None:
            logging.getLogger().addHandler(self._capture)

    def start(self) -> Run:
        """Starts the display and the background threads (done by `with`)."""
        self.open()
        if self._started:
            return self
        self._started = True
        if self._owner.manual:
            self._owner.now()
            self._delivery.start(threads=False)
            self._delivery.poll()
            return self
        # The run's own observers start here (a native display draws from now on); sampling
        # runs on the native display's thread if there is one, else on one of its own.
        self._delivery.start()
        self._core.start_ticker(SAMPLE_HZ, native=False)
        if self._resources is not None:
            # The first sample now; the sampling thread once the run has lived a moment (a run
            # of a few milliseconds starts none: its last sample is taken at its end, here).
            dirs = written_dirs(self._written)
            self._core.start_resources(self._resources.interval, self._resources.disk_warn, dirs)
            self._sampling = SERVICE.add(self._core.spawn_resources)
        return self

    def finish(self, state: str = "completed") -> None:
        """Ends the run (idempotent): open phases end with it, observers get the final
        snapshot and are closed, the display draws its last frame. How it ends follows one
        rule (`outcome.run_end_state`): a cancel asked for ends it cancelled, a failed phase or
        step makes an otherwise completed run failed. Returns once the end is written, also
        when another thread is ending the run."""
        if self.context is not self._owner:
            return  # a forked worker's copy: the parent ends the run
        dispatcher = self._delivery.on_dispatch_thread()
        if dispatcher is not None:
            # Ended from inside an observer (or a collection on that thread): finishing waits
            # for the delivery in progress, so it happens right after it.
            dispatcher.defer(lambda: self._finish(state, wait=False))
            return
        self._finish(state)

    def end(self, state: str = "completed") -> None:
        self.finish(state)

    def _finish(self, state: str, wait: bool = True) -> None:
        # A Ctrl-C while the run ends is held until the history has the final state.
        with sigint_held():
            if not self._owner.finished:  # what remote workers counted comes in before the end
                self._owner.settle_links()
            if not self._owner.mark_finished():
                # Another thread is ending the run: the end is written when we return.
                if wait and self._ended.acquire(timeout=FINISH_WAIT):
                    self._ended.release()  # for the next thread that waits
                return
            try:
                self._end(state)
            finally:
                self._ended.release()
                _unfinished.discard(self)

    def _end(self, state: str) -> None:
        if self._capture is not None:  # before the end: a record after it would be refused
            logging.getLogger().removeHandler(self._capture)
        self._core.finish()  # counts are final from here: later updates are refused
        self._owner.now()
        for task in reversed(self._owner.tasks):
            task.end(state)
        if self._sampling is not None:
            SERVICE.take_back(self._sampling)  # a thread started after the stop would start nothing
        self._core.stop_resources()  # a last sample: the end has the run's CPU time and peak memory
        self._core.sample()  # takes what the workers sent last
        self._delivery.pull_now()  # ...and hands it on before the run's end
        state = run_end_state(state, self.cancelled, self._core.node_states())
        self._core.end_running(state)  # nodes workers created end with the run
        self._node.end(state)
        self.context.emit(RunFinished, (), state=state, elapsed=self._core.now())
        try:
            self._delivery.close()
        finally:
            try:
                self._delivery.stop_own()
                self._owner.close_links()
                self._core.stop_ticker()
                self._core.stop_sharing()
                if self._owner.store is not None:
                    self._owner.store.close()
                if self._token is not None:
                    context.reset_current(self._token, self)
                    self._token = None
            finally:
                self._delivery.release()  # the user's observers' stop(): the run let go of all

    def cancel(self, reason: str = "") -> None:
        """Asks the job to stop: loops and pools hand out no more items (in worker processes
        too), items in flight finish, and the job gets `milepost.Cancelled`, which ends the run
        "cancelled". Thread-safe; the dashboard's Cancel button calls it."""
        if self._core.cancelled:
            return
        self._owner.note_cancel(reason)
        self._core.cancel()
        self.log(f"cancel requested{': ' + reason if reason else ''}", level="warning", source="milepost")

    def retry_failed(self) -> int:
        """Runs the items that failed so far in the run's running pools again (those with
        `return_exceptions=True`: the others stop at their first failure), as `milepost retry`,
        the monitor and the dashboard ask: returns how many will. Each counts as retried; its
        failure stays counted. Thread-safe."""
        steer = self._owner.steer
        return steer.retry() if steer is not None else 0

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.finish(end_state(exc_type, exc))

    # -- tree and lanes -----------------------------------------------------------------------
    def phase(
        self,
        name: str,
        total: Optional[int] = None,
        unit: str = "it",
        budget: Optional[Dict[str, float]] = None,
        on_budget: str = "finish",
    ) -> Task:
        """A phase of the run (setup, map, reduce...). It starts now and ends when its `with`
        block ends, or when the run ends. `budget`, `on_budget`: limits on the phase's own
        spend, as the run's (see `Task.child`)."""
        return self.child("phase", name, total, unit, budget, on_budget)

    def add_lane(self, name: str) -> Optional[_milepost.Lane]:
        return self.context.add_lane(name)

    @contextlib.contextmanager
    def lane(self, name: str) -> Iterator[Optional[_milepost.Lane]]:
        """Binds a worker lane to the current thread: items started here show in it."""
        lane = self.context.add_lane(name)
        previous = self.context.lane()
        self.context.bind_lane(lane)
        try:
            yield lane
        finally:
            self.context.bind_lane(previous)
            self.context.finish_lanes([lane])

    # -- observation --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """A consistent view of the whole run now."""
        if self.context is not self._owner:
            raise MilepostError("snapshots are taken in the process that started the run, not in its workers")
        self._owner.now()
        self._core.sample()  # what happened since the last sample, then a read that changes nothing
        self._core.note_events_dropped(self._delivery.dropped)
        return Snapshot(self._core.snapshot())

    def poll(self) -> None:
        """Delivers queued events and due snapshots now (what the dispatcher thread does every
        tick; with an injected clock, the only way they are delivered before the end). Also
        records a rate observation, as the background ticker does four times a second."""
        self._owner.now()
        self._core.sample()
        self._delivery.poll()

    def share(self) -> str:
        """Shares the run with worker processes now (passing a task to one does it by itself):
        the path of its shared-memory segment."""
        return self._owner.share()

    def print(self, *values: Any, sep: str = " ", end: str = "\n") -> None:
        """Prints above the native bars (or plainly when they are not drawn)."""
        _print(*values, sep=sep, end=end)


def _capture_level(value: Any) -> Optional[int]:
    """`capture_logging`: False (off), True (INFO and up), a level number or name."""
    if value is False or value is None:
        return None
    if value is True:
        return logging.INFO
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and isinstance(logging.getLevelName(value.upper()), int):
        return int(logging.getLevelName(value.upper()))
    raise InvalidValueError(f"capture_logging must be True, False, a level number or a level name, got {value!r}")


def _meta(meta: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """`Run(meta=...)` checked: a mapping of non-empty string keys (see `steer.Meta`)."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InvalidValueError(f"meta must be a dict of str to values, got {meta!r}")
    return dict(Meta(meta))


def _resumable(store: Optional[Store], name: str, which: Union[bool, str]) -> Optional[Resume]:
    """What a resumed run continues (None when there is nothing to resume by that name)."""
    if store is None or not store.enabled:
        raise MilepostError("resume needs the run history, which is off (history=False, or the store could not open)")
    found = find_resumable(store, name, which)
    if found is None and which is not True:
        raise MilepostError(f"no run with id {which!r} in {store.path}")
    if found is None:
        return None
    if any(run.id == found and not run.finished for run in list(_unfinished)):
        raise MilepostError(f"run {found} is still running in this process: resuming it now would run its items twice")
    resume = Resume(store, found)
    claim(store, found, resume.resumed + 1)  # refused if another process took it meanwhile
    return resume


def _dashboard(run: Run, options: Union[bool, int, dict]) -> Observer:
    """The observer showing `run` on the dashboard, which starts its server if needed. The
    dashboard is an add-on on top of the package, loaded when a run asks for it: the run never
    depends on it (see the layers in the README)."""
    web = importlib.import_module("milepost.dashboard")
    observer: Observer = web.attach(run, options)
    return observer
