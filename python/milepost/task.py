"""Tasks: the run's own node, its phases and their steps, with items inside them.

The counting methods (`advance`, `skip`, `set_total`, `add_total`) are methods of the task's
native base class (`_milepost.TaskBase`), so `task.advance()` costs one C call found on the
type: no Python frame, no bound method made. Everything else a task asks of its run goes
through its `RunContext` (see `context.py`): a task never knows which process, or which kind
of run, it counts in.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union, cast

from . import _milepost
from .agent import Details
from .budget import Budget, Budgets, check_on_budget, counting, current_tickets, held, spend
from .context import ItemRow, RunContext
from .errors import Cancelled, InvalidValueError, RunEndedError
from .events import (
    ItemDetails,
    ItemFailed,
    ItemRetried,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    StepFinished,
    StepStarted,
)
from .outcome import END_STATES, end_state
from .usage import record, usage_of

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Item", "Task", "current_item"]

T = TypeVar("T")
#: A task's native node: the run's own, or (the same class) a worker's slot of the shared memory.
AnyNode = _milepost.Node

_current_item: contextvars.ContextVar[Optional[Item]] = contextvars.ContextVar("milepost_item", default=None)

#: Text kept in events, as the core keeps it in snapshots (the core's limits, read from it):
#: events are queued, and a queue of 10,000 events must not hold megabyte-long messages.
MAX_NAME: int = _milepost.MAX_NAME_CHARS
MAX_MESSAGE: int = _milepost.MAX_ERROR_CHARS
LEVELS = ("debug", "info", "warning", "error", "critical")


#: What an item holds (`Item._live`): its output streamed (`Item._sink` exists only then), a
#: skip asked, its details reported (`Item._details` exists only then), whether it ended, a
#: cost recorded (`Item._cost` exists only then), reserved under a budget (`_tickets` exists
#: only then) and metrics kept for its history row (`_metrics` exists only then). The native
#: base reads them (`rust/py/item.rs` has the same values): an item holding any of STREAMED,
#: REPORTED, COSTED or METRICS ends through `Item._exit_slow`.
STREAMED, SKIP_ASKED, REPORTED, ENDED, COSTED, BUDGETED, METRICS = 1, 2, 4, 8, 16, 32, 64
#: What must be settled when the item ends (one test for a plain item, which holds none).
SETTLE = STREAMED | REPORTED | COSTED

#: Whether a metric is money (the core's one rule), asked once a name.
_is_money = functools.lru_cache(maxsize=256)(_milepost.is_money)


def current_item() -> Optional[Item]:
    """The innermost item being processed in this context (in `thread_map` and `process_map`
    workers, the item their function was called for; in `async_map`, per asyncio task), to add
    metrics to it or retry it. Items entered outside an event loop are kept per thread, those
    entered under one in `_current_item` (see `rust/py/item.rs`)."""
    return cast(Optional[Item], _milepost.current_item())


class AsyncWith:
    """`async with` does what `with` does, for a run, a phase and an item (nothing in them
    awaits; an asyncio task runs in a context of its own, so an item entered there is current
    in that task only)."""

    __slots__ = ()

    async def __aenter__(self) -> Any:
        return self.__enter__()  # type: ignore[attr-defined]

    async def __aexit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.__exit__(exc_type, exc, tb)  # type: ignore[attr-defined]


#: Held while a task is halted and while a child joins its parent (both rare).
_HALTING = threading.Lock()


class Task(_milepost.TaskBase, AsyncWith):
    """A level of the run that counts items: the run itself, a phase or a step.

    Use it as a context manager: leaving it normally marks it completed, an exception marks it
    failed (and is re-raised), KeyboardInterrupt marks it cancelled. A task can be passed to
    worker processes (it pickles to a handle on the run's shared memory): there it counts into
    the same phase, and the parent's snapshot sums every process.

    `context` is the run as the task sees it; `begin`, `reopen` and `record` are the context's
    and the pools' side of the task, not for jobs to call.
    """

    # Slots, not an instance dict: CPython 3.13 specializes `task.advance` (an attribute load
    # straight to the native method) only for an object whose dict was never made. `__dict__`
    # stays for attributes a job adds (that task then takes the generic lookup).
    __slots__ = (
        "context",
        "parent",
        "path",
        "_borrowed",
        "budgets",
        "halted",
        "children",
        "_node",
        "metric",
        "__dict__",
        "__weakref__",
    )

    def __init__(
        self,
        context: RunContext,
        node: AnyNode,
        path: Tuple[str, ...],
        parent: Optional[Task] = None,
        borrowed: bool = False,
    ) -> None:
        self.context = context
        self.parent = parent
        self.path = path
        #: Handed to this worker process by its parent: the parent decides when it ends.
        self._borrowed = borrowed
        #: The budgets this task's spend counts against: its own (`limit`), then those above.
        self.budgets: Budgets = (
            parent.budgets if parent is not None else (context.budget,) if context.budget is not None else ()
        )
        #: Why this task hands out no more items (`phase 'gen' was stopped (budget: ...)`),
        #: once a budget of it or above it halted it.
        self.halted: Optional[str] = None
        self.children: List[Task] = []
        if parent is not None:
            with _HALTING:  # a child made while its parent is halted is halted too
                self.halted = parent.halted
                parent.children.append(self)
        self._bind(node)

    def _bind(self, node: AnyNode) -> None:
        self._node = node
        # The native counting methods count into it from now on; its items are handled
        # natively unless budgets reserve them (an item takes its reservation in Python).
        self._bind_node(node, None if self.budgets else self.context.item_path())
        # `metric` is the node's bound method (one C call) unless budgets watch the spend.
        self.metric = node.metric if not self.budgets else counting(self.budgets, node.metric)

    def hand_over(self, context: RunContext, node: AnyNode) -> None:
        """From now on the task counts into `node` through `context` (a child made by fork
        hands the tasks it inherited over to its slot of the run's shared memory); the parent
        decides when it ends."""
        self.context = context
        self._borrowed = True
        self.budgets = ()  # the parent keeps the budgets: a worker's spend reaches them there
        self._bind(node)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        # A small handle on the run's shared memory, which a worker process counts through.
        return self.context.handle(self)

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
    def run(self) -> Any:
        """The run this task belongs to (in a worker process, the worker's view of it)."""
        return self.context.run

    @property
    def key(self) -> str:
        """The task's key in the history: unambiguous (names escaped, repeated names
        numbered; see the README), fixed when the task was made."""
        return self._node.path or "/".join(self.path[1:])

    @property
    def node(self) -> AnyNode:
        """The native node this task counts into (its methods are the task's hot path)."""
        return self._node

    @property
    def shared_index(self) -> Optional[int]:
        """The task's index in the run's shared memory, once the run is shared."""
        return self._node.shared_index

    def step(
        self,
        name: str,
        total: Optional[int] = None,
        unit: str = "it",
        budget: Optional[Dict[str, float]] = None,
        on_budget: str = "finish",
    ) -> Task:
        """A child of this task whose counts roll up into it (`budget`, `on_budget`: see
        `child`)."""
        return self.child("step", name, total, unit, budget, on_budget)

    def child(
        self,
        kind: str,
        name: str,
        total: Optional[int] = None,
        unit: str = "it",
        budget: Optional[Dict[str, float]] = None,
        on_budget: str = "finish",
    ) -> Task:
        """A phase or a step of this task (`run.phase`, `task.step`), with a budget of its own
        if given: the spend of its subtree counts against it beside those above; spent, it
        halts the new task (see `halt`). The budget is checked before anything is made."""
        check_on_budget(on_budget)
        limits = Budget(budget, on_budget) if budget is not None else None
        task = self.context.child(self, kind, name, total, unit)
        if limits is not None:
            task.budgets = (limits, *task.budgets)
            limits.bind(task)
            task._bind(task.node)  # noqa: SLF001 - a Task binding another Task's methods
        return task

    # -- stopping ----------------------------------------------------------------------------
    def halt(self, reason: str) -> None:
        """Stops this task and those below it handing out items (its budget was spent): their
        pools and loops raise `Cancelled` naming `reason`; items in flight finish; the run
        goes on if the job catches it."""
        said = f"{self.kind} {self.name!r} was stopped ({reason})"  # the same words below it
        with _HALTING:
            if self.halted is not None:
                return
            stack = [self]
            while stack:
                task = stack.pop()
                task.halted = task.halted or said
                stack.extend(task.children)
        if not self.context.finished:
            self.log(f"{self.kind} {self.name!r} stopped: {reason}", level="warning", source="milepost")

    @property
    def stopped(self) -> bool:
        """This task hands out no more items: the run was cancelled, or it was halted."""
        return self.halted is not None or self.context.cancelled

    def stopped_error(self, what: str) -> Cancelled:
        """What a pool or a loop of this task raises once it `stopped` (`what`: what happened
        to the items)."""
        if self.halted is not None and not self.context.cancelled:
            return Cancelled(f"{self.halted}: {what}")
        return Cancelled.run(self.context.cancel_reason, what)

    def rename(self, name: str) -> None:
        """Renames the task on every display (tqdm's `set_description`); its history key
        stays the one it was made with."""
        self._node.rename(name)

    # -- counts ------------------------------------------------------------------------------
    @property
    def done(self) -> int:
        """Items done by this task itself, in this process and in its pools' worker processes
        (a snapshot rolls up its steps too)."""
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
        Once the run is cancelled it hands out no more and raises `milepost.Cancelled`; under
        a run's budget each item is reserved while the loop's body runs (see `budget.Budget`).
        Names are compared as the history keeps them (a name over 256 characters by its
        beginning and a hash of the whole)."""
        finished = self.context.finished_keys(self.key)
        name_of = key or _item_key
        budgets = self.budgets

        def refused() -> Cancelled:
            return self.stopped_error("the items left were not handed out")

        for item in items:
            if self.stopped:  # a cancel hands out no more items, as track() and the pools do
                raise refused()
            if not finished or _key(name_of(item)) not in finished:
                if not budgets:
                    yield item
                else:  # reserved while the loop's body runs (see `budget.Budget`)
                    yield from held(budgets, item, refused)

    def fail(self, name: Any, error: Union[BaseException, str]) -> None:
        """Counts one failed item and keeps its error text (shown on screen, in events)."""
        text = _error_text(error)
        rows = self.context.rows
        # The count and the history row in one call: no Ctrl-C can fall between them.
        waiting = self._node.fail(name, text, rows.buffer if rows is not None else None, time.time())
        if rows is not None:
            rows.pushed(waiting)
        self.context.emit(ItemFailed, self.path, item=_clip(_milepost.sanitize(name), MAX_NAME), error=text)

    def retry(self, name: Any = None) -> None:
        """Counts one retry of an item (the item itself is counted when it finally ends)."""
        self._node.retry(1)
        if name is not None:
            self.context.emit(ItemRetried, self.path, item=_clip(_milepost.sanitize(name), MAX_NAME))

    def log(self, message: str, level: str = "info", source: Optional[str] = None) -> None:
        """A log line attached to this task, shown by the displays and given to observers."""
        if self.context.finished:
            raise RunEndedError(f"log() after run {self.context.name!r} ended: nothing would show it")
        src = None if source is None else _clip(str(source), MAX_NAME)
        self.context.emit(LogLine, self.path, level=_level(level), message=_clip(str(message), MAX_MESSAGE), source=src)

    def usage(
        self,
        model: str,
        provider: Optional[str] = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Optional[float]:
        """Records an LLM call's tokens and cost on this task (not tied to an item; see
        `Item.usage`). Returns the cost in USD, or None when no price is known."""
        counts = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
        return record(self.metric, self, model, provider, counts)

    def usage_from(self, response: Any, model: Optional[str] = None, provider: Optional[str] = None) -> Optional[float]:
        """`usage()` with the tokens (and model, unless given) of an OpenAI or Anthropic
        response (see `milepost.usage_of`)."""
        return _usage_from(self.usage, response, model, provider)

    # -- items -------------------------------------------------------------------------------
    # `item(name)` is the native base's (`TaskBase.item`): it makes an `Item` with no Python
    # frame.
    if TYPE_CHECKING:

        def item(self, name: Any) -> Item:
            """Context manager for one item: records its duration and worker lane; an exception
            marks it failed with the error text and is re-raised."""

    def record(self, name: Any, row: ItemRow, lane: str) -> None:
        """An item that ran elsewhere (in a pool's worker process) and was counted there: its
        history row, and its place in the run's recent list (a failure is there already)."""
        rows = self.context.rows
        if rows is not None:
            rows.item(self.key, _text(name), *row)
        status, started_at, duration = row[0], row[1], row[2]
        if status != "failed":
            at = started_at + (duration or 0.0) - self.context.wall(0.0)
            self._node.record_item(name, status, duration, at, lane)

    def track(self, iterable: Iterable[T], total: Optional[int] = None) -> Iterator[T]:
        """Iterates `iterable`, counting each item done when the loop asks for the next one."""
        if total is None:
            total = length_of(iterable)
        if total is not None and self._node.total is None:
            self._node.set_total(total)
        self.context.now()
        self._node.start()
        return _milepost.Tracker(iterable, self._node, total, None)

    def tracker(self, iterable: Iterable[T], total: Optional[int], on_end: Any) -> Iterator[T]:
        """The native iterator of a `track()` loop over this task, ending it through `on_end`
        (under a budget, each item is reserved while the loop's body runs: see `pending`)."""
        if self.budgets:
            iterable = self._reserving(iterable)
        return _milepost.Tracker(iterable, self._node, total, on_end)

    def _reserving(self, iterable: Iterable[T]) -> Iterator[T]:
        def refused() -> Cancelled:
            return self.stopped_error("the items left were not handed out")

        for item in iterable:
            if self.stopped:
                raise refused()
            yield from held(self.budgets, item, refused)

    # -- lifecycle ---------------------------------------------------------------------------
    def end(self, state: str = "completed") -> None:
        """Ends the task (idempotent; a task ended once keeps its first end state)."""
        if self._borrowed or self._node.state in END_STATES:
            return
        if state not in END_STATES:
            raise InvalidValueError(f"end state must be one of {END_STATES}, got {state!r}")
        self.context.now()
        self._node.end(state)
        event = PhaseFinished if self.kind == "phase" else StepFinished
        self.context.emit(event, self.path, name=self.name, state=state)

    def __enter__(self) -> Task:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.end(end_state(exc_type, exc))

    def begin(self, total: Optional[int]) -> None:
        """The task starts (its context made it): running, and its start event."""
        self.context.now()
        self._node.start()
        event = PhaseStarted if self.kind == "phase" else StepStarted
        self.context.emit(event, self.path, name=self.name, total=total)

    def reopen(self, total: Optional[int]) -> None:
        """A loop entered again goes on in this ended task, in a new pass (what displays show):
        its counts go on and its total grows by `total`."""
        self._node.reopen()
        if total is not None:
            self.add_total(total)
        self.begin(total)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'/'.join(self.path)!r} {self.state} done={self.done}>"


class Item(_milepost.ItemBase, AsyncWith):
    """One item in flight. `skip()` inside the block counts it skipped instead of done.

    Made by `task.item(name)` (natively: no `__init__` runs). The native base keeps the name,
    the start, the lane, the context token, `_live` and the history row (`row`), and enters
    and ends a plain item itself; this class is what an item holds beyond its counts
    (streams, reports, costs, metrics, a budget's reservation) and the items the base leaves
    to Python (`_enter`, `_exit_slow`: see `rust/py/item.rs`).
    """

    __slots__ = ("_metrics", "_details", "_cost", "_sink", "_tickets")

    if TYPE_CHECKING:  # the native base's, typed for this class

        def __enter__(self) -> Item: ...

    @property
    def task(self) -> Task:
        return cast(Task, self._task)

    @property
    def _node(self) -> AnyNode:
        return self.task._node  # noqa: SLF001 - the item's own task

    @property
    def _context(self) -> RunContext:
        return self.task.context

    def retry(self) -> None:
        """Counts a retry of this item (call it before trying again inside the block)."""
        self.task.retry(self.name)

    def stream(self, text: str) -> None:
        """Adds `text` to the item's streamed output (an LLM's tokens as they come): the end
        of it (the last 400 characters, sanitized) shows on its worker lane's line, or for an
        item without a lane on its task's, in the native display, the monitor and the
        dashboard, until the item ends. Cheap enough to call per token; nothing is stored in
        the history, and in a worker process nothing is shown (see the README)."""
        if self._live & STREAMED:
            self._sink(text)
        else:
            self._open_stream(text)

    def _open_stream(self, text: str) -> None:
        """The first `stream()`: where the text goes, the item's lane or, without one, its
        node's one tail (which this item takes over)."""
        if self._live & ENDED:
            raise InvalidValueError(f"stream() on item {_text(self.name)!r} after it ended: stream inside its block")
        try:
            lane = self._lane
        except AttributeError:  # not entered yet: `__enter__` binds the lane
            raise InvalidValueError(
                f"stream() on item {_text(self.name)!r} before it started: stream inside its block"
            ) from None
        if lane is not None:
            self._sink = lane.stream
        else:
            self._node.stream_start(self.name)
            self._sink = self._node.stream
        self._sink(text)  # first: a text of the wrong type is refused before the item streams
        self._live |= STREAMED

    def progress(self, n: int, of: int) -> None:
        """The item's own progress: `n` iterations (or steps) of at most `of`. The monitor shows
        it on the item's line; the history keeps the last one with the item."""
        self._report("progress").set_progress(n, of)
        self._publish()

    def check(self, name: str, ok: bool) -> None:
        """A named criterion, verified (`ok`) or not; checking a name again replaces its verdict."""
        self._report("check").check(name, ok)
        self._publish()

    def artifact(self, path: Union[str, "os.PathLike[str]"], kind: str = "created") -> None:
        """A file the item `created` or `modified` (kept in the history with the item)."""
        self._report("artifact").artifact(path, kind)
        self._publish()

    def _report(self, what: str) -> Details:
        if self._live & ENDED:
            raise InvalidValueError(f"{what}() on item {_text(self.name)!r} after it ended: report it inside its block")
        if self._context.finished:
            raise RunEndedError(f"{what}() after run {self._context.name!r} ended: nothing would keep it")
        if not self._live & REPORTED:
            self._details: Details = Details()
            self._live |= REPORTED
        return self._details

    def _publish(self) -> None:
        steer = self._context.steer
        if steer is not None and self._live & REPORTED:
            steer.report(_text(self.name), self._details.live())

    @property
    def skip_requested(self) -> bool:
        """Someone asked to skip this item (`milepost skip`, the monitor): a job that can stop
        it half-way checks this and leaves the block after `skip()`."""
        if self._live & SKIP_ASKED:
            return True
        steer = self._context.steer
        if steer is None or not steer.take_skip(_text(self.name)):
            return False
        self._live |= SKIP_ASKED
        return True

    def metric(self, name: str, value: Union[int, float]) -> None:
        """Adds to a metric of the item's task (e.g. the tokens this item used); the history
        keeps it with the item too. Thread-safe: called from another thread (a sync SDK through
        `run_in_executor`), the spend is still this item's for its budget."""
        task = self.task
        if self._live & BUDGETED:  # the item's own reservation, whatever thread calls this
            self._node.metric(name, value)  # first: a value the node refuses is not spent
            spend(task.budgets, name, value, self._tickets)
        else:
            task.metric(name, value)  # the task's: a run's budget counts it
        if self._context.keeps_rows:
            if not self._live & METRICS:
                self._metrics: Dict[str, float] = {}
                self._live |= METRICS
            self._metrics[name] = self._metrics.get(name, 0) + value
        if _is_money(name):  # the item's whole cost feeds the cost per item at its end
            self._cost: float = (self._cost if self._live & COSTED else 0.0) + value
            self._live |= COSTED

    def usage(
        self,
        model: str,
        provider: Optional[str] = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Optional[float]:
        """Records an LLM call's tokens and cost as the item's metrics: `input_tokens` (all the
        input, cached included), `output_tokens`, `tokens`, `cache_read_tokens` and
        `cache_write_tokens` (parts of the input, priced apart) and `cost_usd`, priced by the
        user's prices, then genai-prices. Returns the cost in USD, or None for a model no table
        knows (its tokens are still recorded, and the run warns once)."""
        if self._live & ENDED:
            raise InvalidValueError(f"usage() on item {_text(self.name)!r} after it ended: record it inside its block")
        counts = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
        return record(self.metric, self.task, model, provider, counts)

    def usage_from(self, response: Any, model: Optional[str] = None, provider: Optional[str] = None) -> Optional[float]:
        """`usage()` with the tokens (and model, unless given) of an OpenAI or Anthropic
        response or final stream chunk (see `milepost.usage_of`)."""
        return _usage_from(self.usage, response, model, provider)

    def _enter(self) -> Item:
        """`__enter__` of an item of a task without a native item path (see `Task._bind`)."""
        context = self._context
        self._lane = context.lane()
        self._t0 = context.now()
        self._node.item_started(self.name, self._lane)
        if self.task.budgets:  # the reservation a pool or loop made for it, in this context
            self._tickets = current_tickets()
            self._live |= BUDGETED
        self._set_current()
        return self

    def _exit_slow(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        """`__exit__` of an item the native base does not end itself: the block raised, or the
        item holds more than its counts, or it was entered by `_enter`."""
        self._leave()  # no longer current
        if self._live & SETTLE:
            self._settle()
        duration = self._now() - self._t0
        if exc_type is None:
            self._end("skipped" if self._skipped else "done", duration, None)
        elif end_state(exc_type, exc) != "failed":
            # Ctrl-C, a cancel, sys.exit(0): the item was interrupted, not failed.
            self._end("cancelled", duration, None)
        else:
            text = _error_text(exc if exc is not None else exc_type())
            self._end("failed", duration, text)
            item = _clip(_milepost.sanitize(self.name), MAX_NAME)
            self._context.emit(ItemFailed, self.task.path, item=item, error=text)

    def _settle(self) -> None:
        """What the item holds beyond its counts, at its end: its cost goes to the cost per
        item (one native call, for items that recorded one), its node's tail goes (a lane's
        goes with the item natively), and the live channel forgets its reports."""
        live = self._live
        if live & COSTED:
            self._node.item_cost(self._cost)
        if live & STREAMED:
            if self._lane is None:
                self._node.stream_end(self.name)
            self._sink = self._late_stream
        if live & REPORTED:
            steer = self._context.steer
            if steer is not None:
                steer.end_report(_text(self.name))

    def _late_stream(self, text: str) -> None:
        raise InvalidValueError(f"stream() on item {_text(self.name)!r} after it ended: stream inside its block")

    def _end(self, status: str, duration: float, error: Optional[str]) -> None:
        """Counts the item and, where the run keeps rows, queues its history row in the same
        native call (no Ctrl-C can fall between the count and the row)."""
        context = self._context
        self._live |= ENDED
        keeps = context.keeps_rows and status != "cancelled"
        metrics = json.dumps(self._metrics) if keeps and self._live & METRICS and self._metrics else None
        started = self._wall(self._t0)
        rows = context.rows if keeps else None
        waiting = self._node.item_finished(
            self.name, status, duration, error, self._lane, rows.buffer if rows is not None else None, started, metrics
        )
        if keeps:
            self.row = (status, started, duration, error, metrics)
            if rows is not None:
                rows.pushed(waiting)
        if self._live & REPORTED:
            item = _clip(_milepost.sanitize(self.name), MAX_NAME)
            context.emit(ItemDetails, self.task.path, item=item, status=status, **self._details.fields())


#: `task.item(name)` makes this class's items natively.
_milepost.ItemBase._use(Item, _current_item)  # noqa: SLF001 - the native base's own registration


def _usage_from(usage: Any, response: Any, model: Optional[str], provider: Optional[str]) -> Optional[float]:
    got = usage_of(response)
    counts = (got.input_tokens, got.output_tokens, got.cache_read_tokens, got.cache_write_tokens)
    return usage(model or got.model, provider, *counts)


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
    if lv not in LEVELS:
        raise InvalidValueError(f"log level must be one of {', '.join(LEVELS)}; got {level!r}")
    return lv


def length_of(iterable: Iterable[Any]) -> Optional[int]:
    """`len(iterable)` when it has one."""
    try:
        return len(iterable)  # type: ignore[arg-type]
    except (TypeError, AttributeError):
        return None
