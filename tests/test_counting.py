"""Counts are exact: through track(), advance(), items, threads, and the roll-up of the tree."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

import milepost


def test_track_counts_every_item_and_ends_its_run() -> None:
    seen = []
    it = milepost.track(range(1000), description="loop", display="none")
    assert len(it) == 1000
    for x in it:
        seen.append(x)
    assert seen == list(range(1000))
    run = milepost.current_run()
    assert run is None, "a bare track() ends its own run when the loop ends"


def test_track_inside_a_run_becomes_a_phase_and_counts_like_tqdm(clock) -> None:
    with milepost.Run("job", display="none", clock=clock) as run:
        for i in milepost.track(range(10), desc="first"):
            if i == 0:
                # An item is done when the loop asks for the next one, as in tqdm.
                assert run.snapshot().find("first")["done"] == 0
        phase = run.snapshot().find("first")
        assert (phase["done"], phase["total"], phase["state"]) == (10, 10, "completed")
        for _ in milepost.track(iter(range(5)), desc="no-len"):
            pass
        assert run.snapshot().find("no-len")["total"] is None
        assert run.snapshot().root["done"] == 15


def test_break_leaves_the_unfinished_item_uncounted(clock) -> None:
    with milepost.Run("job", display="none", clock=clock) as run:
        for i in milepost.track(range(100), desc="loop"):
            if i == 41:
                break
        snap = run.snapshot().find("loop")
        assert snap["done"] == 41


def test_initial_disable_and_tqdm_keywords() -> None:
    with milepost.Run("job", display="none") as run:
        for _ in milepost.track(range(5), desc="x", initial=3, ncols=80, mininterval=0.1, leave=False):
            pass
        assert run.snapshot().find("x")["done"] == 8
    plain = milepost.track([1, 2], disable=True)
    assert list(plain) == [1, 2]


def test_unknown_keyword_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(TypeError, match="colr"):
        milepost.track(range(3), colr="red")


def test_eight_threads_times_a_million_advances_are_exact() -> None:
    with milepost.Run("threads", display="none") as run:
        phase = run.phase("hammer")
        barrier = threading.Barrier(8)

        def hammer() -> None:
            barrier.wait()
            for _ in range(1_000_000):
                phase.advance()  # as users write it: the native method found on the type

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert run.snapshot().find("hammer")["done"] == 8_000_000


def test_roll_up_across_phases_and_steps(clock) -> None:
    with milepost.Run("tree", display="none", clock=clock) as run:
        with run.phase("map", total=10) as ph:
            ph.advance(2)
            with ph.step("left", total=4) as left:
                left.advance(3)
                left.fail("x", "boom")
            right = ph.step("right")
            right.skip(2)
            right.retry("y")
            right.metric("tokens", 100)
            ph.metric("tokens", 5)
            ph.metric("cost_usd", 0.5)
        snap = run.snapshot()
        m = snap.find("map")
        assert (m["done"], m["failed"], m["skipped"], m["retried"], m["processed"]) == (5, 1, 2, 1, 8)
        assert m["metrics"] == {"tokens": 105, "cost_usd": 0.5}
        assert snap.root["metrics"] == {"tokens": 105, "cost_usd": 0.5}
        assert snap.find("left")["state"] == "completed"
        assert snap.root["total"] == 10


def test_total_can_grow_and_change(clock) -> None:
    with milepost.Run("grow", display="none", clock=clock) as run:
        ph = run.phase("crawl")
        assert run.snapshot().find("crawl")["total"] is None
        ph.add_total(10)
        ph.add_total(5)
        assert run.snapshot().find("crawl")["total"] == 15
        ph.set_total(7)
        ph.advance(7)
        assert run.snapshot().find("crawl")["fraction"] == 1.0


ops = st.lists(
    st.tuples(st.sampled_from(["advance", "skip", "fail", "retry", "metric"]), st.integers(0, 50)),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_counters_match_a_model(seq) -> None:
    run = milepost.Run("prop", display="none", clock=lambda: 0.0).start()
    ph = run.phase("p")
    model = {"done": 0, "skipped": 0, "failed": 0, "retried": 0, "m": 0}
    for op, n in seq:
        if op == "advance":
            ph.advance(n)
            model["done"] += n
        elif op == "skip":
            ph.skip(n)
            model["skipped"] += n
        elif op == "fail":
            ph.fail(f"item-{n}", "err")
            model["failed"] += 1
        elif op == "retry":
            ph.retry()
            model["retried"] += 1
        else:
            ph.metric("m", n)
            model["m"] += n
    snap = run.snapshot().find("p")
    run.finish()
    assert {k: snap[k] for k in ("done", "skipped", "failed", "retried")} == {
        k: model[k] for k in ("done", "skipped", "failed", "retried")
    }
    assert snap["metrics"].get("m", 0) == model["m"]
