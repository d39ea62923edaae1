"""What a run or a node cost, by the core's one rule for money metrics (`_milepost.is_money`:
a metric whose name mentions `cost` or `usd`, any case). The live snapshot carries a `cost` per
node from the same rule; the history's records get theirs here; the CLI, the dashboard's API and
its page take the `cost` they are given, never their own sum of metric names."""

from __future__ import annotations

from typing import Mapping, Optional

from .. import _milepost

__all__ = ["cost_of", "is_money"]

is_money = _milepost.is_money


def cost_of(metrics: Mapping[str, float]) -> Optional[float]:
    """The cost of a run or a node: the sum of its money metrics.

    Args:
        metrics: A node's summed metrics, by name.

    Returns:
        The sum, or None when no metric is money (no cost is not a cost of zero).
    """
    costs = [value for name, value in metrics.items() if is_money(name)]
    return float(sum(costs)) if costs else None
