"""Child of test_store.py: one job of N items of ~100 µs real work, with or without the
history store (a fresh process each time, so neither side inherits the other's state)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from busywork import work  # noqa: E402


def main() -> None:
    mode, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    home = tempfile.mkdtemp()
    import os

    os.environ["MILEPOST_HOME"] = home
    for _ in range(200):
        work(k)
    t = time.perf_counter()
    with milepost.Run("bench", display="none", history=(mode == "history")) as run:
        with run.phase("map", total=n) as ph:
            for i in range(n):
                with ph.item(f"item-{i}"):
                    work(k)
    seconds = time.perf_counter() - t
    rows = None
    if mode == "history":
        import sqlite3

        rows = sqlite3.connect(f"{home}/runs.db").execute("SELECT count(*) FROM items").fetchone()[0]
    print(json.dumps({"seconds": seconds, "rows": rows, "done": run.snapshot().find("map")["done"]}))


if __name__ == "__main__":
    main()
