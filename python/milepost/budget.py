"""Budgets: `Run(budget={"cost_usd": 5.0})` stops handing out items before a metric goes over.

The spend is a running sum kept here, fed by every `metric()` call of the run's tasks and
items in this process (`Task` wraps its node's `metric` when its run has a budget): reading the
root's metrics would build a whole snapshot per item, and the sum is the same number.

Before an item is handed out, a pool or a `pending()` loop reserves it: the item's expected
spend is the mean spend per finished item (0 before any finished), and the item is refused when
spent + expected spend of the items in flight + its own would pass a limit. Reservations are
counted, not stored: the items in flight are each priced at the current mean, so the items
handed out before the first estimate are covered as soon as one exists. The first wave (at most
the pool's concurrency) has no estimate: a budget one item could eat a large part of wants a
smaller concurrency. A refusal cancels the run with the reason "budget: ..." (once).
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Union

from . import _milepost
from .errors import Cancelled, InvalidValueError

__all__ = ["Budget", "WARN_AT"]

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


class Budget:
    """A run's limits and what was spent against them (thread-safe)."""

    def __init__(self, budget: Any) -> None:
        self.limits = _limits(budget)
        self.spent: Dict[str, float] = dict.fromkeys(self.limits, 0.0)
        self._warned: set[str] = set()
        self._in_flight = 0
        self._finished = 0
        self._lock = threading.Lock()
        self._run: Callable[[], Any] = lambda: None

    def bind(self, run: Any) -> None:
        """The run this budget cancels and warns on (held weakly: the run holds the budget)."""
        self._run = weakref.ref(run)

    def counting(self, metric: Callable[[str, Union[int, float]], None]) -> Callable[[str, Union[int, float]], None]:
        """`metric` (a node's), also adding to the spend."""

        def add(name: str, value: Union[int, float]) -> None:
            metric(name, value)  # first: a value the node refuses is not spent
            if name in self.limits:
                self.add(name, value)

        return add

    def add(self, name: str, value: Union[int, float]) -> None:
        with self._lock:
            self.spent[name] += value
            warn = name not in self._warned and self.spent[name] >= WARN_AT * self.limits[name]
            if warn:
                self._warned.add(name)
        if warn:
            self._log(f"budget warning: {self._state(name)} spent ({WARN_AT:.0%} reached)", "warning")

    def reserve(self) -> bool:
        """Reserves the next item's expected spend; False (and the run cancelled) when it
        does not fit in the budget."""
        with self._lock:
            over = self._over()
            if over is None:
                self._in_flight += 1
                return True
        run = self._run()
        if run is not None:
            run.cancel(f"budget: {self._state(over)} spent")
        return False

    def release(self, finished: bool = True) -> None:
        """An item reserved ended (`finished=False`: it did not start)."""
        with self._lock:
            self._in_flight -= 1
            self._finished += finished

    def _over(self) -> Optional[str]:
        """The first metric the next item would pass, if any (under the lock)."""
        for name, limit in self.limits.items():
            spent = self.spent[name]
            mean = spent / self._finished if self._finished else 0.0
            # A hair of slack: a hundred 0.01s add up to a little over 1.00, not a refusal.
            if spent >= limit or spent + (self._in_flight + 1) * mean > limit * (1 + 1e-9):
                return name
        return None

    def _state(self, name: str) -> str:
        # `cost_usd $0.82 of $1.00`: the metric's own format gives the name once, then the value.
        fmt = _milepost.format_metric
        return f"{fmt(name, self.spent[name])} of {fmt(name, self.limits[name])[len(name) + 1 :]}"

    def _log(self, message: str, level: str) -> None:
        run = self._run()
        if run is not None and not run.finished:
            run.log(message, level=level, source="milepost")

    def held(self, item: Any) -> Iterator[Any]:
        """Yields `item` under a reservation (a `pending()` loop's body runs between the yield
        and the next item); raises `Cancelled` when the budget refuses it."""
        if not self.reserve():
            raise Cancelled("the run's budget is spent: the items left were not handed out")
        try:
            yield item
        finally:
            self.release()
