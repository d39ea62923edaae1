"""ETA, rate and elapsed as the snapshot reports them, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import heapq
import math
import random
import re
from typing import List

import milepost


def test_steady_rate_gives_a_right_eta_inside_its_range(clock) -> None:
    with milepost.Run("eta", display="none", clock=clock) as run:
        ph = run.phase("p", total=1000)
        for _ in range(300):
            clock.advance(0.1)
            ph.advance(1)
            run.poll()
        p = run.snapshot().find("p")
        assert abs(p["rate"] - 10.0) < 0.5
        assert abs(p["eta"] - 70.0) < 3.0
        assert p["eta_low"] <= p["eta"] <= p["eta_high"]
        assert abs(p["elapsed"] - 30.0) < 1e-6


def test_no_eta_before_there_is_anything_to_go_on(clock) -> None:
    with milepost.Run("eta", display="none", clock=clock) as run:
        run.phase("p", total=100)
        clock.advance(5)
        p = run.snapshot().find("p")
        assert (p["eta"], p["rate"]) == (None, None)
        assert "ETA ?" in run.snapshot().frame()[0]  # one phase: one line


def test_unknown_total_shows_rate_without_eta(clock) -> None:
    with milepost.Run("eta", display="none", clock=clock) as run:
        ph = run.phase("p")
        for _ in range(50):
            clock.advance(0.5)
            ph.advance(5)
            run.poll()
        p = run.snapshot().find("p")
        assert p["eta"] is None and abs(p["rate"] - 10.0) < 0.5


def test_finished_phase_has_no_eta_and_frozen_elapsed(clock) -> None:
    with milepost.Run("eta", display="none", clock=clock) as run:
        with run.phase("p", total=2) as ph:
            clock.advance(3)
            ph.advance(2)
        clock.advance(100)
        p = run.snapshot().find("p")
        assert p["state"] == "completed" and p["eta"] is None and p["elapsed"] == 3.0


def test_every_renderer_shows_the_same_eta_from_the_snapshot(clock) -> None:
    import io
    import json

    from milepost.renderers.jsonl import JsonLinesRenderer
    from milepost.renderers.plain import PlainRenderer

    plain, jsonl = io.StringIO(), io.StringIO()
    observers = [PlainRenderer(plain, interval=1000), JsonLinesRenderer(jsonl, interval=1000)]
    run = milepost.Run("same", display="none", clock=clock, observers=observers).start()
    ph = run.phase("p", total=1000)
    ph2 = run.phase("other")  # two phases: the frame has a line per phase
    for _ in range(200):
        clock.advance(0.1)
        ph.advance()
        run.poll()
    snap = run.snapshot()
    node = snap.find("p")
    eta_text = milepost._milepost.format_eta(node["eta"], node["eta_low"], node["eta_high"])
    assert eta_text.startswith("ETA ") and "(" in eta_text, "a range is shown where there is room"
    frame_line = next(line for line in snap.frame(width=200) if " p " in line)
    assert eta_text in frame_line
    observers[0].on_snapshot(snap)
    observers[1].on_snapshot(snap)
    assert eta_text in plain.getvalue()
    line = json.loads(jsonl.getvalue().splitlines()[-1])["snapshot"]["root"]["children"][0]
    assert (line["eta"], line["eta_low"], line["eta_high"]) == (node["eta"], node["eta_low"], node["eta_high"])
    ph2.end()
    run.finish()


def test_a_stall_shows_as_stalled_not_as_a_wild_eta(clock) -> None:
    with milepost.Run("stall", display="none", clock=clock) as run:
        ph = run.phase("p", total=1000)
        run.phase("q")
        for _ in range(100):
            clock.advance(0.25)
            ph.advance()
            run.poll()
        for _ in range(240):  # a minute with nothing done
            clock.advance(0.25)
            run.poll()
        p = run.snapshot().find("p")
        assert p["eta"] is None and p["stalled_for"] > 50
        assert p["eta_low"] > 0, "a lower bound still holds"
        frame = "\n".join(run.snapshot().frame(width=200))
        assert re.search(r"p .* · stalled (59s|1m00s)", frame), frame


def test_a_steady_pace_gets_a_narrow_range_that_holds_the_truth(clock) -> None:
    # Items of 0.1 s +-20%: halfway, the ETA is known to about a percent, and so is its range
    # (a few percent more on the high side for what the counts cannot show yet).
    rng = random.Random(3)
    durations = [0.1 * rng.uniform(0.8, 1.2) for _ in range(1000)]
    with milepost.Run("steady", display="none", clock=clock) as run:
        ph = run.phase("p", total=1000)
        for d in durations[:500]:
            clock.advance(d)
            ph.advance()
            run.poll()
        p = run.snapshot().find("p")
        truth = sum(durations[500:])
        assert abs(p["eta"] - truth) < 0.03 * truth
        assert p["eta_low"] <= truth <= p["eta_high"]
        assert p["eta_high"] / p["eta_low"] < 1.25, (p["eta_low"], p["eta_high"])


def _pool(seed: int, n: int, workers: int = 16) -> List[float]:
    """Completion times of `workers` workers taking items of lognormal durations (median 8 s)."""
    rng = random.Random(seed)
    free = [0.0] * workers
    out = []
    for _ in range(n):
        start = heapq.heappop(free)
        out.append(start + rng.lognormvariate(0.0, 1.0) * 8.0)
        heapq.heappush(free, out[-1])
    return sorted(out)


def test_a_noisy_but_stationary_pace_is_averaged_not_chased(clock) -> None:
    # Many workers, heavy-tailed items: completions come in clumps and droughts. The ETA keeps
    # to the long-run average pace instead of following each clump.
    checks = []
    for seed in range(3):
        times = _pool(seed, 1200)
        with milepost.Run("pool", display="none", clock=clock) as run:
            start = clock()
            ph = run.phase("p", total=len(times))
            for done, t in enumerate(times, 1):
                clock.advance(start + t - clock())
                ph.advance()
                run.poll()
                if done % 60 == 0 and 120 <= done <= 1080:
                    eta = run.snapshot().find("p")["eta"]
                    average = (len(times) - done) * t / done
                    checks.append(abs(math.log(eta / average)) < 0.1)
    assert sum(checks) >= 0.95 * len(checks), f"{sum(checks)} of {len(checks)} ETAs near the long-run average"


def test_near_the_end_of_a_long_run_the_range_stays_about_what_is_left(clock) -> None:
    # 2,000 items a second apart, noisy: at 99% done about 20 s are left; the allowance for
    # what the counts cannot show (a few percent of the run's length, ~100 s here) must not
    # make the high end several times the ETA.
    rng = random.Random(7)
    with milepost.Run("eta", display="none", history=False, clock=clock) as run:
        ph = run.phase("p", total=2000)
        for _ in range(1980):
            clock.advance(rng.uniform(0.8, 1.2))
            ph.advance(1)
            run.poll()
        p = run.snapshot().find("p")
    assert 15 < p["eta"] < 25 and p["eta_low"] <= 20 <= p["eta_high"], p
    assert p["eta_high"] <= 2.5 * p["eta"], p
