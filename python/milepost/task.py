"""Tasks: the run's own node, its phases and their steps, with items inside them.

The counting methods (`advance`, `skip`, `metric`) are the Rust node's own bound methods,
stored on the instance, so a call costs one C call: no Python frame in between.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Tuple, TypeVar, Union

from . import _milepost
from .errors import RunEndedError
from .events import ItemFailed, ItemRetried, LogLine, PhaseFinished, PhaseStarted, StepFinished, StepStarted
from .outcome import END_STATES, end_state

if TYPE_CHECKING:
    from types import TracebackType

    from .run import Run

T = TypeVar("T")

#: An item's history row: status, start (Unix time), duration, error text, metrics as JSON.
ItemRow = Tuple[str, float, float, Optional[str], Optional[str]]


_current_item: contextvars.ContextVar[Optional[Item]] = contextvars.ContextVar("milepost_item", default=None)


def current_item() -> Optional[Item]:
    """The innermost item being processed in this context (in `thread_map` and `process_map`
    workers, the item their function was called for), to add metrics to it or retry it."""
    return _current_item.get()


class Task:
    """A level of the run that counts items: the run itself, a phase or a step.

    Use it as a context manager: leaving it normally marks it completed, an exception marks it
    failed (and is re-raised), KeyboardInterrupt marks it cancelled. A task can be passed to
    worker processes (it pickles to a handle on the run's shared memory): there it counts into
    the same phase, and the parent's snapshot sums every process.
    """

    #: Index of the node in the run's shared table (in a worker process).
    _shared_index: Optional[int] = None
    #: Handed to this worker process by its parent: the parent decides when it ends.
    _borrowed = False

    def __init__(self, run: Run, node: _milepost.Node, path: Tuple[str, ...], parent: Optional[Task] = None) -> None:
        self._run = run
        self._parent = parent
        self.path = path
        self._bind(node)
        #: The task's key in the history (unambiguous: names escaped, repeated names
        #: numbered; see the README).
        self._history_path: str = node.path if node.path is not None else "/".join(path[1:])

    def _bind(self, node: Any) -> None:
        self._node = node
        # Bound C methods as instance attributes: the hot path skips a Python frame.
        self.advance = node.advance
        self.skip = node.skip
        self.metric = node.metric
        self.set_total = node.set_total
        self.add_total = node.add_total

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        from .workers import task_in_worker

        return (task_in_worker, self._run._handle_for(self))

    # -- structure ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._node.name

    @property
    def kind(self) -> str:
        return self._node.kind

    @property
    def state(self) -> str:
        return self._node.state

    @property
    def run(self) -> Run:
        return self._run

    def step(self, name: str, total: Optional[int] = None, unit: str = "it") -> Task:
        """A child of this task whose counts roll up into it."""
        return self._run._child(self, "step", name, total, unit)

    # -- counts ------------------------------------------------------------------------------
    @property
    def done(self) -> int:
        """Items done by this task itself (a snapshot rolls up its steps too)."""
        return self._node.done

    @property
    def failed(self) -> int:
        return self._node.failed

    @property
    def skipped(self) -> int:
        return self._node.skipped

    @property
    def retried(self) -> int:
        return self._node.retried

    @property
    def total(self) -> Optional[int]:
        return self._node.total

    @property
    def in_flight(self) -> int:
        return self._node.in_flight

    def pending(self, items: Iterable[T], key: Optional[Any] = None) -> Iterator[T]:
        """The items not yet done: in a resumed run, those whose `key(item)` (by default the
        item's name, `str(item)`) was not recorded done or skipped by the run it continues.
        Names are compared as the history keeps them (a name over 256 characters by its
        beginning and a hash of the whole)."""
        resume = self._run._resume
        finished = resume.finished.get(self._history_path, set()) if resume is not None else set()
        name_of = key or _item_key
        for item in items:
            if not finished or _key(name_of(item)) not in finished:
                yield item

    def fail(self, name: Any, error: Union[BaseException, str]) -> None:
        """Counts one failed item and keeps its error text (shown on screen, in events)."""
        text = _error_text(error)
        store = self._run._store
        # The count and the history row in one call: no Ctrl-C can fall between them.
        waiting = self._node.fail(name, text, store.buffer if store is not None else None, time.time())
        if store is not None:
            store.pushed(waiting)
        self._run._emit(ItemFailed, self.path, item=_clip(_milepost.sanitize(name), MAX_NAME), error=text)

    def retry(self, name: Any = None) -> None:
        """Counts one retry of an item (the item itself is counted when it finally ends)."""
        self._node.retry(1)
        if name is not None:
            self._run._emit(ItemRetried, self.path, item=_clip(_milepost.sanitize(name), MAX_NAME))

    def log(self, message: str, level: str = "info", source: Optional[str] = None) -> None:
        """A log line attached to this task, shown by the displays and given to observers."""
        if self._run._finished:
            raise RunEndedError(f"log() after run {self._run.name!r} ended: nothing would show it")
        src = None if source is None else _clip(str(source), MAX_NAME)
        self._run._emit(LogLine, self.path, level=_level(level), message=_clip(str(message), MAX_MESSAGE), source=src)

    # -- items -------------------------------------------------------------------------------
    def item(self, name: Any) -> Item:
        """Context manager for one item: records its duration and worker lane; an exception
        marks it failed with the error text and is re-raised."""
        return Item(self, name)

    def track(self, iterable: Iterable[T], total: Optional[int] = None) -> Iterator[T]:
        """Iterates `iterable`, counting each item done when the loop asks for the next one."""
        if total is None:
            total = _length(iterable)
        if total is not None and self._node.total is None:
            self._node.set_total(total)
        self._run._now()
        self._node.start()
        return _milepost.Tracker(iterable, self._node, total, None)

    # -- lifecycle ---------------------------------------------------------------------------
    def end(self, state: str = "completed") -> None:
        """Ends the task (idempotent; a task ended once keeps its first end state)."""
        if self._borrowed or self._node.state in END_STATES:
            return
        if state not in END_STATES:
            raise ValueError(f"end state must be one of {END_STATES}, got {state!r}")
        self._run._now()
        self._node.end(state)
        event = PhaseFinished if self.kind == "phase" else StepFinished
        self._run._emit(event, self.path, name=self.name, state=state)

    def __enter__(self) -> Task:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.end(end_state(exc_type, exc))

    def _announce(self, total: Optional[int]) -> None:
        self._run._now()
        self._node.start()
        event = PhaseStarted if self.kind == "phase" else StepStarted
        self._run._emit(event, self.path, name=self.name, total=total)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'/'.join(self.path)!r} {self.state} done={self.done}>"


class Item:
    """One item in flight. `skip()` inside the block counts it skipped instead of done."""

    __slots__ = ("_task", "name", "_lane", "_t0", "_skipped", "_token", "_metrics", "row")

    def __init__(self, task: Task, name: Any) -> None:
        self._task = task
        self.name = name
        self._skipped = False
        self._metrics: Optional[dict[str, float]] = None
        #: The item's history row once it ended, when its run keeps rows (see `ItemRow`).
        self.row: Optional[ItemRow] = None

    @property
    def task(self) -> Task:
        return self._task

    def skip(self) -> None:
        self._skipped = True

    def retry(self) -> None:
        """Counts a retry of this item (call it before trying again inside the block)."""
        self._task.retry(self.name)

    def metric(self, name: str, value: Union[int, float]) -> None:
        """Adds to a metric of the item's task (e.g. the tokens this item used); the history
        keeps it with the item too."""
        self._task._node.metric(name, value)
        if self._task._run._keeps_item_rows:
            if self._metrics is None:
                self._metrics = {}
            self._metrics[name] = self._metrics.get(name, 0) + value

    def __enter__(self) -> Item:
        run = self._task._run
        self._lane = run._current_lane()
        self._t0 = run._now()
        self._task._node.item_started(self.name, self._lane)
        self._token: Optional[contextvars.Token[Optional[Item]]] = _current_item.set(self)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        task = self._task
        if self._token is not None:
            _current_item.reset(self._token)
            self._token = None
        duration = task._run._now() - self._t0
        if exc_type is None:
            self._end("skipped" if self._skipped else "done", duration, None)
        elif end_state(exc_type, exc) != "failed":
            # Ctrl-C, a cancel, sys.exit(0): the item was interrupted, not failed.
            self._end("cancelled", duration, None)
        else:
            text = _error_text(exc if exc is not None else exc_type())
            self._end("failed", duration, text)
            task._run._emit(ItemFailed, task.path, item=_clip(_milepost.sanitize(self.name), MAX_NAME), error=text)

    def _end(self, status: str, duration: float, error: Optional[str]) -> None:
        """Counts the item and, where the run keeps rows, queues its history row in the same
        native call (no Ctrl-C can fall between the count and the row)."""
        run = self._task._run
        keeps = run._keeps_item_rows and status != "cancelled"
        metrics = json.dumps(self._metrics) if keeps and self._metrics else None
        started = run._wall_origin + self._t0
        store = run._store
        waiting = self._task._node.item_finished(self.name, status, duration, error, self._lane,
                                                 store.buffer if store is not None and keeps else None,
                                                 started, metrics)
        if keeps:
            self.row = (status, started, duration, error, metrics)
            if store is not None:
                store.pushed(waiting)


#: Text kept in events, as the core keeps it in snapshots (the core's limits, read from it):
#: events are queued, and a queue of 10,000 events must not hold megabyte-long messages.
MAX_NAME: int = _milepost.MAX_NAME_CHARS
MAX_MESSAGE: int = _milepost.MAX_ERROR_CHARS


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _item_key(item: Any) -> str:
    return os.fspath(item) if hasattr(item, "__fspath__") else str(item)


def _key(name: Any) -> str:
    """The history key of an item name, converted by the native layer exactly as the name of
    a stored row was (undecodable characters replaced alike)."""
    return _milepost.item_key(name if isinstance(name, str) or hasattr(name, "__fspath__") else str(name))


def _text(value: Any) -> str:
    """An item's name as text: a path's `fspath` (bytes decoded), anything else `str()`. Lone
    surrogates (undecodable file names) are left for the native layer, which replaces them as
    it does for every name it stores, so that a key and its stored row compare equal."""
    if type(value) is str:
        return value
    if hasattr(value, "__fspath__"):
        value = os.fspath(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _error_text(error: Union[BaseException, str]) -> str:
    if isinstance(error, BaseException):
        msg = str(error)
        text = f"{type(error).__name__}: {msg}" if msg else type(error).__name__
    else:
        text = str(error)
    return _clip(text, MAX_MESSAGE)


def _level(level: str) -> str:
    lv = str(level).lower()
    if lv not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError(f"log level must be debug, info, warning, error or critical; got {level!r}")
    return lv


def _length(iterable: Iterable[Any]) -> Optional[int]:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except (TypeError, AttributeError):
        return None

