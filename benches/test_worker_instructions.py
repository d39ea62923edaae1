"""Group "pools": the instructions a pool's worker process spends an item, counted by callgrind.

The wall-clock benchmark (`test_pools.py`) moves by several percent from one run to the next on
a shared machine, and its items are calibrated to a time (~10 µs), so milepost's share of each
grows on a slower machine. Callgrind counts a process's instructions, the same from one run of
a build to the next: a map of a fixed function (`child_pools.busy`) with one worker process,
run in a child Python under callgrind with a few items and with many; the worker's instructions
for the items between the two, divided by their count, are its instructions an item (what is
done once a map cancels out; what is done once a chunk is shared among its items). Reported
for the executor's worker and for `process_map`'s, with the history on and off; milepost's
share is the difference. Two builds compared this way differ by what their hot paths do,
within about 20 instructions an item.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

pytestmark = pytest.mark.benchmark(group="pools")

CHILD = Path(__file__).with_name("child_instructions.py")
MODES = ("executor", "history off", "history on")


def _totals(path: Path) -> int:
    """A callgrind output file's total count of instructions."""
    for line in reversed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise AssertionError(f"no totals in {path}")


def worker_instructions(valgrind: str, mode: str, items: int, chunk: int, out: Path) -> int:
    """The instructions of the worker process of one map of `items` items, under callgrind."""
    where = out / f"{mode.replace(' ', '-')}-{items}"
    where.mkdir()
    done = subprocess.run(
        # A forked process inherits its parent's counters: the worker's are written out and
        # zeroed where it starts (CPython's after-fork hook), so that its last file holds its
        # own work alone (what the parent's threads did before the fork varies run to run).
        [valgrind, "--tool=callgrind", "-q", "--dump-before=PyOS_AfterFork_Child"]
        + [f"--callgrind-out-file={where}/cg.%p", sys.executable, str(CHILD), mode, str(items), str(chunk)],
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dicts, run after run
        cwd=where,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    parent = int(done.stdout.split()[-1])
    # cg.<pid>: a process's count at its exit (cg.<pid>.1: the worker's inherited one).
    counts = {int(p.name.split(".")[1]): _totals(p) for p in where.glob("cg.*") if p.name.count(".") == 1}
    workers = [n for pid, n in counts.items() if pid != parent]
    assert len(workers) == 1, f"one worker process: {sorted(counts)} (the map's own {parent})"
    return workers[0]


def test_instructions_an_item_in_a_pool_worker(benchmark: Any, tmp_path: Path) -> None:
    few, many, chunk = (200, 1_200, 100) if benchmark.disabled else (2_000, 18_000, 500)
    valgrind = shutil.which("valgrind")
    assert valgrind is not None, "valgrind is needed (`.ci/run` installs it)"
    per_item: Dict[str, float] = {}

    def measure() -> None:
        for mode in MODES:
            low = worker_instructions(valgrind, mode, few, chunk, tmp_path)
            high = worker_instructions(valgrind, mode, many, chunk, tmp_path)
            per_item[mode] = (high - low) / (many - few)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    executor = per_item["executor"]
    # What the worker does for an item with the history on that it does not with it off: the
    # item's row, encoded there.
    assert per_item["history on"] > per_item["history off"] > 0 and executor > 0, per_item
    benchmark.extra_info["report"] = {
        "items (between the two maps)": many - few,
        "chunksize": chunk,
        **{f"{mode}: instructions an item": round(n) for mode, n in per_item.items()},
        **{f"{mode}: milepost's share, instructions an item": round(per_item[mode] - executor) for mode in MODES[1:]},
    }
