"""`track()`: tqdm's one-line API over milepost's counters."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, TextIO, TypeVar

from . import _milepost
from .run import Run, current_run
from .task import Task, _length

__all__ = ["track"]

T = TypeVar("T")

#: tqdm keywords that are accepted so that switching is a one-line change, and ignored because
#: milepost decides them itself (refresh rate, width, smoothing, bar layout).
TQDM_IGNORED = frozenset({
    "ncols", "nrows", "mininterval", "maxinterval", "miniters", "ascii", "smoothing", "dynamic_ncols",
    "bar_format", "position", "postfix", "unit_scale", "unit_divisor", "write_bytes", "lock_args",
    "colour", "delay", "gui", "leave_on_exit",
})


def track(
    iterable: Iterable[T],
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
) -> Iterator[T]:
    """Iterates `iterable` and shows its progress, as `tqdm(iterable)` does.

    Inside a `with Run(...)` block the loop becomes a phase of that run; otherwise it gets a
    run of its own, which ends when the loop does. An item counts as done when the loop asks
    for the next one (as in tqdm), so an item whose body raised is not counted.

    Args:
        iterable: What to iterate.
        total: Number of items; taken from `len(iterable)` when it has one.
        description: The label (`desc` is tqdm's name for it).
        unit: What an item is called ("file", "row").
        disable: Return the plain iterator, tracking nothing.
        leave: Keep the final line on screen.
        initial: Items already done before this loop (counted done at once).
        display: As for `Run`.
        file: Stream for plain, JSON or rich output (tqdm's `file`).
        run: The run to add this loop to (default: the current run, if any).
    """
    unknown = set(tqdm_kwargs) - TQDM_IGNORED
    if unknown:
        raise TypeError(f"track() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if disable:
        return iter(iterable)
    label = description or desc
    if total is None:
        total = _length(iterable)
    parent = run or current_run()
    if parent is not None:
        task = parent.phase(label or "track", total=total, unit=unit)
        task.advance(initial)
        return _milepost.Tracker(iterable, task._node, total, _ender(task))
    own = Run(label or "track", display=display, leave=leave, output=file)
    own._node.set_total(total)
    own.start()
    own.advance(initial)
    return _milepost.Tracker(iterable, own._node, total, _ender(own))


def _ender(task: Task) -> Any:
    """The tracker's end callback: exhausted → completed, the iterable raised → failed,
    left early (`break`, an exception in the loop body) → cancelled."""

    def end(how: str) -> None:
        task.end({"completed": "completed", "failed": "failed"}.get(how, "cancelled"))

    return end
