"""Child of test_work_slowdown.py: one timed loop of N items of real Python work.

usage: child_work.py MODE N K [PLAIN_PATH]
MODE: plain (A), track (B: display="none"), track-plain (C: display="plain" to PLAIN_PATH) or
items (each item in `with ph.item(i)` of a `Run` keeping its history, the run's end timed too).
Prints {"seconds": wall, "cpu": process CPU (all threads), "items": ...} as JSON. Interpreter
start-up and imports are outside the timed loop, so only the per-item cost and the run's
background threads are measured.
"""

import json
import sys
import time
from pathlib import Path

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from busywork import work  # noqa: E402


def main():
    mode, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for _ in range(200):  # warm the loop up the same way in every mode
        work(k)
    out = open(sys.argv[4], "a", encoding="utf-8") if mode == "track-plain" else None
    if mode == "plain":
        items = range(n)
    elif mode == "items":
        items = range(0)  # the loop below makes its own run
    elif mode == "track":
        items = milepost.track(range(n), display="none")
    else:
        items = milepost.track(range(n), display="plain", file=out)
    count = 0
    c0, t0 = time.process_time(), time.perf_counter()
    if mode == "items":
        with milepost.Run("work", display="none") as run:
            with run.phase("p", total=n) as ph:
                for i in range(n):
                    with ph.item(i):
                        work(k)
                    count += 1
    else:
        for _ in items:
            work(k)
            count += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if out is not None:
        out.close()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "items": count}))


if __name__ == "__main__":
    main()
