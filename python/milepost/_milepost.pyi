"""Type stubs for ``milepost._milepost``, the native core built from ``rust/py/*.rs`` by PyO3.

Hand-written: keep in sync with the ``#[pymethods]``, ``#[pyfunction]`` and
``#[pyo3(signature = ...)]`` attributes there (``tests/test_stubs.py`` runs stubtest against
the compiled module). Every class is final but ``TaskBase`` and ``BarBase``, the native bases
of ``milepost.Task`` and of the manual bars, and ``TrackerBase``, the base of ``Tracker``.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, Optional, Sequence, TypeAlias, Union, final

from typing_extensions import disjoint_base

# Names, messages and errors: a ``str`` or any ``os.PathLike`` (its ``__fspath__`` may give
# ``str`` or ``bytes``; undecodable bytes and lone surrogates are replaced, not rejected).
_Text: TypeAlias = Union[str, os.PathLike[str], os.PathLike[bytes]]
_NodeKind: TypeAlias = Literal["run", "phase", "step"]
_NodeState: TypeAlias = Literal["pending", "running", "completed", "failed", "cancelled"]

__all__ = [
    "RunCore",
    "Node",
    "Lane",
    "TaskBase",
    "ItemBase",
    "ItemPath",
    "current_item",
    "BarBase",
    "TrackerBase",
    "Tracker",
    "Snapshot",
    "Estimator",
    "SharedRun",
    "RowBuffer",
    "TakenRows",
    "encode_recent",
    "extend_rows",
    "run_items",
    "process_now",
    "after_fork_in_child",
    "format_duration",
    "format_rate",
    "format_amounts",
    "set_colors",
    "format_eta",
    "format_count",
    "format_metric",
    "format_cost_outlook",
    "format_bytes",
    "format_cpu",
    "is_money",
    "resource_options",
    "sanitize",
    "item_key",
    "SCHEMA_VERSION",
    "MAX_METRICS",
    "MAX_COUNT",
    "MAX_NAME_CHARS",
    "MAX_ERROR_CHARS",
    "MAX_NODES",
    "MAX_SHARED_NODES",
    "MAX_WORKER_PROCESSES",
    "RECORD_BYTES",
]

SCHEMA_VERSION: Final[int]
"""Version of the snapshot JSON schema (``Snapshot.json``)."""
MAX_METRICS: Final[int]
"""Most metrics a node keeps; more names raise ``InvalidValueError``."""
MAX_COUNT: Final[int]
"""The largest count, total or integer metric value (2**53 - 1); beyond it ``InvalidValueError``."""
MAX_NAME_CHARS: Final[int]
"""Longest name kept (node, lane, item); longer ones are clipped."""
MAX_ERROR_CHARS: Final[int]
"""Longest error or log text kept."""
MAX_NODES: Final[int]
"""Most phases and steps in one run."""
MAX_SHARED_NODES: Final[int]
"""Most phases and steps a run shares with its worker processes (a node past it counts in the
parent only, and cannot be handed to a worker)."""
MAX_WORKER_PROCESSES: Final[int]
"""Most worker processes counting into one run at once."""
RECORD_BYTES: Final[int]
"""Longest event (its JSON, in UTF-8 bytes) a worker process can send its parent."""

@final
class RunCore:
    """A run's tree of nodes, its snapshots and its background ticker thread."""

    def __new__(
        cls, run_id: str, name: _Text, manual_clock: bool = False, started_at_unix: float = 0.0
    ) -> "RunCore": ...
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def root(self) -> Node:
        """The run's root node (kind ``"run"``)."""
    def add_node(
        self,
        parent: Node,
        kind: str,
        name: _Text,
        total: Optional[int] = None,
        unit: str = "it",
    ) -> Node:
        """Adds a ``phase`` or ``step`` under ``parent`` (other kinds raise ``InvalidValueError``)."""
    def add_lane(self, name: _Text) -> Lane:
        """Adds a worker lane."""
    def now(self) -> float:
        """Seconds since the run started, on the run's clock."""
    def set_time(self, now: float) -> None:
        """Sets the time of a manual clock (ignored by the system clock)."""
    def sample(self) -> None:
        """Takes in what happened since the last sample: nodes, events and deaths of worker
        processes, and a rate observation for every running node. The only call that does."""
    def snapshot(self) -> Snapshot:
        """A consistent snapshot of the whole run, as of the last ``sample()`` for rates and
        workers' events (counts are read now). Changes nothing: call ``sample()`` first for a
        snapshot that is shown."""
    def note_events_dropped(self, total: int) -> None:
        """Lifecycle events lost to full observer queues so far, ``total`` (the snapshot's
        ``events_dropped``); the count never goes down."""
    @property
    def events_dropped(self) -> int:
        """Lifecycle events lost to full observer queues so far."""
    def start_ticker(
        self, hz: float = 10.0, native: bool = False, max_lanes: int = 8, leave: bool = True, stdout: bool = False
    ) -> bool:
        """Starts the sampling (and, with ``native``, drawing) thread; False if already started."""
    def stop_ticker(self) -> None:
        """Stops the thread after a final frame; waits for it without holding the GIL."""
    def start_resources(self, interval: float, disk_warn: float, dirs: list[str]) -> bool:
        """Samples this process's tree and the free space of ``dirs`` now, and every
        ``interval`` seconds once ``spawn_resources`` starts the sampling thread
        (``InvalidValueError`` for a bad value); False if already started."""
    def spawn_resources(self) -> None:
        """Starts the resource sampling thread (not after ``stop_resources``)."""
    def stop_resources(self) -> None:
        """Takes a last sample and stops the resource thread, without holding the GIL."""
    def take_resource_warnings(self) -> list[str]:
        """Warnings of the resource sampling (low disk space, sampling stopped) since the last
        call."""
    def println(self, text: str) -> bool:
        """Prints ``text`` above the native display; False when no native display took it."""
    def enable_sharing(self, dir: str, stall_after: float = 60.0) -> str:
        """Shares the run with worker processes through a segment file in ``dir``; its path
        (``SharingError``, an ``OSError``, when the file cannot be made)."""
    def shared(self) -> Optional[SharedRun]:
        """This run's segment, as a worker in a forked child uses it."""
    def cancel(self) -> None:
        """Asks the job to stop taking new items (loops, pools, worker processes)."""
    @property
    def cancelled(self) -> bool: ...
    def end_running(self, state: str) -> None:
        """Ends every node still running with ``state`` (at the end of the run)."""
    def finish(self) -> None:
        """Ends the run's counting: every later update raises ``RunEndedError``."""
    def stopping_workers(self, pids: list[int]) -> None:
        """Worker processes about to be stopped (a second Ctrl-C): not deaths."""
    def stopped_workers(self) -> None:
        """The stopped workers are gone: their items in flight leave flight uncounted."""
    def workers_left(self, pids: list[int]) -> Optional[bool]:
        """Whether these worker processes have all left the run (each marks its slot on its
        way out); None when one of them never took a slot (it may still be starting)."""
    def stop_pool(self, pool: int, stop: bool) -> None:
        """Tells pool ``pool``'s workers to stop handing out items (``False``: frees the bit)."""
    def node_states(self) -> list[_NodeState]:
        """The state of every phase and step (workers' included)."""
    def stop_sharing(self) -> None:
        """Removes the segment file."""
    def take_worker_events(self) -> list[tuple[list[str], str, int]]:
        """``(path, json, pid)`` of each event sent by a worker that sampling took in since the
        last call."""
    def pause(self, paused: bool) -> None:
        """Clears the native display and stops drawing (``True``) or starts again (``False``)."""

@final
class Node:
    """The run, a phase or a step, wherever it counts: a node of this process's run (see
    ``RunCore.root`` and ``add_node``) or, in a worker process, a node of its parent's run
    counted into this process's slot (see ``SharedRun.node``). Not constructible."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> _NodeKind: ...
    @property
    def state(self) -> _NodeState:
        """In a worker process always ``"running"``: the parent decides how a node ends."""
    @property
    def total(self) -> Optional[int]:
        """This node's own total (``None``: unknown); a shared node's as its workers grew it."""
    @property
    def done(self) -> int:
        """Items done by this node itself (snapshots roll children up); in a worker process,
        this process's."""
    @property
    def failed(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def in_flight(self) -> int:
        """Items started and not yet finished."""
    @property
    def path(self) -> Optional[str]:
        """The node's key in the history (unambiguous, fixed at creation); ``None`` in a worker
        process, whose parent keeps the history."""
    @property
    def shared_index(self) -> Optional[int]:
        """The node's index in the shared table, once the run is shared."""
    def advance(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) items done."""
    def skip(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) skipped items."""
    def fail(self, name: _Text, error: _Text, rows: Optional[RowBuffer] = None, at: float = 0.0) -> int:
        """Counts one failed item and keeps its error text; with ``rows``, queues its history
        row in the same call. How many rows are waiting."""
    def retry(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) retries."""
    def set_total(self, total: Optional[int]) -> None:
        """Sets the total (``None``: unknown)."""
    def add_total(self, n: int) -> None:
        """Adds ``n`` to the total."""
    def set_leave(self, leave: bool) -> None:
        """False: live displays stop drawing the node once it ended (tqdm's ``leave``)."""
    def new_pass(self) -> None:
        """A new pass begins (tqdm's ``reset``): displays show its counts and total."""
    def pass_figures(self) -> tuple[int, int, Optional[int]]:
        """``(number, processed, total)`` of the current pass (number 1 until a new one)."""
    def set_unit_divisor(self, divisor: Optional[int] = None) -> None:
        """Shows counts with SI prefixes in steps of ``divisor`` (1000 or 1024; None: plain)."""
    def metric(self, name: _Text, value: float) -> None:
        """Adds ``value`` to the metric ``name`` (ints stay ints until a float is added)."""
    def item_started(self, name: _Text, lane: Optional[Lane] = None) -> None:
        """Records that the item ``name`` started (on ``lane``; a worker process is its own)."""
    def item_finished(
        self,
        name: _Text,
        status: str,
        duration: Optional[float] = None,
        error: Optional[_Text] = None,
        lane: Optional[Lane] = None,
        rows: Optional[RowBuffer] = None,
        started_at: float = 0.0,
        metrics: Optional[str] = None,
    ) -> int:
        """Records that the item ``name`` ended (``done``, ``failed``, ``skipped`` or
        ``cancelled``); with ``rows``, queues its history row in the same call (a worker
        process queues none: its rows go back to the parent). How many rows are waiting."""
    def record_item(
        self,
        name: _Text,
        status: str,
        duration: Optional[float],
        at: float,
        lane: Optional[str] = None,
        error: Optional[_Text] = None,
    ) -> None:
        """Keeps an item a worker process counted in the run's recent (and failures) list; in
        a worker process it keeps nothing (a worker has no recent list)."""
    def record_recent(self, data: bytes, origin: float, lane: Optional[str] = None) -> None:
        """Keeps a chunk's recent items (`encode_recent`'s bytes, or a worker's `run_items`')
        as `record_item` keeps one, each at its end less `origin`; bytes that are not such
        items are a `ValueError`, and none of them is kept."""
    def restore(self, item_done: int, item_skipped: int, done: int, skipped: int) -> None:
        """What a resumed run takes over, each into its own counter."""
    def start(self) -> None:
        """Marks the node running (idempotent)."""
    def rename(self, name: _Text) -> None:
        """Renames the node (tqdm's ``set_description``); an empty name raises
        ``InvalidValueError``. A shared node's name is fixed: a worker keeps it."""
    def reopen(self) -> None:
        """Runs an ended node again, keeping its counts."""
    def end(self, state: str) -> None:
        """Ends the node: ``completed``, ``failed`` or ``cancelled`` (else ``InvalidValueError``)."""
    def set_prior_rate(self, rate: float) -> None:
        """The rate earlier runs reached here: the ETA until this run has its own."""
    def stream_start(self, name: _Text) -> None:
        """Item ``name``, which has no lane, starts streaming: the node's one tail is its now
        (nothing in a worker process)."""
    def stream(self, text: str) -> None:
        """Adds to the tail of the node's streaming item (nothing in a worker process); a
        ``text`` that is not a ``str`` is a ``TypeError``."""
    def stream_end(self, name: _Text) -> None:
        """The streaming item ``name`` ended: its tail goes (unless another item took it over)."""
    def item_cost(self, cost: float) -> None:
        """The whole cost of an item that ended and recorded one, for the node's cost per
        item and projected cost; nothing in a worker process. A cost that is not finite is
        ``InvalidValueError``."""

@final
class Lane:
    """A worker lane. Not constructible: see ``RunCore.add_lane``."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    def finish(self, now: float) -> None:
        """Marks the lane finished (its worker has exited)."""
    def stream(self, text: str) -> None:
        """Adds to the tail of the current item's streamed output (cleared when the item
        ends); a ``text`` that is not a ``str`` is a ``TypeError``."""

@disjoint_base
class TaskBase:
    """The native base of ``milepost.Task``: its counting methods, on the node its subclass's
    ``__init__`` binds (``_bind_node``; a forked worker binds another once). Made unbound, a
    counting call is a ``RuntimeError``."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> "TaskBase": ...
    def _bind_node(self, node: Node, items: Optional[ItemPath] = None) -> None:
        """Counts into ``node`` from now on; its items are entered and ended natively through
        ``items`` (None: by ``Item``'s Python)."""
    def item(self, name: Any) -> ItemBase:
        """Context manager for one item (an instance of the class given to ``ItemBase._use``,
        made with no ``__init__``): records its duration and worker lane; an exception marks
        it failed with the error text and is re-raised."""
    def advance(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) items done."""
    def skip(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) skipped items."""
    def set_total(self, total: Optional[int]) -> None:
        """Sets the total (``None``: unknown)."""
    def add_total(self, n: int) -> None:
        """Grows the total by ``n``."""

@final
class ItemPath:
    """What a run gives its tasks for their items to be entered and ended natively: the Unix
    time at the core clock's zero, the context variable of the calling context's lane (None:
    no lanes), where rows go (a ``RowSink``, None: not kept) and from how many waiting rows
    the sink is told (``pushed``); with ``keep_rows``, an ended item keeps its row (``row``)
    though no sink takes it (a pool's worker process sends its rows back)."""

    def __new__(
        cls, wall_origin: float, lanes: Optional[Any], sink: Optional[Any], eager: int, keep_rows: bool = False
    ) -> ItemPath: ...
    def use_buffer(self, buffer: Optional[RowBuffer]) -> None:
        """Where the rows of items ending from now on go, for a path that keeps rows without a
        sink (a pool's worker process): ``buffer``, or nowhere (None). A ``RuntimeError`` for
        any other path."""

@disjoint_base
class ItemBase:
    """The native base of ``milepost.Item``: makes a plain item start and end natively, and
    hands anything else to the subclass (``_enter``, ``_exit_slow``)."""

    name: Any
    _lane: Optional[Lane]
    _t0: float
    _live: int
    row: Optional[tuple[str, float, Optional[float], Optional[str], Optional[str]]]
    def __new__(cls, task: TaskBase, name: Any) -> "ItemBase": ...
    @property
    def _task(self) -> TaskBase: ...
    @property
    def _skipped(self) -> bool: ...
    @staticmethod
    def _use(cls: type, current: Any) -> None:
        """The class ``TaskBase.item`` makes and the context variable of the current item."""
    def skip(self) -> None:
        """Counts the item skipped instead of done when it ends."""
    def _now(self) -> float:
        """Seconds on the clock the item's start was read on."""
    def _wall(self, t: float) -> float:
        """Unix time of second ``t`` on that clock."""
    def _set_current(self) -> None: ...
    def _leave(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

def current_item() -> Optional[ItemBase]:
    """The item entered in the calling context (``milepost.current_item()``)."""

@disjoint_base
class BarBase:
    """The native base of the manual bars (``track(total=N)``, ``milepost.tqdm``)."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> "BarBase": ...
    def _bind_node(self, node: Node) -> None:
        """Counts into ``node`` from now on."""
    def update(self, n: Optional[float] = None) -> None:
        """Counts ``n`` (default 1) items done: a whole number above 0 natively; anything
        else is the subclass's ``_update(n)``, which knows tqdm's rules."""

@disjoint_base
class TrackerBase:
    """What ``Tracker`` holds: the loop, its count and tqdm's methods (``Tracker`` adds the
    iteration itself)."""

    def __new__(
        cls,
        iterable: Iterable[Any],
        node: Node,
        length: Optional[int] = None,
        on_end: Optional[Callable[[str, Optional[BaseException]], object]] = None,
    ) -> "TrackerBase": ...
    def __iter__(self) -> "TrackerBase": ...
    def __len__(self) -> int:
        """The length given at construction (``TypeError`` when it was ``None``)."""
    def update(self, n: Optional[int] = None) -> None:
        """Counts ``n`` (default 1) more items done (tqdm's ``update``)."""
    def set_description(self, desc: _Text, refresh: bool = True) -> None:
        """Renames the loop's bar (tqdm's ``set_description``)."""
    def close(self) -> None:
        """Ends tracking now (as on ``break``): the run is closed as abandoned."""

@final
class Tracker(TrackerBase):
    """The iterator returned by ``track()``: counts an item done when the next is asked for."""

    def __new__(
        cls,
        iterable: Iterable[Any],
        node: Node,
        length: Optional[int] = None,
        on_end: Optional[Callable[[str, Optional[BaseException]], object]] = None,
    ) -> "Tracker": ...
    def __iter__(self) -> "Tracker": ...
    def __next__(self) -> Any: ...

@final
class Snapshot:
    """One consistent view of a run. Not constructible: see ``RunCore.snapshot``."""

    @staticmethod
    def from_json(text: str) -> Snapshot:
        """A snapshot read back from its JSON."""

    @property
    def now(self) -> float:
        """The run's clock when the snapshot was taken."""
    @property
    def state(self) -> str:
        """The run's state (its root node's)."""
    @property
    def failed(self) -> int:
        """The items the run counts failed (its root node's)."""
    def json(self) -> str:
        """The snapshot as JSON text (schema documented in the README)."""
    def kept_json(self) -> str:
        """``{"root", "lanes", "resources"}`` as in ``json()``, without the recent items and failures."""
    def explicit_counts(self) -> list[tuple[str, str, int, int]]:
        """``(path, kind, done, skipped)``: each node's own counts made without an item context."""
    def run_line(self) -> str:
        """The run's one-line summary."""
    @property
    def events_dropped(self) -> int:
        """Lifecycle events lost to a full observer queue (also in ``json()``)."""
    def node_lines(self) -> list[tuple[int, str, str, str]]:
        """``(depth, name, state, stats text)`` for every phase and step, depth-first."""
    def lane_lines(self, max_lanes: int) -> list[str]:
        """The native frame's lane lines without colour: lanes still at work, dead and stalled
        ones first, at most ``max_lanes`` lines (the last then ``… N more lanes``)."""
    def failure_line(self) -> Optional[str]:
        """The native frame's line for the newest failure (``  ✗ name: error``), uncoloured."""
    def frame(self, width: int = 100, height: int = 40, max_lanes: int = 8) -> list[str]:
        """The native renderer's frame for a ``width`` x ``height`` terminal."""

def format_duration(seconds: float) -> str:
    """Seconds as ``"45s"``, ``"3m05s"``, ``"2h07m"``, ``"3d04h"`` (one decimal below ten seconds)."""

def format_rate(per_second: Optional[float], unit: str = "it", divisor: Optional[int] = None) -> str:
    """Items per second as text, flipped to seconds per item when slower than one a second;
    with a divisor (tqdm's ``unit_scale``) ``"12.3MB/s"``."""

def format_amounts(processed: int, total: Optional[int], unit: str = "it", divisor: Optional[int] = None) -> str:
    """``"1,234/5,000"``, or with a divisor (tqdm's ``unit_scale``) ``"12.3M/45.0M"``."""

def format_eta(eta: Optional[float], low: Optional[float] = None, high: Optional[float] = None) -> str:
    """``"ETA 38s (30s–52s)"``, ``"ETA 38s"`` without a range, ``"ETA ?"`` when unknown."""

def set_colors(enabled: bool) -> None:
    """Colour on or off for the native display, whatever the terminal says."""

def format_count(n: int) -> str:
    """``1234567`` as ``"1,234,567"``."""

def format_metric(name: str, value: float) -> str:
    """A metric value for display (money, see ``is_money``, in dollars)."""

def format_cost_outlook(
    per_item: Optional[float],
    projected: Optional[tuple[float, Optional[float], Optional[float]]] = None,
    unit: str = "it",
) -> str:
    """``$0.0123/item → $6.10 ($5.80–6.40)``: a node's ``cost_per_item`` and its
    ``projected_cost`` as ``(value, low, high)``, as the native run line shows them (empty
    when both are ``None``); ``unit`` names an item (``it`` reads ``item``)."""

def resource_options(interval: Optional[float] = None, disk_warn: Optional[float] = None) -> tuple[float, float]:
    """``(interval, disk_warn)`` of ``Run(resources={...})``, defaults filled in (1 s, 0.05);
    ``InvalidValueError`` names a value out of range."""

def format_bytes(n: int) -> str:
    """Bytes in decimal units: ``"310 MB"``, ``"2.1 GB"`` (one decimal below ten)."""

def format_cpu(percent: float) -> str:
    """CPU use in percent of one core, whole: ``"340%"``."""

def is_money(name: str) -> bool:
    """Whether a metric is money: its name contains ``cost`` or ``usd`` (any case). The one
    rule; a snapshot node's ``cost`` sums these."""

def process_now() -> float:
    """Seconds on this process's own monotonic clock (a worker process's items are timed on it)."""

def sanitize(text: _Text) -> str:
    """``text`` without terminal escapes, control characters or bidi overrides."""

def item_key(name: _Text) -> str:
    """The name the history keeps for an item (a long one: its beginning and a hash)."""

@final
class Estimator:
    """The core's rate/ETA window on its own: feed ``(time, count)`` observations, ask for an
    estimate. Used to replay traces in the ETA benchmark."""

    def __new__(cls) -> Estimator: ...
    def observe(self, now: float, count: int) -> None:
        """Records that ``count`` items were processed by time ``now``."""
    def estimate(
        self, now: float, count: int, total: Optional[int] = None
    ) -> tuple[Optional[float], Optional[float], Optional[float], Optional[float]]:
        """``(rate, eta, eta_low, eta_high)`` at ``now``; ``None`` where unknown."""
    def __len__(self) -> int: ...

def after_fork_in_child() -> None:
    """Forgets, in a process just forked, the worker slots of its parent."""

@final
class SharedRun:
    """A run's shared-memory segment, as a worker process maps it."""

    @staticmethod
    def attach(path: str) -> SharedRun:
        """Maps the segment a parent process created at ``path``."""
    @property
    def path(self) -> str: ...
    def node(self, index: int, rows_path: Optional[str] = None) -> Node:
        """The node at ``index`` of the shared table, counting into this process's slot
        (``InvalidValueError`` for an index the table does not hold); with ``rows_path``, its
        items' history rows are kept under that path (a pool's chunk sends them back)."""
    def child(self, parent: int, kind: str, name: _Text, unit: str = "it", total: Optional[int] = None) -> int:
        """The phase or step of that name under ``parent``, registered by this worker if no process
        did yet: its index."""
    def emit(self, node: int, json: str) -> bool:
        """Queues an event for the parent; False when the queue was full."""
    @property
    def cancelled(self) -> bool: ...
    def pool_stopped(self, pool: int) -> bool:
        """Whether the parent told pool ``pool`` to stop handing out items."""
    def detach(self) -> None:
        """Marks this worker as exited cleanly."""

@final
class RowBuffer:
    """Item rows for the history store, encoded in Rust as one JSON array."""

    def __new__(cls, run_id: str, origin: Optional[float] = None) -> RowBuffer:
        """A buffer of run ``run_id``'s rows; with an ``origin`` (Unix time, a pool's start):
        each chunk's rows share their phase and are timed from ``origin``, and are encoded
        without them (a pool's worker; history schema 6). ValueError for an origin that is
        not finite."""
    def push(
        self,
        phase: str,
        name: str,
        status: str,
        started_at: float,
        duration: Optional[float] = None,
        error: Optional[str] = None,
        metrics: Optional[str] = None,
    ) -> int:
        """Adds an item row; returns how many are waiting. A ``status`` that is none of an
        item's (``done``, ``failed``, ``skipped``, ``cancelled``) is an ``InvalidValueError``."""
    @property
    def run_id(self) -> str:
        """The run whose rows these are."""
    def close(self) -> None:
        """The store no longer reads this buffer: items ended natively ask it again."""
    def take(self) -> Optional[list[tuple[str, int, int, int, int, Optional[str], Optional[float]]]]:
        """The waiting rows in chunks of at most a thousand (chunks given to ``extend_rows``
        are kept as they came, or joined up to 64 KiB when their short rows share their phase
        and start): each one JSON array, with its rows, how many are done, failed and
        skipped, and the phase and start its rows share (None, None: whole rows)."""
    def take_each(self) -> Optional[TakenRows]:
        """The waiting rows as ``take`` gives them, but a chunk at a time, each with the run
        first (the parameters of the store's insert), or None."""
    def __len__(self) -> int: ...

@final
class TakenRows:
    """Rows taken from a ``RowBuffer`` for the store's writer: each chunk's text is made a
    string only when the writer comes to it (``RowBuffer.take_each``)."""

    @property
    def rows(self) -> int:
        """How many rows were taken."""
    def __iter__(self) -> TakenRows: ...
    def __next__(self) -> tuple[str, str, int, int, int, int, Optional[str], Optional[float]]: ...

def run_items(
    task: TaskBase,
    func: Any,
    items: list[Any],
    names: Optional[list[Any]],
    shared: SharedRun,
    pool: int,
    tail_from: int,
    make_name: Optional[Any] = None,
    indices: Optional[Any] = None,
) -> tuple[list[Any], list[tuple[int, bool]], int, bytes]:
    """A pool chunk's items in a worker, one native loop: ``with task.item(name):
    func(items[k])`` for each until the run is cancelled or pool ``pool`` told to stop. The
    name is ``names[k]``; without ``names``, an exact ``str``, ``int`` or ``float`` item names
    itself and any other is ``make_name(item, indices[k])``. Returns each result (an
    ``Exception`` the block raised, as raised), the positions of those that raised with
    whether each ran, how many items started, and of the items from ``tail_from`` on those
    that ran and did not fail, as ``encode_recent`` gives them."""

def encode_recent(items: Sequence[tuple[Any, str, Optional[float], float]]) -> bytes:
    """``(name, status, duration, end)`` of each of ``items`` in one ``bytes``, what a chunk's
    newest items cross to the parent as (see ``Node.record_recent``)."""

def extend_rows(
    buffer: RowBuffer,
    run_id: str,
    rows: str,
    n: int,
    done: int,
    failed: int,
    skipped: int,
    phase: Optional[str] = None,
    t0: Optional[float] = None,
) -> int:
    """Queues a chunk of ``n`` rows another buffer of run ``run_id`` encoded (of its
    ``take()``), with the ``phase`` and ``t0`` its short rows share (joined to the chunk before
    when that is one given with the same, up to 64 KiB); returns how many rows are waiting.
    Anything else, or another run's rows, is a ``ValueError``."""
