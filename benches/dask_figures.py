"""Figures for the README's "Across machines with Dask" (a script, not yet a pytest-benchmark
suite): `advance()` inside a Dask task against a bare loop, messages a second per worker, and a
10,000-item map of 1 ms items with `milepost.dask.map` against the same chunks on plain Dask.
Run with `python benches/dask_figures.py` (a LocalCluster of 2 worker processes)."""

import os
import statistics
import time

os.environ["MILEPOST_TRANSPORT"] = "dask"
from distributed import Client, LocalCluster

import milepost
import milepost.dask as md

N = 2_000_000


def loops(phase):
    t = time.perf_counter()
    for _ in range(N):
        pass
    bare = time.perf_counter() - t
    adv = phase.advance
    t = time.perf_counter()
    for _ in range(N):
        adv()
    return bare / N * 1e9, (time.perf_counter() - t) / N * 1e9


def sleepy(x):
    t = time.perf_counter() + 0.001
    while time.perf_counter() < t:
        pass
    return x


def plain_chunk(fn, chunk):
    return [fn(x) for x in chunk]


if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    try:
        with milepost.Run("b", display="none", history=False) as run:
            ph = run.phase("adv")
            r = client.submit(loops, ph, pure=False).result()
            print(f"bare {r[0]:.1f} ns/it, advance {r[1]:.1f} ns/it, over bare {r[1] - r[0]:.1f}")
            link = run.context.links[0]
            s0 = {k: v["seq"] for k, v in link.merger.stats().items()}
            t0 = time.monotonic()
            items = list(range(10_000))
            size = 10_000 // 16
            chunks = [items[i : i + size] for i in range(0, 10_000, size)]
            a, b = [], []
            for _ in range(3):
                t = time.perf_counter()
                client.gather(client.map(plain_chunk, [sleepy] * len(chunks), chunks, pure=False))
                a.append(time.perf_counter() - t)
                t = time.perf_counter()
                md.map(sleepy, items, client=client, chunksize=size)
                b.append(time.perf_counter() - t)
            el = time.monotonic() - t0
            s1 = {k: v["seq"] for k, v in link.merger.stats().items()}
            print("plain", [round(x, 3) for x in a], "milepost", [round(x, 3) for x in b])
            print(f"slowdown median {(statistics.median(b) / statistics.median(a) - 1) * 100:.2f} %")
            print("messages/s per worker", {k: round((s1[k] - s0.get(k, 0)) / el, 2) for k in s1})
    finally:
        client.close()
        cluster.close()
