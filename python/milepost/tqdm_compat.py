"""`from milepost import tqdm, trange`: tqdm's class, so that tqdm code runs unchanged on
milepost's counters and displays (`track()` is the function-shaped API; this is the
class-shaped one, with tqdm's methods and meanings).

What differs from `track()`, for tqdm's sake: leaving a loop with `break` ends its bar
`completed` (tqdm leaves the bar where it stopped, it does not say cancelled); `set_postfix`
shows its fields beside the bar's name and keeps the numbers as metrics (each the latest value
given, as tqdm shows it); `tqdm.write`, `tqdm.pandas()`, `tqdm.gather` and `tqdm.as_completed`
(tqdm.asyncio's) are here.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any, Awaitable, Dict, Iterable, Iterator, List, Optional, TextIO

from . import _milepost
from .errors import InvalidValueError
from .outcome import end_state
from .output import print as _print
from .task import Task, length_of
from .track import TQDM_IGNORED, TQDM_UNITS, loop_task, unit_divisor, whole_update

__all__ = ["tqdm", "trange"]


#: The postfix numbers each phase shows, as last set (see `tqdm._gauge`).
_GAUGES: "weakref.WeakKeyDictionary[Task, Dict[str, float]]" = weakref.WeakKeyDictionary()


def _whole_total(total: Any, what: str) -> Optional[int]:
    """A tqdm total as milepost counts it: whole items (tqdm takes floats), and infinity as no
    total (tqdm's "unknown"); anything else is an error naming it."""
    if total is None or (isinstance(total, int) and not isinstance(total, bool) and total >= 0):
        return total
    if isinstance(total, float) and total == math.inf:
        return None
    if isinstance(total, float) and math.isfinite(total) and total >= 0:
        return int(total)
    raise InvalidValueError(f"{what} must be a number >= 0 (or infinity: no total), got {total!r}")


class tqdm(_milepost.BarBase):  # noqa: N801 - tqdm's name, so that `from milepost import tqdm` is the whole change
    """tqdm's progress bar: iterate it, or `update(n)` it by hand; `close()` or `with` ends it.

    `update(n)` of a whole number is the native base's (one C call); anything else (a float, 0,
    a bad value, a disabled bar) goes to `_update`.
    """

    # As `milepost.Task`'s (why: see there).
    __slots__ = (
        "iterable",
        "desc",
        "disable",
        "_postfix",
        "_metrics",
        "_closed",
        "_task",
        "_own",
        "_n",
        "_carry",
        "_total",
        "__dict__",
        "__weakref__",
    )

    def __init__(
        self,
        iterable: Optional[Iterable[Any]] = None,
        desc: Optional[str] = None,
        total: Optional[float] = None,
        leave: Optional[bool] = True,
        file: Optional[TextIO] = None,
        disable: Optional[bool] = False,
        unit: str = "it",
        initial: int = 0,
        postfix: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - TQDM_IGNORED - TQDM_UNITS
        if unknown:
            raise TypeError(f"tqdm() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if total is None and iterable is not None:
            total = length_of(iterable)
        total = _whole_total(total, "total")
        self.iterable = iterable
        self.desc = desc or ""
        self.disable = bool(disable)
        self._postfix: Dict[str, Any] = {}
        self._closed = False
        self._carry = 0.0  # what fractional updates added up to below a whole item
        if self.disable:
            self._task: Optional[Task] = None
            self._own: Any = None
            self._n, self._total = initial, total
            return
        divisor = unit_divisor(kwargs)
        self._task, self._own = loop_task(
            desc or "tqdm", total, unit, initial, None, "auto", bool(leave), file, divisor
        )
        self._bind_node(self._task.node)
        if self._task.name != self._task.path[-1]:
            self._task.rename(self._task.path[-1])  # an inner bar again: last pass's postfix gone
        if postfix:
            if isinstance(postfix, str):
                self.set_postfix_str(postfix)
            else:
                self.set_postfix(postfix)

    # -- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this tqdm has no iterable: update(n) it by hand")
        if self._task is None:
            return iter(self.iterable)
        return self._task.tracker(self.iterable, self.total, self._ended)

    def __len__(self) -> int:
        if self.total is not None:
            return int(self.total)
        return len(self.iterable)  # type: ignore[arg-type]

    def _ended(self, how: str, exc: Optional[BaseException] = None) -> None:
        # Exhausted or left with `break`: completed (tqdm's bar stays where it stopped). An
        # exception: the one rule (Ctrl-C cancelled, an error failed).
        self._finish(end_state(type(exc), exc) if exc is not None else "completed")

    # -- counting --------------------------------------------------------------------------
    # An inner bar entered again, or one `reset()`, is on a new pass of its phase: `n` and
    # `total` are the pass's, as tqdm's are (the phase's counts go on across passes).
    @property
    def n(self) -> int:
        return self._task.node.pass_figures()[1] if self._task is not None else self._n

    @property
    def total(self) -> Optional[int]:
        return self._task.node.pass_figures()[2] if self._task is not None else self._total

    @total.setter
    def total(self, value: Optional[int]) -> None:
        if self._task is None:
            self._total = value
            return
        whole, this_pass = self._task.total, self.total
        before = whole - this_pass if whole is not None and this_pass is not None else 0
        self._task.set_total(None if value is None else before + int(value))

    def _update(self, n: Optional[float]) -> None:
        """`update(n)` when the native base's one C call does not count it: tqdm allows floats,
        and milepost counts whole items and carries the fractions over (ten updates of 0.1
        count one); a disabled bar counts in `_n`."""
        n, self._carry = whole_update(n, self._carry)
        if self._task is None:
            self._n += int(n)
        elif n:
            self._task.advance(n)  # type: ignore[arg-type] # an int here, or a bad value it names

    def reset(self, total: Optional[int] = None) -> None:
        """Starts a new pass of `total` items (the last pass's total when None), as tqdm's
        bar starts again from 0: the phase's counts stay (milepost never loses one) and its
        total grows by the new pass; displays show the pass."""
        size = _whole_total(total, "reset(total)") if total is not None else self.total
        # Checked first, before anything changes: a bad total leaves the bar as it was.
        if self._task is None:
            self._n, self._total = 0, size
            return
        whole = self._task.total
        if size is not None and whole is not None and size > _milepost.MAX_COUNT - whole:
            raise InvalidValueError(
                f"reset(total) would take the phase's total past {_milepost.MAX_COUNT:,} "
                f"(it is {whole:,} over its passes), got {total!r}"
            )
        self._task.node.new_pass()
        if size is not None:
            self._task.add_total(size)
        elif total is not None:  # infinity: a pass of no known total, as tqdm takes it
            self._task.set_total(None)

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass  # drawn by its own thread

    def clear(self, *args: Any, **kwargs: Any) -> None:
        pass

    def unpause(self) -> None:
        pass

    def display(self, *args: Any, **kwargs: Any) -> None:
        pass

    # -- what the bar says -----------------------------------------------------------------
    def set_description(self, desc: Optional[str] = None, refresh: bool = True) -> None:
        self.desc = desc or ""
        self._rename()

    def set_description_str(self, desc: Optional[str] = None, refresh: bool = True) -> None:
        self.set_description(desc, refresh)

    def set_postfix(self, ordered_dict: Optional[Dict[str, Any]] = None, refresh: bool = True, **kwargs: Any) -> None:
        """Fields shown beside the bar's name (`loss=0.231`); numbers are also kept as metrics,
        each the latest value given (milepost's metrics add up: the difference is added)."""
        fields = {**(ordered_dict or {}), **kwargs}
        self._postfix = {str(k): v for k, v in fields.items()}
        for key, value in self._postfix.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self._gauge(key, float(value))
        self._rename()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._postfix = {"": str(s)} if s else {}
        self._rename()

    def _gauge(self, key: str, value: float) -> None:
        if self._task is None:
            return
        # Per phase, not per bar: an inner bar made again for every outer item goes on in the
        # same phase, whose metric must stay the latest value, not the sum of the passes'.
        shown = _GAUGES.setdefault(self._task, {})
        self._task.metric(key, value - shown.get(key, 0.0))
        shown[key] = value

    def _rename(self) -> None:
        if self._task is None:
            return
        fields = ", ".join(f"{k}={_short(v)}" if k else str(v) for k, v in self._postfix.items())
        name = self.desc or "tqdm"
        self._task.rename(f"{name} [{fields}]" if fields else name)

    @property
    def postfix(self) -> str:
        return ", ".join(f"{k}={_short(v)}" if k else str(v) for k, v in self._postfix.items())

    # -- ending ----------------------------------------------------------------------------
    def close(self) -> None:
        self._finish("completed")

    def _finish(self, state: str) -> None:
        if self._closed or self._task is None:
            self._closed = True
            return
        self._closed = True
        if self._own is not None:
            self._own.finish(state)
        else:
            self._task.end(state)

    def __enter__(self) -> tqdm:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Any, tb: Any) -> None:
        self._finish(end_state(exc_type, exc))

    def __repr__(self) -> str:
        return f"<milepost.tqdm {self.desc!r} {self.n}/{self.total}>"

    # -- tqdm's class methods --------------------------------------------------------------
    @classmethod
    def write(cls, s: str, file: Optional[TextIO] = None, end: str = "\n", nolock: bool = False) -> None:
        """Prints above the bars (tqdm.write)."""
        if file is not None and file not in (_stdout(), _stderr()):
            file.write(s + end)
        else:
            _print(s, end=end)

    @classmethod
    def get_lock(cls) -> Any:
        import threading

        return threading.RLock()

    @classmethod
    def set_lock(cls, lock: Any) -> None:
        pass

    @classmethod
    def pandas(cls, **tqdm_kwargs: Any) -> None:
        """Adds `progress_apply` and `progress_map` to pandas (tqdm.pandas())."""
        from .tqdm_pandas import register

        register(cls, tqdm_kwargs)

    @classmethod
    async def gather(cls, *fs: Awaitable[Any], timeout: Optional[float] = None, **tqdm_kwargs: Any) -> List[Any]:
        """`asyncio.gather` with a bar counting what finished (tqdm.asyncio's)."""
        tasks = [asyncio.ensure_future(f) for f in fs]
        with cls(total=len(tasks), **tqdm_kwargs) as bar:
            for done in asyncio.as_completed(tasks, timeout=timeout):
                await done
                bar.update(1)
        return [t.result() for t in tasks]

    @classmethod
    def as_completed(
        cls,
        fs: Iterable[Awaitable[Any]],
        *,
        timeout: Optional[float] = None,
        total: Optional[int] = None,
        **tqdm_kwargs: Any,
    ) -> Iterator[Any]:
        """`asyncio.as_completed` with a bar (tqdm.asyncio's): yields awaitables in the order
        they finish, each counted when the loop asks for the next."""
        futures = list(fs)
        yield from cls(asyncio.as_completed(futures, timeout=timeout), total=total or len(futures), **tqdm_kwargs)


def trange(*args: int, **kwargs: Any) -> tqdm:
    """`tqdm(range(*args), **kwargs)`."""
    return tqdm(range(*args), **kwargs)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _stdout() -> Any:
    import sys

    return sys.stdout


def _stderr() -> Any:
    import sys

    return sys.stderr
