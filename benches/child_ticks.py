"""Child of test_live.py: a run (with a history, so published live) that counts one item at a
time at random moments, printing when (Unix time) it counted each; it ends after `n`."""

from __future__ import annotations

import random
import sys
import time

import milepost


def main() -> None:
    n = int(sys.argv[1])
    rng = random.Random(2)
    with milepost.Run("ticks", display="none") as run:
        print("started", run.id, flush=True)
        sys.stdin.readline()  # the monitor is attached
        with run.phase("p", total=n, unit="tick") as ph:
            for _ in range(n):
                time.sleep(rng.uniform(0.1, 0.4))
                ph.advance()
                print(time.time(), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
