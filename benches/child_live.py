"""Child of test_live_watchers.py: a job that keeps a history (so it publishes itself live),
~10 µs of work per item, timed. Prints its run id, waits for a line on stdin (the watchers are
attached), runs, prints its rate."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from busywork import work  # noqa: E402


def main() -> None:
    seconds, k = float(sys.argv[1]), int(sys.argv[2])
    with milepost.Run("watched", display="none") as run:
        run.meta["model"] = "bench"
        print(run.id, flush=True)
        sys.stdin.readline()
        with run.phase("map") as ph:
            n = 0
            t = time.perf_counter()
            while time.perf_counter() - t < seconds:
                for _ in range(100):
                    work(k)
                    ph.advance()
                n += 100
            print(json.dumps({"items_per_second": n / (time.perf_counter() - t)}), flush=True)
        sys.stdin.readline()  # the watchers are still attached when the run ends


if __name__ == "__main__":
    main()
