"""Group "iterate": the cost a progress wrapper adds to each step of a `for` loop.

Every contender is drained by the same loop, so the difference to `bare` is the wrapper's
own cost per item, including its end amortised over N (as a user pays it). `islice` is a
native wrapper doing nothing: the floor for any C wrapper, and the table's `floor`. The
contenders take turns, round after round, in one test (see `interleaved`).
"""

import itertools

import pytest
import rich.progress
from rich.console import Console
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="iterate")

N = 200_000


def drain(it, *_):
    # Returns the last item so that the test can check that the whole range went through.
    x = None
    for x in it:
        pass
    return x


def in_a_run():
    # The same loop as a phase of a run already going: no run to start and finish with the
    # loop, so the gap to `milepost` is the end of a run of its own, spread over N items.
    run = milepost.Run("iterate", display="none").__enter__()
    return (milepost.track(range(N), description="loop"), run)


def leave_the_run(it, run):
    run.__exit__(None, None, None)
    loop = run.snapshot().find("loop")
    assert loop["done"] == loop["total"] == N and run.snapshot().root["done"] == N


def test_iterate(interleaved, devnull):
    last = interleaved(
        {
            "bare": (drain, lambda: (range(N),)),
            "islice": (drain, lambda: (itertools.islice(range(N), None),)),
            # A loop alone: a run of its own, which ends when the loop does.
            "milepost": (drain, lambda: (milepost.track(range(N), display="none"),)),
            "milepost in run": (drain, in_a_run, leave_the_run),
            "tqdm": (drain, lambda: (tqdm(range(N), file=devnull),)),
            "rich": (drain, lambda: (rich.progress.track(range(N), console=Console(file=devnull)),)),
        },
        N,
        floor="islice",
        floor_by="ns",
    )
    assert all(x == N - 1 for x in last.values()), last
    # The timed loop's run is gone when the loop ends; the same Tracker inside a run we keep
    # shows that every item was counted.
    with milepost.Run("check", display="none") as run:
        drain(milepost.track(range(N), description="loop"))
        assert run.snapshot().find("loop")["done"] == N
