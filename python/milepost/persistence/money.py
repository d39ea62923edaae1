"""Which metrics are money, and what a run or a node cost: the one rule every display reads.

Until the core exports its own rule (`_milepost.is_money`, with a `cost` field per node of the
snapshot), this is the only place in Python that decides it: the CLI, the dashboard's API and
its page all take the `cost` this module computes, never their own sum of metric names.
"""

from __future__ import annotations

from typing import Mapping, Optional


def is_money(name: str) -> bool:
    """Whether a metric named `name` is money: its name mentions `cost` or `usd` (any case).

    Args:
        name: A metric's name, as the job gave it (`cost_usd`, `embedding_cost`).

    Returns:
        True for money metrics, summed into a `cost`.
    """
    lower = name.lower()
    return "cost" in lower or "usd" in lower


def cost_of(metrics: Mapping[str, float]) -> Optional[float]:
    """The cost of a run or a node: the sum of its money metrics.

    Args:
        metrics: A node's summed metrics, by name.

    Returns:
        The sum, or None when no metric is money (no cost is not a cost of zero).
    """
    costs = [value for name, value in metrics.items() if is_money(name)]
    return float(sum(costs)) if costs else None
