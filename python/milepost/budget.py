"""Budgets: `Run(budget={"cost_usd": 5.0})` (or `run.phase(..., budget=...)`) stops handing out
items before a metric goes over.

The spend is a running sum kept here, fed by every `metric()` call of the task's subtree in
this process (`Task` wraps its node's `metric` with the budgets of it and of the tasks above
it): reading the node's metrics would build a whole snapshot per item, and the sum is the same
number. (Process pools read it from a snapshot instead: see `reserve`'s `seen`.)

Before an item is handed out, a pool or a `pending()` loop reserves it: the item's expected
spend is the mean spend per finished item (0 before any finished), and the item is refused when
spent + expected spend of the items in flight + its own would pass a limit. Reservations are
counted, not stored: the items in flight are each priced at the current mean, so the items
handed out before the first estimate are covered as soon as one exists. The first wave (at most
the pool's concurrency) has no estimate: a budget one item could eat a large part of wants a
smaller concurrency. A refusal of the run's budget cancels the run with the reason "budget:
..."; a phase's stops that phase (`Task.halt`): its pools and loops hand out no more items and
raise `Cancelled`, and the run goes on if the job catches it.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

from . import _milepost
from .errors import Cancelled, InvalidValueError

__all__ = ["Budget", "WARN_AT", "ON_BUDGET", "Budgets", "reserve_all", "release_all", "held", "counting"]

#: The share of a limit at which the run warns (once a metric).
WARN_AT = 0.8


def _limits(budget: Any) -> Dict[str, float]:
    if not isinstance(budget, dict) or not budget:
        raise InvalidValueError(f"budget must be a non-empty dict of metric name to limit, got {budget!r}")
    limits: Dict[str, float] = {}
    for name, limit in budget.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidValueError(f"a budget's metric name must be a non-empty string, got {name!r}")
        ok = isinstance(limit, (int, float)) and not isinstance(limit, bool)
        if not ok or not math.isfinite(limit) or limit <= 0:
            raise InvalidValueError(f"budget[{name!r}] must be a positive finite number, got {limit!r}")
        limits[name] = float(limit)
    return limits


#: What a spent budget does to the items in flight: let them finish, or cancel them (async
#: pools; a thread or a worker process cannot be interrupted, so theirs finish either way).
ON_BUDGET = ("finish", "cancel")


class Budget:
    """A task's limits (the run's, or a phase's) and what was spent against them (thread-safe)."""

    def __init__(self, budget: Any, on_budget: str = "finish") -> None:
        if on_budget not in ON_BUDGET:
            raise InvalidValueError(f"on_budget must be one of {', '.join(ON_BUDGET)}, got {on_budget!r}")
        self.limits = _limits(budget)
        self.cancels_in_flight = on_budget == "cancel"
        self.spent: Dict[str, float] = dict.fromkeys(self.limits, 0.0)
        self._warned: set[str] = set()
        self._in_flight = 0
        self._finished = 0
        self._refused_by: Optional[str] = None
        self._lock = threading.Lock()
        self._task: Callable[[], Any] = lambda: None
        #: The task's history key ("" for the run): where a process pool finds its spend.
        self.key = ""
        self._label = ""

    def bind(self, task: Any) -> None:
        """The task this budget stops and warns on (held weakly: the task holds the budget):
        a run is cancelled, a phase or a step halted."""
        self._task = weakref.ref(task)
        self.key = "" if task.kind == "run" else task.key
        self._label = "" if task.kind == "run" else f"{task.kind} {task.name!r}: "

    def add(self, name: str, value: Union[int, float]) -> None:
        with self._lock:
            self.spent[name] += value
        self._warn(name)

    def observe(self, totals: Dict[str, Any]) -> None:
        """The run's totals of its metrics (its snapshot's root, which counts what worker
        processes recorded in shared memory, out of reach of `add`): the spend is at least
        that."""
        for name in self.limits:
            value = totals.get(name)
            if isinstance(value, (int, float)):
                with self._lock:
                    self.spent[name] = max(self.spent[name], float(value))
                self._warn(name)

    def _warn(self, name: str) -> None:
        with self._lock:
            warn = name not in self._warned and self.spent[name] >= WARN_AT * self.limits[name]
            if warn:
                self._warned.add(name)
        if warn:
            self._log(f"budget warning: {self._label}{self._state(name)} spent ({WARN_AT:.0%} reached)", "warning")

    def reserve(self, n: int = 1, seen: Optional[Tuple[int, int]] = None) -> int:
        """Reserves the expected spend of as many of the next `n` items (a process pool's
        chunk) as fit in the budget: how many; 0 (and the run cancelled) when none does.

        `seen`: a process pool's (items finished, items handed out and not finished) read
        from the snapshot its spend was `observe`d from, in place of the counts kept here (a
        worker's item is spent before its chunk comes back: counts from one moment agree).
        Then a refusal does not cancel the run: the pool calls `stop()` once its chunks in
        flight are back (a cancel would stop the items of those chunks not yet started)."""
        with self._lock:
            finished, in_flight = seen if seen is not None else (self._finished, self._in_flight)
            fit = n
            while fit and self._over(fit, finished, in_flight) is not None:
                fit -= 1
            if seen is None:
                self._in_flight += fit
            over = self._over(1, finished, in_flight) if not fit else None
            self._refused_by = self._refused_by or over
        if not fit and seen is None:
            self.stop(over)
        return fit

    @property
    def refused(self) -> bool:
        """An item was refused: the budget is spent."""
        return self._refused_by is not None

    def stop(self, over: Optional[str] = None) -> None:
        """Stops the task for its budget (`over`: the metric spent, else the one that refused
        an item): a run is cancelled, a phase or a step halted."""
        over = over or self._refused_by or next(iter(self.limits))
        task = self._task()
        if task is None:
            return
        reason = f"budget: {self._state(over)} spent"
        if task.kind == "run":
            task.cancel(reason)
        else:
            task.halt(reason)

    def release(self, finished: bool = True, n: int = 1) -> None:
        """`n` items reserved ended (`finished=False`: they did not start)."""
        with self._lock:
            self._in_flight -= n
            self._finished += n if finished else 0

    def _over(self, n: int, finished: int, in_flight: int) -> Optional[str]:
        """The first metric the next `n` items would pass, if any (under the lock)."""
        for name, limit in self.limits.items():
            spent = self.spent[name]
            mean = spent / finished if finished else 0.0
            # A hair of slack: a hundred 0.01s add up to a little over 1.00, not a refusal.
            if spent >= limit or spent + (in_flight + n) * mean > limit * (1 + 1e-9):
                return name
        return None

    def _state(self, name: str) -> str:
        # `cost_usd $0.82 of $1.00`: the metric's own format gives the name once, then the value.
        fmt = _milepost.format_metric
        return f"{fmt(name, self.spent[name])} of {fmt(name, self.limits[name])[len(name) + 1 :]}"

    def _log(self, message: str, level: str) -> None:
        task = self._task()
        if task is not None and not task.context.finished:
            task.log(message, level=level, source="milepost")


#: A task's budgets: its own, then those of the tasks above it (the run's last).
Budgets = Tuple[Budget, ...]


def counting(
    budgets: Budgets, metric: Callable[[str, Union[int, float]], None]
) -> Callable[[str, Union[int, float]], None]:
    """`metric` (a node's), also adding to the spend of each of `budgets`."""

    def add(name: str, value: Union[int, float]) -> None:
        metric(name, value)  # first: a value the node refuses is not spent
        for budget in budgets:
            if name in budget.limits:
                budget.add(name, value)

    return add


def reserve_all(budgets: Budgets) -> bool:
    """Reserves the next item in every budget, or in none (the one that refused stopped its
    task)."""
    for i, budget in enumerate(budgets):
        if not budget.reserve():
            release_all(budgets[:i], finished=False)
            return False
    return True


def release_all(budgets: Budgets, finished: bool = True) -> None:
    for budget in budgets:
        budget.release(finished)


def held(budgets: Budgets, item: Any, refused: Callable[[], Cancelled]) -> Iterator[Any]:
    """Yields `item` under a reservation (a `pending()` loop's body runs between the yield and
    the next item); raises `refused()` when a budget refuses it."""
    if not reserve_all(budgets):
        raise refused()
    try:
        yield item
    finally:
        release_all(budgets)
