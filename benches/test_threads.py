"""Group "threads": 8 threads advancing one counter at once, started together by a barrier.

`bare` has the same threads call a no-op C method, so the overhead column is what sharing one
counter costs (GIL hand-offs are in the baseline too). Items per round = 8 * M.
"""

import threading

import pytest
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="threads")

THREADS = 8


@pytest.fixture
def m(benchmark):
    # A real run wants enough calls per round to dwarf starting 8 threads; a CI smoke run
    # (--benchmark-disable) only needs to show the count stays exact.
    return 100_000 if benchmark.disabled else 200_000


def hammer(f, args, m):
    """Calls f(*args) m times from each of 8 threads released together; returns after all end."""
    barrier = threading.Barrier(THREADS)

    # Spelled-out calls, not f(*args): a star-call skips vectorcall, which would cost PyO3's
    # optional-argument parsing ~10 ns that a plain `phase.advance()` never pays.
    if args:
        (arg,) = args

        def work():
            barrier.wait()
            for _ in range(m):
                f(arg)
    else:

        def work():
            barrier.wait()
            for _ in range(m):
                f()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_bare(per_item, m):
    per_item("bare", THREADS * m, hammer, lambda: ((0).bit_length, (), m), rounds=10)


def test_milepost_advance(per_item, m):
    runs = []

    def setup():
        if runs:
            runs[-1].finish()
        runs.append(milepost.Run("threads", display="none").start())
        return (runs[-1].phase("map", total=THREADS * m).advance, (), m)

    per_item("milepost", THREADS * m, hammer, setup, rounds=10)
    run = runs[-1]
    run.finish()
    assert run.snapshot().find("map")["done"] == THREADS * m


def test_tqdm_update(per_item, m, devnull, benchmark):
    bars = []

    def setup():
        if bars:
            bars[-1].close()
        bars.append(tqdm(total=THREADS * m, file=devnull))
        return (bars[-1].update, (1,), m)

    per_item("tqdm", THREADS * m, hammer, setup, rounds=10)
    bars[-1].close()
    # tqdm's lock guards drawing, not `self.n += n`, so a thread switch inside update() can lose
    # counts. Recorded, not asserted: it is tqdm's behaviour, not ours.
    benchmark.extra_info["lost_updates"] = THREADS * m - bars[-1].n
