"""Run under callgrind by `test_worker_instructions.py`: one map of `busy` over `items` items
with one worker process, by the executor or by `process_map` (history on or off); prints this
process's pid (the worker's count is the other process's)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import milepost  # noqa: E402
from child_pools import busy  # noqa: E402


def main(mode: str, items: int, chunk: int) -> None:
    fn = functools.partial(busy, k=20)  # a fixed amount of work an item (it cancels out)
    ctx = mp.get_context("fork")
    # The worker's count starts with what this process did before forking it (a forked
    # process inherits its counters): nothing before the map depends on `items`.
    if mode == "executor":
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            got = list(pool.map(fn, range(items), chunksize=chunk))
    else:
        with milepost.Run("instructions", display="none", history=mode == "history on"):
            got = milepost.process_map(fn, range(items), workers=1, chunksize=chunk, mp_context=ctx)
    assert got == [fn(i) for i in range(items)], "the map's results"
    print(os.getpid())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
