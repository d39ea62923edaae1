"""Group "store": the history store.

1. Throughput: item rows written per second by the store's background thread.
2. Overhead: a 100,000-item job of ~100 µs items with the history store against the same
   job without it, in fresh processes, alternating, paired rounds (median of the ratios).
3. The writer beside a pool: the CPU the writer's connection spends storing a pool's 40,000
   short rows while a forked process is alive (as a pool's workers are), with the writer's
   small page cache against SQLite's default, alternating, paired rounds.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import pytest

from milepost.persistence import Store
from milepost.persistence.store import ITEMS_CHUNK, writer_connection

pytestmark = pytest.mark.benchmark(group="store")

CHILD = Path(__file__).with_name("child_store.py")


def test_item_rows_per_second(benchmark) -> None:
    n = 20_000 if benchmark.disabled else 500_000
    result = {}

    def write():
        store = Store(Path(tempfile.mkdtemp()) / "runs.db")
        store.bind_run("run")
        names = [f"item-{i}" for i in range(n)]
        t = time.perf_counter()
        for name in names:
            store.item("map", name, "done", 0.0, 0.001, None, None)
        assert store.flush(timeout=300)
        result["seconds"] = time.perf_counter() - t
        assert store.written == n
        store.close()

    benchmark.pedantic(write, rounds=1, iterations=1)
    benchmark.extra_info["report"] = {
        "rows": n,
        "rows per second (queued and committed)": round(n / result["seconds"]),
    }


def _calibrate(target: float = 100e-6) -> int:
    sys.path.insert(0, str(CHILD.parent))
    from child_store import work

    k = 2000
    best = min(_time(work, k) for _ in range(5))
    return max(1, round(k * target / best))


def _time(f, k):
    t = time.perf_counter()
    f(k)
    return time.perf_counter() - t


def _child(mode: str, n: int, k: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(CHILD), mode, str(n), str(k)], capture_output=True, text=True, check=True, timeout=600
    )
    return json.loads(out.stdout)


def test_history_overhead_on_100_us_items(benchmark) -> None:
    n, rounds = (2_000, 1) if benchmark.disabled else (100_000, 5)
    k = _calibrate()
    plain, kept = [], []

    def ab():
        for r in range(rounds):
            for mode in ("none", "history") if r % 2 == 0 else ("history", "none"):
                res = _child(mode, n, k)
                assert res["done"] == n
                if mode == "history":
                    assert res["rows"] == n, "every item is in the store"
                    kept.append(res["seconds"])
                else:
                    plain.append(res["seconds"])

    benchmark.pedantic(ab, rounds=1, iterations=1)
    ratios = [(h / p - 1) * 100 for h, p in zip(kept, plain)]
    benchmark.extra_info["report"] = {
        "items, ~100 µs each": n,
        "rounds": rounds,
        "without history, median s": round(statistics.median(plain), 3),
        "with history, median s": round(statistics.median(kept), 3),
        "slowdown, median of rounds (%)": round(statistics.median(ratios), 2),
        "spread of rounds (%)": f"{min(ratios):+.2f}..{max(ratios):+.2f}",
    }


def test_writer_beside_forked_workers(benchmark, tmp_path: Path) -> None:
    rounds, chunks = (2, 4) if benchmark.disabled else (41, 14)
    # A pool's chunk of short rows as the parent joins them (~60 KB, 3,000 rows): 14 of them
    # are a 40,000-item map's rows, stored in two batches (one mid-run, one at its end).
    text = "[" + ",".join(f"[{i},{1000 * i + 123_456},{10_300 + i % 100}]" for i in range(3000)) + "]"
    params = [("run", text, 3000, 3000, 0, 0, "map", 0.0)] * (chunks // 2)
    dbs = {
        "writer's cache": writer_connection(tmp_path / "small.db"),
        "default cache": writer_connection(tmp_path / "big.db"),
    }
    dbs["default cache"].execute("PRAGMA cache_size = -2000")
    cpu: Dict[str, List[float]] = {label: [] for label in dbs}
    fork = mp.get_context("fork")

    def once(label: str) -> None:
        worker = fork.Process(target=time.sleep, args=(60,), daemon=True)  # shares the parent's pages
        worker.start()
        try:
            t = time.thread_time()
            for _ in range(2):
                with dbs[label]:
                    dbs[label].executemany(ITEMS_CHUNK, params)
            cpu[label].append(time.thread_time() - t)
        finally:
            worker.kill()
            worker.join(timeout=10)

    def ab() -> None:
        for r in range(rounds):
            for label in list(dbs) if r % 2 == 0 else list(dbs)[::-1]:
                once(label)

    benchmark.pedantic(ab, rounds=1, iterations=1)
    for label, db in dbs.items():
        stored = chunks // 2 * 2 * rounds  # every round stores its chunks once in each database
        assert tuple(db.execute("SELECT count(*), sum(n) FROM item_chunks").fetchone()) == (stored, 3000 * stored)
        db.close()
    ratios = [a / b for a, b in zip(cpu["writer's cache"], cpu["default cache"]) if b > 0]
    benchmark.extra_info["report"] = {
        "rows a round": 3000 * (chunks // 2) * 2,
        "rounds": rounds,
        **{f"{label}, median CPU ms": round(1000 * statistics.median(v), 3) for label, v in cpu.items()},
        "writer's cache / default cache, CPU, median of rounds": round(statistics.median(ratios), 3)
        if ratios
        else None,
    }
