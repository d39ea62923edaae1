"""Group "iterate": the cost a progress wrapper adds to each step of a `for` loop.

Every contender is drained by the same loop, so the difference to `bare` is the wrapper's
own cost per item, including its start-up and end amortised over N (as a user pays it).
`islice` is a native wrapper doing nothing: the floor for any C wrapper.
"""

import itertools

import pytest
import rich.progress
from rich.console import Console
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="iterate")

N = 200_000


def drain(it):
    # Returns the last item so each test can check that the whole range went through.
    x = None
    for x in it:
        pass
    return x


def test_bare(per_item):
    assert per_item("bare", N, drain, lambda: (range(N),)) == N - 1


def test_islice(per_item):
    assert per_item("islice", N, drain, lambda: (itertools.islice(range(N), None),)) == N - 1


def test_milepost_track(per_item):
    make = lambda: (milepost.track(range(N), display="none"),)  # noqa: E731
    assert per_item("milepost", N, drain, make) == N - 1
    # The timed loop has a run of its own, gone when the loop ends; the same Tracker inside a
    # run we keep shows that every item was counted.
    with milepost.Run("check", display="none") as run:
        drain(milepost.track(range(N), description="loop"))
        assert run.snapshot().find("loop")["done"] == N


def test_milepost_track_in_run(per_item):
    # The same loop as a phase of a run already going: no run to start and finish per loop,
    # so the gap to the row above is the fixed cost of a run of its own, spread over N items.
    with milepost.Run("iterate", display="none") as run:
        make = lambda: (milepost.track(range(N), description="loop"),)  # noqa: E731
        assert per_item("milepost in run", N, drain, make) == N - 1
        # A loop entered again goes on in its phase (its total grows): one phase for every round,
        # each round counted exactly.
        (loop,) = run.snapshot().root["children"]
        assert loop["done"] == loop["total"] and loop["done"] % N == 0 and loop["done"] >= N
        assert run.snapshot().root["done"] == loop["done"]


def test_tqdm(per_item, devnull):
    assert per_item("tqdm", N, drain, lambda: (tqdm(range(N), file=devnull),)) == N - 1


def test_rich_track(per_item, devnull):
    make = lambda: (rich.progress.track(range(N), console=Console(file=devnull)),)  # noqa: E731
    assert per_item("rich", N, drain, make) == N - 1
