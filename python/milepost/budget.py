"""Budgets: `Run(budget={"cost_usd": 5.0})` (or `run.phase(..., budget=...)`) stops handing out
items before a metric goes over.

The spend is a running sum kept here, fed by every `metric()` call of the task's subtree in
this process (`Task` wraps its node's `metric` with the budgets of it and of the tasks above
it): reading the node's metrics would build a whole snapshot per item, and the sum is the same
number. (Process pools read it from a snapshot instead: see `fit`.)

Before an item is handed out, a pool or a loop reserves it (a `Reservation`: a ticket per
budget, current in the item's context so that what the item spends is told apart), and the
item is refused when spent + what the items in flight are still expected to spend + its own
expected spend would pass a limit (the estimates: `spends`). Items handed out before the first
estimate are covered as soon as one exists. The first wave (at most the pool's concurrency) has
no estimate: a budget one item could eat a large part of wants a smaller concurrency.

A refusal of the run's budget cancels the run with the reason "budget: ..."; a phase's stops
that phase (`Task.halt`): its pools and loops hand out no more items and raise `Cancelled`, and
the run goes on if the job catches it.
"""

from __future__ import annotations

import contextvars
import math
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

from . import _milepost
from .errors import Cancelled, InvalidValueError
from .spends import Spends, Ticket

__all__ = [
    "Budget",
    "WARN_AT",
    "ON_BUDGET",
    "check_on_budget",
    "Reservation",
    "Budgets",
    "reserve_all",
    "held",
    "counting",
    "current_tickets",
    "spend",
]

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


def check_on_budget(on_budget: Any) -> None:
    if on_budget not in ON_BUDGET:
        raise InvalidValueError(f"on_budget must be one of {', '.join(ON_BUDGET)}, got {on_budget!r}")


class Budget:
    """A task's limits (the run's, or a phase's) and what was spent against them (thread-safe)."""

    def __init__(self, budget: Any, on_budget: str = "finish") -> None:
        check_on_budget(on_budget)
        self.limits = _limits(budget)
        self.cancels_in_flight = on_budget == "cancel"
        self.spent: Dict[str, float] = dict.fromkeys(self.limits, 0.0)
        self._warned: set[str] = set()
        self._spends = Spends(self.limits)
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

    def add(self, name: str, value: Union[int, float], tickets: Optional[Dict[Budget, Ticket]] = None) -> None:
        """Spends `value` of `name`: the item holding `tickets` spent it (an `Item`'s own, passed
        whatever thread records it; else the item reserved in this context, if any)."""
        tickets = tickets if tickets is not None else _TICKETS.get()
        ticket = tickets.get(self) if tickets is not None else None
        with self._lock:
            self.spent[name] += value
            if ticket is not None:  # the item in this context spent it
                self._spends.add(ticket, name, value)
        self._warn(name)

    def observe(self, totals: Dict[str, Any]) -> None:
        """The totals of the budget's task's metrics (its node in a snapshot, which counts what
        worker processes recorded in shared memory, out of reach of `add`): the spend is at
        least that."""
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

    def fit(self, n: int, seen: Tuple[int, int]) -> int:
        """How many of a process pool's next `n` items (a chunk) fit in the budget, judged
        from `seen`: the pool's (items finished, items handed out and not finished) read from
        the snapshot its spend was `observe`d from (a worker's item is spent before its chunk
        comes back: counts from one moment agree; its items cannot be told apart, so each is
        priced at the plain mean). A refusal does not stop the task: the pool calls `stop()`
        once its chunks in flight are back (a cancel would stop the items of those chunks not
        yet started)."""
        with self._lock:
            fit = n
            while fit and self._over(fit, seen) is not None:
                fit -= 1
            if not fit:
                self._refused_by = self._refused_by or self._over(1, seen)
        return fit

    def ticket(self) -> Optional[Ticket]:
        """Reserves the next item (see the module): its ticket, or None (and the task
        stopped) when it does not fit."""
        with self._lock:
            over = self._over(1)
            if over is None:
                return self._spends.open()
            self._refused_by = self._refused_by or over
        self.stop(over)
        return None

    def settle(self, ticket: Ticket, finished: bool = True) -> None:
        """The item of `ticket` ended (`finished=False`: it did not start, or was cancelled)."""
        with self._lock:
            self._spends.settle(ticket, finished)

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
        with self._lock:
            reason = f"budget: {self._state(over)} spent{self._expected(over)}"
        if task.kind == "run":
            task.cancel(reason)
        else:
            task.halt(reason)

    def _over(self, n: int, seen: Optional[Tuple[int, int]] = None) -> Optional[str]:
        """The first metric the next `n` items would pass, if any (under the lock)."""
        for name, limit in self.limits.items():
            spent = self.spent[name]
            # A hair of slack: a hundred 0.01s add up to a little over 1.00, not a refusal.
            room = limit * (1 + 1e-9) - spent
            if seen is None:  # items under tickets: see `spends`
                mean = self._spends.mean(name)
                coming = self._spends.coming(name, room - n * mean)
            else:  # a process pool's counts, from its snapshot: every item at the plain mean
                mean = spent / seen[0] if seen[0] else 0.0
                coming = seen[1] * mean
            if spent >= limit or coming + n * mean > room:
                return name
        return None

    def _expected(self, name: str) -> str:
        """`, $0.0019 expected of the 16 items in flight` (under the lock)."""
        live = len(self._spends.live)
        if not live or not self._spends.finished:
            return ""
        coming = self._spends.coming(name, -1.0)  # exact: no room to bound in
        value = _milepost.format_metric(name, coming)[len(name) + 1 :]
        return f", {value} expected of the {live} items in flight"

    def _state(self, name: str) -> str:
        # `cost_usd $0.82 of $1.00`: the metric's own format gives the name once, then the value.
        fmt = _milepost.format_metric
        return f"{fmt(name, self.spent[name])} of {fmt(name, self.limits[name])[len(name) + 1 :]}"

    def _log(self, message: str, level: str) -> None:
        task = self._task()
        if task is not None and not task.context.finished:
            task.log(message, level=level, source="milepost")


#: The tickets of the item running in this context, by budget (a thread's, an asyncio
#: task's, a loop's caller's): what `Budget.add` attributes a spend to.
_TICKETS: contextvars.ContextVar[Optional[Dict[Budget, Ticket]]] = contextvars.ContextVar(
    "milepost_budget_tickets", default=None
)

#: A task's budgets: its own, then those of the tasks above it (the run's last).
Budgets = Tuple[Budget, ...]


class Reservation:
    """An item reserved in every budget of its task, its tickets current in this context
    until `release`."""

    __slots__ = ("tickets", "_token")

    def __init__(self, tickets: Dict[Budget, Ticket]) -> None:
        self.tickets = tickets
        self._token = _TICKETS.set(tickets)

    def release(self, finished: bool = True) -> None:
        """The item ended (`finished=False`: it did not start, or was cancelled). Idempotent."""
        if _TICKETS.get() is self.tickets:
            try:
                _TICKETS.reset(self._token)
            except ValueError:
                pass  # set in another context (a loop abandoned and collected elsewhere): left as is
        for budget, ticket in self.tickets.items():
            budget.settle(ticket, finished)


def current_tickets() -> Any:
    """The tickets of the item reserved in this context (None: none), for an `Item` to keep."""
    return _TICKETS.get()


def spend(budgets: Budgets, name: str, value: Union[int, float], tickets: Any = None) -> None:
    """Adds to the spend of each of `budgets` that limits `name` (`tickets`: see `Budget.add`)."""
    for budget in budgets:
        if name in budget.limits:
            budget.add(name, value, tickets)


def counting(
    budgets: Budgets, metric: Callable[[str, Union[int, float]], None]
) -> Callable[[str, Union[int, float]], None]:
    """`metric` (a node's), also adding to the spend of each of `budgets`."""

    def add(name: str, value: Union[int, float]) -> None:
        metric(name, value)  # first: a value the node refuses is not spent
        spend(budgets, name, value)

    return add


def reserve_all(budgets: Budgets) -> Optional[Reservation]:
    """Reserves the next item in every budget, or in none (None: the one that refused stopped
    its task)."""
    tickets: Dict[Budget, Ticket] = {}
    for budget in budgets:
        ticket = budget.ticket()
        if ticket is None:
            for taken, held_ticket in tickets.items():
                taken.settle(held_ticket, finished=False)
            return None
        tickets[budget] = ticket
    return Reservation(tickets)


def held(budgets: Budgets, item: Any, refused: Callable[[], Cancelled]) -> Iterator[Any]:
    """Yields `item` under a reservation (a `pending()` loop's body runs between the yield and
    the next item); raises `refused()` when a budget refuses it."""
    reservation = reserve_all(budgets)
    if reservation is None:
        raise refused()
    try:
        yield item
    finally:
        reservation.release()
