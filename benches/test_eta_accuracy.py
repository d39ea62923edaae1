"""ETA accuracy of milepost against tqdm, rich and indicatif on replayed workloads (issue 6).

Each workload kind (`eta_workloads`) is generated for several seeds and replayed through every
tool on a synthetic clock (`eta_anchors`). At 10%, 15%, ..., 90% of the items done the ETA each
tool shows is compared with the truth (last completion minus now); the score is the mean absolute
percentage error (MAPE), an unknown ETA counting as 100% off. For milepost we also count how
often the truth lies inside its [low, high] range.

`python benches/test_eta_accuracy.py` prints the table (a few seconds); under pytest the
acceptance criteria of the issue are asserted. Everything is seeded: the same estimator gives the
same table. `MILEPOST_ETA_TABLE=path` also writes the table as Markdown.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from functools import lru_cache
from typing import Dict, List, Optional

import pytest

try:
    from benches.eta_anchors import ANCHORS, replay_milepost
    from benches.eta_workloads import WORKLOADS
except ImportError:  # run as a script: benches/ itself is sys.path[0]
    from eta_anchors import ANCHORS, replay_milepost  # type: ignore[no-redef]
    from eta_workloads import WORKLOADS  # type: ignore[no-redef]

N = 2000
SEEDS = range(5)
FRACTIONS = [p / 100 for p in range(10, 91, 5)]
CHECKPOINTS = [math.ceil(f * N - 1e-9) for f in FRACTIONS]  # counts 200, 300, ..., 1800
TOOLS = [*ANCHORS, "milepost"]
COVERAGE = "milepost range coverage"
ALL = "all workloads"

SLACK = 0.01  # milepost may trail the best anchor on a workload by this much MAPE
MEAN_RATIO = 0.8  # ...but must beat the best anchor's mean over workloads by 20%
MIN_COVERAGE = 0.80


def _ape(eta: Optional[float], truth: float) -> float:
    return 1.0 if eta is None else abs(eta - truth) / truth


@lru_cache(maxsize=None)
def results() -> Dict[str, Dict[str, float]]:
    """`{workload: {tool: MAPE, COVERAGE: fraction}}` plus the ALL row (mean over workloads)."""
    table: Dict[str, Dict[str, float]] = {}
    for kind, generate in WORKLOADS.items():
        errors: Dict[str, List[float]] = {tool: [] for tool in TOOLS}
        covered: List[bool] = []
        for seed in SEEDS:
            ts = generate(seed, N)
            truths = [ts[-1] - ts[c - 1] for c in CHECKPOINTS]
            for tool, replay in [*ANCHORS.items(), ("milepost", replay_milepost)]:
                for (eta, low, high), truth in zip(replay(ts, N, CHECKPOINTS), truths):
                    errors[tool].append(_ape(eta, truth))
                    if tool == "milepost":
                        covered.append(low is not None and high is not None and low <= truth <= high)
        table[kind] = {tool: statistics.fmean(e) for tool, e in errors.items()}
        table[kind][COVERAGE] = statistics.fmean(covered)
    columns = [*TOOLS, COVERAGE]
    table[ALL] = {col: statistics.fmean(table[k][col] for k in WORKLOADS) for col in columns}
    return table


def markdown(table: Dict[str, Dict[str, float]]) -> str:
    columns = [*TOOLS, COVERAGE]
    lines = [
        "| workload | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for kind, row in table.items():
        name = f"**{kind}**" if kind == ALL else kind
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _write_table(table: Dict[str, Dict[str, float]]) -> None:
    path = os.environ.get("MILEPOST_ETA_TABLE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(markdown(table))


@pytest.mark.parametrize("kind", list(WORKLOADS))
def test_no_worse_than_best_anchor(kind: str) -> None:
    row = results()[kind]
    best = min(row[a] for a in ANCHORS)
    assert row["milepost"] <= best + SLACK, f"{kind}: milepost MAPE vs best anchor\n{markdown(results())}"


def test_clearly_better_on_average() -> None:
    table = results()
    _write_table(table)
    best = min(table[ALL][a] for a in ANCHORS)
    assert table[ALL]["milepost"] < MEAN_RATIO * best, f"mean MAPE\n{markdown(table)}"


def test_range_coverage() -> None:
    # Pooled over all checkpoints: every workload has the same number of them.
    cov = results()[ALL][COVERAGE]
    assert cov >= MIN_COVERAGE, f"coverage {cov:.3f}\n{markdown(results())}"


if __name__ == "__main__":
    start = time.perf_counter()
    table = results()
    sys.stdout.write(markdown(table))
    _write_table(table)
    print(
        f"\n{len(WORKLOADS)} workloads x {len(SEEDS)} seeds x {len(CHECKPOINTS)} checkpoints, N={N}: "
        f"{time.perf_counter() - start:.1f} s"
    )
