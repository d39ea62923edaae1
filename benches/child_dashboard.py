"""Child of test_dashboard_load.py: a job with the dashboard on, timed. Prints the dashboard's
port, waits for a line on stdin (the clients are connected), runs, prints its seconds."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from busywork import work  # noqa: E402
from milepost import dashboard


def main() -> None:
    seconds, k = float(sys.argv[1]), int(sys.argv[2])
    with milepost.Run("load", display="none", history=False, dashboard={"port": 0}) as run:
        print(dashboard.current().port, run.id, flush=True)
        sys.stdin.readline()
        with run.phase("map") as ph:
            n = 0
            t = time.perf_counter()
            while time.perf_counter() - t < seconds:
                for _ in range(100):
                    work(k)
                ph.advance(100)
                n += 100
            # the rate of work is what the clients may slow down
            print(json.dumps({"items_per_second": n / (time.perf_counter() - t)}), flush=True)
    dashboard.stop()


if __name__ == "__main__":
    main()
