"""Group "advance": one counter update, the call a worker makes per item.

`bare` is the empty loop, so the overhead column is what one call adds to a loop; `C call`
calls a bound no-op C method ((0).bit_length) the same way, the floor for any call from Python.
"""

import pytest
from rich.console import Console
from rich.progress import Progress
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="advance")

N = 200_000


def call(f, n):
    for _ in range(n):
        f()


def call_with(f, arg, n):
    for _ in range(n):
        f(arg)


def empty(n):
    for _ in range(n):
        pass


def test_bare(per_item):
    per_item("bare", N, empty, lambda: (N,))


def test_c_call(per_item):
    per_item("C call", N, call, lambda: ((0).bit_length, N))


def test_milepost_advance(per_item):
    runs = []

    def setup():
        # One live run per round: finishing the last one stops its background threads, which
        # would otherwise pile up and compete for the GIL.
        if runs:
            runs[-1].finish()
        runs.append(milepost.Run("advance", display="none").start())
        return (runs[-1].phase("map", total=N).advance, N)

    per_item("milepost", N, call, setup)
    run = runs[-1]
    run.finish()
    assert run.snapshot().find("map")["done"] == N
    assert run.snapshot().root["done"] == N


def test_tqdm_update(per_item, devnull):
    bars = []

    def setup():
        if bars:
            bars[-1].close()
        bars.append(tqdm(total=N, file=devnull))
        return (bars[-1].update, 1, N)

    per_item("tqdm", N, call_with, setup)
    bars[-1].close()
    assert bars[-1].n == N


def test_rich_advance(per_item, devnull):
    # Not started and no auto-refresh: advance() does the same bookkeeping either way (lock,
    # count, speed sample); drawing would happen on rich's own refresh thread, not in this call.
    progresses = []

    def setup():
        progress = Progress(console=Console(file=devnull), auto_refresh=False)
        progresses.append((progress, progress.add_task("map", total=N)))
        return (progress.advance, progresses[-1][1], N)

    per_item("rich", N, call_with, setup)
    progress, task = progresses[-1]
    assert progress.tasks[task].completed == N
