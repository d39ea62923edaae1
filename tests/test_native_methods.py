"""The counting calls as users write them (`ph.advance()`, `bar.update(1)`) are methods of the
native type: every way of calling them counts, bad input is refused naming it with nothing
counted lost, a subclass inherits them (or keeps its own), and they are exact from threads."""

from __future__ import annotations

import io
import math
import threading

import pytest

import milepost
from milepost import InvalidValueError, RunEndedError
from milepost.task import Task


@pytest.fixture
def run(clock):
    r = milepost.Run("native", display="none", clock=clock).start()
    yield r
    r.finish()


def test_every_way_of_calling_advance_and_skip_counts(run) -> None:
    ph = run.phase("p")
    ph.advance()
    ph.advance(3)
    ph.advance(n=2)  # a keyword
    Task.advance(ph, 5)  # through the class
    bound = ph.advance
    bound()
    ph.skip()
    ph.skip(n=4)
    ph.advance(True)  # an int, as Python sees it
    assert (ph.done, ph.skipped) == (13, 5)
    assert run.snapshot().find("p")["done"] == 13


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ("x", TypeError, r"advance\(n\) must be an int, got 'x'"),
        (1.5, TypeError, r"advance\(n\) must be an int, got 1\.5"),
        (None, None, None),  # None is the default: it counts 1
        (-2, InvalidValueError, r"advance\(n\) must be >= 0, got -2"),
        (2**70, InvalidValueError, r"advance\(n\) .*1180591620717411303424"),
    ],
)
def test_a_bad_amount_is_refused_naming_it_and_loses_nothing(run, bad, error, message) -> None:
    ph = run.phase("p")
    ph.advance(4)
    if error is None:
        ph.advance(bad)
        assert ph.done == 5
        return
    with pytest.raises(error, match=message):
        ph.advance(bad)
    with pytest.raises(TypeError):
        ph.advance(1, 2)
    with pytest.raises(TypeError, match="count"):
        ph.advance(count=1)
    with pytest.raises(TypeError):
        Task.advance(object())  # not a task
    assert ph.done == 4 and run.snapshot().find("p")["done"] == 4


def test_a_run_subclass_inherits_the_native_methods_or_keeps_its_own(clock) -> None:
    seen = []

    class Plain(milepost.Run):
        pass

    class Logged(milepost.Run):
        def advance(self, n: int = 1) -> None:  # a subclass's own advance wins
            seen.append(n)
            super().advance(n)

    class LoggedAgain(Logged):
        pass

    for cls in (Plain, Logged, LoggedAgain):
        with cls("sub", display="none", clock=clock) as r:
            r.advance()
            r.advance(2)
            r.skip()
            assert r.snapshot().root["done"] == 3 and r.snapshot().root["skipped"] == 1
    assert seen == [1, 2, 1, 2]


def test_an_ended_run_refuses_advance_and_keeps_its_counts(clock) -> None:
    r = milepost.Run("ended", display="none", clock=clock).start()
    ph = r.phase("p")
    ph.advance(2)
    r.finish()
    with pytest.raises(RunEndedError, match=r"advance\(n\)"):
        ph.advance()
    assert r.snapshot().find("p")["done"] == 2


@pytest.mark.parametrize("make", ["track", "tqdm"])
def test_update_on_the_manual_bars_counts_whole_items_as_tqdm(clock, make) -> None:
    with milepost.Run("bars", display="none", clock=clock):
        bar = milepost.track(total=20, description="b") if make == "track" else milepost.tqdm(total=20, desc="b")
        bar.update()
        bar.update(3)
        bar.update(2.7)  # tqdm takes floats: the whole part counts, the fraction is carried
        bar.update(0)
        bar.update(n=1)
        assert bar.n == 7
        bar.update(0.5)  # 0.7 + 0.5: one more whole item
        bar.update(None)  # tqdm's default
        assert bar.n == 9
        with pytest.raises(TypeError, match=r"advance\(n\) must be an int, got '3'"):
            bar.update("3")
        with pytest.raises(InvalidValueError, match=r"update\(n\) must be >= 0 .*got -1"):
            bar.update(-1)
        with pytest.raises(InvalidValueError, match=r"update\(n\) must be >= 0 .*got -0.5"):
            bar.update(-0.5)
        with pytest.raises((InvalidValueError, TypeError), match="nan"):
            bar.update(math.nan)
        with pytest.raises((InvalidValueError, TypeError), match="inf"):
            bar.update(math.inf)
        assert bar.n == 9  # nothing already counted is lost
        bar.close()


@pytest.mark.parametrize("make", ["track", "tqdm"])
def test_a_bar_whose_run_ended_refuses_update_but_zero(make) -> None:
    bar = milepost.track(total=3, display="none") if make == "track" else milepost.tqdm(total=3, file=io.StringIO())
    bar.update(2)
    bar.close()  # a bar alone has a run of its own, which this ends
    bar.update(0)  # nothing to count: no error, as in tqdm
    with pytest.raises(RunEndedError, match=r"advance\(n\)"):
        bar.update()
    assert bar.n == 2


def test_a_disabled_tqdm_counts_n_only() -> None:
    bar = milepost.tqdm(total=5, disable=True)
    bar.update()
    bar.update(2)
    bar.update(1.5)
    assert (bar.n, bar.total) == (4, 5)
    assert milepost.current_run() is None


def test_eight_threads_updating_one_bar_are_exact() -> None:
    with milepost.Run("bar-threads", display="none") as r:
        bar = milepost.track(total=800_000, description="bar")
        barrier = threading.Barrier(8)

        def hammer() -> None:
            barrier.wait()
            for _ in range(100_000):
                bar.update(1)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert bar.n == 800_000 and r.snapshot().find("bar")["done"] == 800_000
