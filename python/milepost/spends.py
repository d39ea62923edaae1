"""What the items under one budget spent, item by item: the expected spend a budget reserves.

An item handed out under a budget gets a ticket; what it spends in its own context (its
thread, its asyncio task, a loop's body: `Budget.add` finds the ticket through a ContextVar)
is its own. When it ends, its spend goes into a bucket of its duration (doubling from 0.1 ms).

A new item is expected to spend the mean of the finished items. An item in flight for `a`
seconds is expected to spend the mean of the finished items that ran longer than `a`, less what
it spent already: when an item's cost grows with its length (an LLM's reply), the items still in
flight are the long, dear ones, and pricing them at the plain mean of the finished (short, cheap)
ones ends a run over its budget. An item older than every finished one is priced by its age at
the spend per second of the finished ones. Spend that no ticket took (recorded outside any
item, or through `task.metric` in another thread) is the run's own: it is spent, but not
expected again of every item (spread over the items, it would be counted again for those in
flight that recorded it; an item's own `metric()` is its own from any thread).
"""

from __future__ import annotations

import math
import time
from typing import Dict, Iterable, List, Optional

__all__ = ["Ticket", "Spends"]

#: Duration buckets, doubling from 0.1 ms (the last holds all longer ones).
BUCKETS = 40


def bucket(seconds: float) -> int:
    if seconds < 2e-4:
        return 0
    return min(int(math.log2(seconds / 1e-4)), BUCKETS - 1)


class Ticket:
    """One item handed out under a budget: when, and what it spent so far (per metric)."""

    __slots__ = ("start", "spent")

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.spent: Dict[str, float] = {}


class _Longer:
    """Per bucket, the count and spend of the finished items in it and in those above it (made
    again only after an item finished: the reservations in between read it)."""

    def __init__(self, counts: List[int], costs: Dict[str, List[float]]) -> None:
        self.n = [0] * (BUCKETS + 1)
        self.c = {name: [0.0] * (BUCKETS + 1) for name in costs}
        for b in range(BUCKETS - 1, -1, -1):
            self.n[b] = self.n[b + 1] + counts[b]
            for name, c in self.c.items():
                c[b] = c[b + 1] + costs[name][b]
        self.top = max((b for b in range(BUCKETS) if counts[b]), default=0)
        # The dearest any bucket's price can be, for the quick bound of `Spends.coming`.
        self.dearest = {
            name: max((c[b] / self.n[b] for b in range(BUCKETS) if self.n[b]), default=0.0)
            for name, c in self.c.items()
        }


class Spends:
    """Not thread-safe: the budget holds its lock around every call."""

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        #: In flight, oldest first (a dict keeps the order tickets came in).
        self.live: Dict[Ticket, None] = {}
        self.live_spent: Dict[str, float] = dict.fromkeys(names, 0.0)
        self.finished = 0
        self._counts = [0] * BUCKETS
        self._costs: Dict[str, List[float]] = {name: [0.0] * BUCKETS for name in names}
        self._settled: Dict[str, float] = dict.fromkeys(names, 0.0)
        self._seconds = 0.0
        self._longer: Optional[_Longer] = None

    def open(self) -> Ticket:
        ticket = Ticket()
        self.live[ticket] = None
        return ticket

    def add(self, ticket: Ticket, name: str, value: float) -> None:
        if ticket in self.live:  # a ticket settled already (an abandoned loop's) takes nothing
            ticket.spent[name] = ticket.spent.get(name, 0.0) + value
            self.live_spent[name] += value

    def settle(self, ticket: Ticket, finished: bool) -> None:
        """The item ended (`finished=False`: it did not start, or was cancelled: what it spent
        stays spent, but its cut-short length says nothing of an item's)."""
        if ticket not in self.live:
            return  # settled already
        del self.live[ticket]
        for name, value in ticket.spent.items():
            self.live_spent[name] -= value
        if not finished:
            return
        self.finished += 1
        seconds = time.monotonic() - ticket.start
        self._seconds += seconds
        b = bucket(seconds)
        self._counts[b] += 1
        for name, costs in self._costs.items():
            cost = ticket.spent.get(name, 0.0)
            costs[b] += cost
            self._settled[name] += cost
        self._longer = None

    def mean(self, name: str) -> float:
        """What a new item is expected to spend."""
        return self._settled[name] / self.finished if self.finished else 0.0

    def coming(self, name: str, room: float) -> float:
        """What the items in flight are still expected to spend; once that is clearly below
        `room`, a bound under `room` (the exact sum walks every ticket: only near the end)."""
        if not self.finished or not self.live:
            return 0.0
        if self._longer is None:
            self._longer = _Longer(self._counts, self._costs)
        longer = self._longer
        per_second = self._settled[name] / self._seconds if self._seconds > 0 else 0.0
        now = time.monotonic()
        oldest = now - next(iter(self.live)).start
        bound = len(self.live) * max(longer.dearest[name], per_second * oldest)
        if bound <= room:
            return bound
        costs, counts, c = self._costs[name], self._counts, longer.c[name]
        expected = 0.0
        for ticket in self.live:
            age = now - ticket.start
            b = bucket(age)
            if longer.n[b + 1]:  # the finished items of the buckets above this one's age
                price = c[b + 1] / longer.n[b + 1]
            elif counts[b]:  # its own bucket is the longest there is
                price = costs[b] / counts[b]
            else:  # older than every finished item: priced by its age, at least as the longest
                price = max(per_second * age, costs[longer.top] / counts[longer.top])
            expected += max(price, ticket.spent.get(name, 0.0))
        return max(0.0, expected - self.live_spent[name])
