"""`track()`: tqdm's one-line API over milepost's counters."""

from __future__ import annotations

import math
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Dict,
    Iterable,
    Iterator,
    Optional,
    TextIO,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from . import _milepost, context
from .aio import AsyncTracker
from .errors import InvalidValueError
from .outcome import end_state
from .output import print as _print
from .run import Run
from .task import Task, length_of

__all__ = ["track", "Bar"]

T = TypeVar("T")

#: tqdm keywords milepost honours as tqdm does (counts and rates shown as `12.3MB/s`).
TQDM_UNITS = frozenset({"unit_scale", "unit_divisor"})

#: tqdm keywords that are accepted so that switching is a one-line change, and ignored because
#: milepost decides them itself (refresh rate, width, smoothing, bar layout).
TQDM_IGNORED = frozenset(
    {
        "ncols",
        "nrows",
        "mininterval",
        "maxinterval",
        "miniters",
        "ascii",
        "smoothing",
        "dynamic_ncols",
        "bar_format",
        "position",
        "postfix",
        "write_bytes",
        "lock_args",
        "colour",
        "delay",
        "gui",
        "leave_on_exit",
    }
)


def whole_update(n: Any, carry: float) -> tuple[Any, float]:
    """What `update(n)` counts, and the fraction carried over: tqdm allows floats, milepost
    counts whole items (ten updates of 0.1 count one). A negative `n` is refused (milepost
    never takes a count back); anything else not a number is left for `advance` to name."""
    if n is None:
        return 1, carry
    if isinstance(n, (int, float)) and not isinstance(n, bool) and n < 0:
        raise InvalidValueError(f"update(n) must be >= 0 (milepost never takes a count back), got {n!r}")
    if isinstance(n, float) and not math.isfinite(n):
        raise InvalidValueError(f"update(n) must be a finite number >= 0, got {n!r}")
    if isinstance(n, float):
        carry += n
        whole = math.floor(carry + 1e-9)  # 0.1 ten times is 0.9999999999999999
        return whole, max(0.0, carry - whole)
    return n, carry


class Bar(_milepost.BarBase):
    """What `track(total=N)` returns without an iterable: tqdm's manual bar.

    `update(n)` counts `n` items done (a native method: one C call, as `task.advance()`),
    `set_description(text)` renames the bar, `write(text)` prints above it, `close()` (or
    leaving its `with` block) ends it. `n` and `total` read the counts; assigning `total`
    changes it.
    """

    __slots__ = ("_task", "_own", "_carry", "__dict__", "__weakref__")  # as `Task`'s (why: see there)

    def __init__(self, task: Task, own: Optional[Run]) -> None:
        self._task = task
        self._own = own
        self._carry = 0.0  # what fractional updates added up to below a whole item
        self._bind_node(task.node)

    def _update(self, n: Any) -> None:
        """`update(n)` when the native base's one C call does not count it (see `whole_update`)."""
        n, self._carry = whole_update(n, self._carry)
        if n:
            self._task.advance(n)

    @property
    def n(self) -> int:
        return self._task.done

    @property
    def total(self) -> Optional[int]:
        return self._task.total

    @total.setter
    def total(self, value: Optional[int]) -> None:
        self._task.set_total(value)

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self._task.rename(desc)

    def write(self, text: str) -> None:
        _print(text)

    def close(self, state: str = "completed") -> None:
        if self._own is not None:
            self._own.finish(state)
        else:
            self._task.end(state)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Any, tb: Any) -> None:
        self.close(end_state(exc_type, exc))


@overload
def track(
    iterable: Iterable[T], total: Optional[int] = ..., description: Optional[str] = ..., unit: str = ..., **kwargs: Any
) -> Iterator[T]: ...
@overload
def track(
    iterable: AsyncIterable[T],
    total: Optional[int] = ...,
    description: Optional[str] = ...,
    unit: str = ...,
    **kwargs: Any,
) -> AsyncIterator[T]: ...
@overload
def track(
    iterable: None = ..., total: Optional[int] = ..., description: Optional[str] = ..., unit: str = ..., **kwargs: Any
) -> Bar: ...


def track(  # noqa: PLR0913 - tqdm's signature
    iterable: Union[Iterable[T], AsyncIterable[T], None] = None,
    total: Optional[int] = None,
    description: Optional[str] = None,
    unit: str = "it",
    *,
    desc: Optional[str] = None,
    disable: bool = False,
    leave: bool = True,
    initial: int = 0,
    display: Optional[str] = "auto",
    file: Optional[TextIO] = None,
    run: Optional[Run] = None,
    **tqdm_kwargs: Any,
) -> Union[Iterator[T], AsyncIterator[T], Bar, DisabledBar]:
    """Iterates `iterable` and shows its progress, as `tqdm(iterable)` does.

    Inside a `with Run(...)` block (or another tracked loop) the loop becomes a phase of that
    run; a loop entered again under the same description goes on in the same phase, in a new
    pass that its displays show (`40/100 · pass 3`, as tqdm shows an inner bar per outer item;
    the phase's counts and total go on over every pass), so loops inside loops stay one line
    each. Alone, it gets a run of its own, which
    ends when the loop does. An item counts as done when the loop asks for the next one (as in
    tqdm), so an item whose body raised is not counted. Without an iterable it returns a
    manual `Bar` (`update`, `set_description`, `write`, `close`). An async iterable (one with
    `__aiter__` and no `__iter__`) gets an async iterator: `async for x in track(agen,
    total=N)`, counted and ended the same way.

    Args:
        iterable: What to iterate (or None for a manual bar).
        total: Number of items; taken from `len(iterable)` when it has one.
        description: The label (`desc` is tqdm's name for it).
        unit: What an item is called ("file", "row").
        disable: Return the plain iterator, tracking nothing.
        leave: Keep the final line on screen.
        initial: Items already done before this loop (counted done at once).
        display: As for `Run`; used only when the loop gets a run of its own.
        file: Stream for the display (tqdm's `file`): stdout or stderr on a terminal draws
            bars there; any other stream gets plain lines.
        run: The run to add this loop to (default: the current run, if any).
    """
    _check(tqdm_kwargs, initial, description, desc)
    divisor = unit_divisor(tqdm_kwargs)
    source: Optional[AsyncIterator[T]] = None
    if iterable is not None and hasattr(iterable, "__aiter__") and not hasattr(iterable, "__iter__"):
        source = iterable.__aiter__()
    if disable:
        # Nothing at all: no run, no history, no thread (tqdm's disable=True).
        if source is not None:
            return source
        return iter(iterable) if iterable is not None else DisabledBar(total, initial)  # type: ignore[arg-type]
    if (
        iterable is not None
        and source is None
        and not hasattr(iterable, "__iter__")
        and not hasattr(iterable, "__getitem__")
    ):
        # Said before a run or a line is made for it (`track(5)` is a typo for `range(5)`).
        raise TypeError(
            f"track() needs an iterable (or None for a manual bar), got {type(iterable).__name__} {iterable!r:.60}"
        )
    label = description or desc or "track"
    if total is None and iterable is not None:
        total = length_of(iterable)  # type: ignore[arg-type]
    task, own = loop_task(label, total, unit, initial, run, display, leave, file, divisor)
    if iterable is None:
        return Bar(task, own)
    if source is not None:
        return AsyncTracker(source, task, _ender(own or task))
    return task.tracker(iterable, total, _ender(own or task))  # type: ignore[arg-type]


def unit_divisor(tqdm_kwargs: Dict[str, Any]) -> Optional[int]:
    """tqdm's `unit_scale` and `unit_divisor` as the divisor the displays scale counts by
    (None: plain counts)."""
    scale = tqdm_kwargs.get("unit_scale", False)
    divisor = tqdm_kwargs.get("unit_divisor", 1000)
    if divisor not in (1000, 1024) or isinstance(divisor, bool):
        raise InvalidValueError(f"unit_divisor must be 1000 or 1024, got {divisor!r}")
    if scale is None or scale is False or (not isinstance(scale, bool) and scale == 0):
        return None
    if scale is True or (isinstance(scale, (int, float)) and scale == 1):
        return int(divisor)
    # tqdm multiplies its counts by a number here; milepost's counts are items, never scaled.
    raise InvalidValueError(f"unit_scale must be True, False or 1 (counts are not multiplied), got {scale!r}")


def _check(tqdm_kwargs: Dict[str, Any], initial: Any, description: Optional[str], desc: Optional[str]) -> None:
    unknown = set(tqdm_kwargs) - TQDM_IGNORED - TQDM_UNITS
    if unknown:
        raise TypeError(f"track() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if isinstance(initial, bool) or not isinstance(initial, int) or initial < 0:
        raise InvalidValueError(f"initial must be an int >= 0, got {initial!r}")
    if description is not None and desc is not None:
        raise TypeError("track() takes description or desc (its tqdm name), not both")


def loop_task(
    label: str,
    total: Optional[int],
    unit: str,
    initial: int,
    run: Optional[Task],
    display: Optional[str],
    leave: bool,
    file: Optional[TextIO],
    divisor: Optional[int] = None,
) -> Tuple[Task, Optional[Run]]:
    """The phase a loop counts in (a step under a task), in the current run or in a run of
    its own, which it returns too (the loop ends it)."""
    parent: Optional[Task] = run if run is not None else context.current_root()
    own: Optional[Run] = None
    if parent is None:
        # A bare loop keeps no history and samples no resources: it is over before a sample
        # would tell much, and a thread for every short loop would cost more than the loop.
        own = parent = Run(label, display=display, leave=leave, output=file, history=False, resources=False)
    try:
        if own is not None:
            own.open()
        # A loop counts what it iterates now: in a resumed run it starts from nothing.
        kind = "phase" if parent.kind == "run" else "step"
        task = parent.context.child(parent, kind, label, total, unit, reuse=True, restore=False)
        task.advance(initial)
        if divisor is not None:
            task.node.set_unit_divisor(divisor)
        if not leave and own is None:
            task.node.set_leave(False)  # tqdm's leave=False: not drawn once it ended
        if own is not None:
            own.start()  # the first line already shows the loop with its total and unit
    except BaseException:
        if own is not None:
            own.finish("failed")
        raise
    return task, own


class DisabledBar:
    """What `track(total=N, disable=True)` returns: the manual bar's methods, doing nothing
    but keeping `n` and `total` (tqdm's behaviour), leaving no trace."""

    def __init__(self, total: Optional[int], initial: int) -> None:
        self.n = initial
        self.total = total

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str, refresh: bool = True) -> None:
        pass

    def write(self, text: str) -> None:
        _print(text)

    def close(self, state: str = "completed") -> None:
        pass

    def __enter__(self) -> DisabledBar:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Any, tb: Any) -> None:
        pass


def _ender(task: Task) -> Any:
    """The tracker's end callback: exhausted → completed; left with `break` → cancelled (ended
    before its items); the iterable or the loop body raised → the one rule of `end_state`
    (Ctrl-C: cancelled, `sys.exit(0)`: completed, an error: failed)."""

    def end(how: str, exc: Optional[BaseException] = None) -> None:
        if exc is not None:
            task.end(end_state(type(exc), exc))
        else:
            task.end("completed" if how == "completed" else "cancelled")

    return end
