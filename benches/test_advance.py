"""Group "advance": one counter update a loop step, written as users write it.

Every call is spelled out in the loop (`ph.advance()`, `bar.update(1)`: attribute access on the
object each time, nothing bound to a local first), so the difference to `bare` is what the call
costs where it is written. `C call` is a C method called the same way (`s.discard(1)`, a set
method with one argument): the floor for any method call from Python, and the table's `floor`.
The contenders take turns, round after round, in one test (see `interleaved`).
"""

import pytest
from rich.console import Console
from rich.progress import Progress
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="advance")

N = 200_000


def empty(n):
    for _ in range(n):
        pass


def discard(s, n):
    for _ in range(n):
        s.discard(1)


def advance(ph, n):
    for _ in range(n):
        ph.advance()


def update(bar, n):
    for _ in range(n):
        bar.update(1)


def rich_advance(progress, task, n):
    for _ in range(n):
        progress.advance(task)


def in_a_run():
    # A run entered as `with milepost.Run(...)` enters it, left after its round (its background
    # threads stop then, instead of piling up and competing for the GIL).
    run = milepost.Run("advance", display="none").__enter__()
    return (run.phase("map", total=N), N)


def leave_the_run(ph, n):
    run = ph.run
    run.__exit__(None, None, None)
    assert run.snapshot().find("map")["done"] == n and run.snapshot().root["done"] == n


def closed(bar, n):
    assert bar.n == n
    bar.close()


def test_advance_as_written(interleaved, devnull):
    def rich_setup():
        # Not started and no auto-refresh: advance() does the same bookkeeping either way
        # (lock, count, speed sample); drawing would happen on rich's own refresh thread.
        progress = Progress(console=Console(file=devnull), auto_refresh=False)
        return (progress, progress.add_task("map", total=N), N)

    def rich_done(progress, task, n):
        assert progress.tasks[task].completed == n

    interleaved(
        {
            "bare": (empty, lambda: (N,)),
            "C call": (discard, lambda: (set(), N)),
            "milepost ph.advance()": (advance, in_a_run, leave_the_run),
            # tqdm's manual bar, `track(total=N)`: a run of its own, ended by `close()`.
            "milepost bar.update(1)": (update, lambda: (milepost.track(total=N, display="none"), N), closed),
            # `from milepost import tqdm` with tqdm's own code: its manual bar.
            "milepost.tqdm update(1)": (update, lambda: (milepost.tqdm(total=N, file=devnull), N), closed),
            "tqdm": (update, lambda: (tqdm(total=N, file=devnull), N), closed),
            "rich": (rich_advance, rich_setup, rich_done),
        },
        N,
        floor="C call",
        floor_by="ratio",
    )
