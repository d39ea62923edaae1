"""ETA, rate and elapsed as the snapshot reports them, driven by a fake clock (no sleeps)."""

from __future__ import annotations

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
