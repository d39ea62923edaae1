"""The cost per item and the projected cost at completion: how right the projection is on a
steady job, what it falls back to, and how each display shows it."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import random
import re
import textwrap
from typing import Any, Dict, List, Tuple

import pyte
import pytest

import milepost
from milepost.monitor.render import cost_line
from procs_helpers import costly

ITEMS = 1000


@pytest.fixture(autouse=True)
def _no_user_prices():
    milepost.prices.clear()
    yield
    milepost.prices.clear()


def _steady_job(seed: int, checkpoints: Tuple[float, ...]) -> Tuple[float, Dict[float, Dict[str, Any]]]:
    """Items priced from random but stationary token counts: the final cost, and the run's
    node as the snapshot had it once each share of the items was done."""
    milepost.set_prices({"steady-model": {"input": 2, "output": 8}})
    rng = random.Random(seed)
    seen: Dict[float, Dict[str, Any]] = {}
    with milepost.Run(f"steady-{seed}", display="none") as run:
        with run.phase("generate", total=ITEMS, unit="persona") as ph:
            for i in range(ITEMS):
                with ph.item(f"persona-{i}") as item:
                    inp, out = int(rng.uniform(500, 1500)), int(rng.lognormvariate(6, 0.5))
                    item.usage("steady-model", input_tokens=inp, output_tokens=out)
                for share in checkpoints:
                    if i + 1 == int(ITEMS * share):
                        seen[share] = run.snapshot().root
    return run.snapshot().root["cost"], seen


def test_on_a_steady_job_the_projection_is_within_10_percent_once_10_percent_is_done() -> None:
    covered = []
    for seed in range(12):
        final, seen = _steady_job(seed, (0.1, 0.25, 0.5))
        for share, root in seen.items():
            projected = root["projected_cost"]
            assert abs(projected["value"] - final) <= 0.1 * final, (seed, share, projected, final)
            assert projected["low"] <= projected["value"] <= projected["high"]
            assert root["cost_per_item"] == pytest.approx(root["cost"] / (ITEMS * share))
            covered.append(projected["low"] <= final <= projected["high"])
    # A ~90% range: the final cost falls inside it at nearly every checkpoint of every seed.
    assert sum(covered) >= 0.8 * len(covered), covered


def test_items_without_a_cost_pull_the_mean_down_and_phases_project_apart() -> None:
    with milepost.Run("mixed", display="none") as run:
        with run.phase("fetch", total=50) as fetch:  # free items, all done before the costly ones
            for i in range(50):
                with fetch.item(f"page-{i}"):
                    pass
        with run.phase("summarize", total=100) as ph:
            for i in range(40):
                with ph.item(f"doc-{i}") as item:
                    if i % 4:  # one item in four is a cache hit: no model call, no cost
                        item.metric("cost_usd", 0.02)
            snap = run.snapshot()
            ph.advance(60)
    summarize = snap.find("summarize")
    assert summarize["cost_per_item"] == pytest.approx(0.015)
    assert summarize["projected_cost"]["value"] == pytest.approx(0.6 + 60 * 0.015)
    # The run heads where its phases do: the free fetch does not lower the summaries' price.
    assert snap.root["projected_cost"]["value"] == pytest.approx(1.5)
    assert snap.root["cost_per_item"] == pytest.approx(0.6 / 90)
    assert snap.find("fetch")["projected_cost"] is None and snap.find("fetch")["cost_per_item"] is None


def test_without_a_total_there_is_no_projection_but_a_cost_per_item() -> None:
    with milepost.Run("open-ended", display="none") as run:
        ph = run.phase("loop")
        for i in range(4):
            with ph.item(f"doc-{i}") as item:
                item.metric("cost_usd", 0.25)
        root = run.snapshot().root
    assert root["projected_cost"] is None and root["cost_per_item"] == 0.25


def test_items_counted_by_worker_processes_scale_the_spend_with_no_range() -> None:
    with milepost.Run("workers", display="none") as run:
        ph = run.phase("map", total=80)
        milepost.process_map(costly, range(40), workers=2, mp_context=mp.get_context("fork"), task=ph)
        root = run.snapshot().root
        node = run.snapshot().find("map")
    # Each item cost 0.01 in its worker: the sums reached the run, the items' own costs did not.
    assert node["cost"] == pytest.approx(0.4)
    assert node["cost_per_item"] == pytest.approx(0.01)
    assert node["projected_cost"] == {"value": pytest.approx(0.8), "low": None, "high": None}
    assert root["projected_cost"] == node["projected_cost"]


# -- displays ----------------------------------------------------------------------------------


def _half_done(run, clock) -> None:
    with run.phase("draft", total=100, unit="doc") as ph:
        for i in range(50):
            clock.advance(0.1)
            with ph.item(f"doc-{i}") as item:
                item.metric("cost_usd", 0.01 if i % 2 else 0.02)
            run.poll()


def test_plain_lines_carry_the_outlook_while_running_and_the_cost_per_item_at_the_end(clock) -> None:
    out = io.StringIO()
    with milepost.Run("ci", display="plain", output=out, interval=1, clock=clock) as run:
        _half_done(run, clock)
    lines = out.getvalue().splitlines()
    running = [line for line in lines if "ci › draft · running" in line]
    assert "· 1/100 · 10.0 doc/s · ETA ? · cost_usd $0.0200 · $0.0200/doc → $2.00" in running[0], "one item: no range"
    outlook = re.compile(r"· cost_usd \$0\.\d{4} · \$0\.01\d\d/doc → \$1\.\d\d \(\$1\.\d\d–1\.\d\d\)$")
    assert all(outlook.search(line) for line in running[1:]), running
    assert lines[-1].endswith("ci › draft · completed 5.0s · 50/100 · cost_usd $0.7500 · $0.0150/doc"), lines[-1]


def test_json_lines_snapshots_carry_the_fields(clock) -> None:
    out = io.StringIO()
    with milepost.Run("machine", display="json", output=out, interval=1, clock=clock) as run:
        _half_done(run, clock)
    snaps = [json.loads(line)["snapshot"] for line in out.getvalue().splitlines() if '"type":"snapshot"' in line]
    mid = snaps[len(snaps) // 2]["root"]
    assert set(mid["projected_cost"]) == {"value", "low", "high"}
    assert mid["cost_per_item"] == pytest.approx(0.015)


def test_the_monitor_header_says_what_the_run_spent_and_where_it_is_heading(clock) -> None:
    with milepost.Run("mon", display="none", clock=clock) as run:
        _half_done(run, clock)
        running = json.loads(run.snapshot().json())["root"]
    assert re.fullmatch(r"cost \$0\.7500 · \$0\.0150/item → \$1\.50 \(\$1\.\d\d–1\.\d\d\)", cost_line(running))
    ended = json.loads(run.snapshot().json())["root"]
    assert cost_line(ended) == "cost $0.7500 · $0.0150/item"
    assert cost_line({**ended, "cost": None}) is None


def _screens(raw: bytes, cols: int, rows: int) -> List[str]:
    """What the terminal showed as the bytes came, a screen after every line drawn (so after
    every frame's last line too, whatever length the frames have)."""
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    shown = []
    for line in raw.splitlines(keepends=True):
        stream.feed(line)
        shown.append("\n".join(line.rstrip() for line in screen.display))
    return shown


def test_the_native_run_line_shows_the_outlook_on_screen(pty_run) -> None:
    code = textwrap.dedent(
        """
        import sys, time, milepost
        with milepost.Run("gen", refresh_hz=20) as run:
            run.phase("setup", total=1).advance()
            with run.phase("draft", total=100, unit="doc") as ph:
                for i in range(50):
                    with ph.item(f"doc-{i}") as item:
                        item.metric("cost_usd", 0.01 if i % 2 else 0.02)
                time.sleep(0.5)
                ph.advance(50)
        """
    )
    res = pty_run(code, cols=120, rows=12)
    assert res.status == 0, res.raw[-2000:]
    outlook = re.compile(
        r"gen · running [\d.]+s · 51/101 · .*cost_usd \$0\.7500 · \$0\.0150/item → \$1\.50 \(\$1\.\d\d–1\."
    )
    assert any(outlook.search(screen) for screen in _screens(res.raw, 120, 12)), res.raw[-3000:]
    # Then what the run's processes used (README, "Resources").
    ended = r"✓ gen · completed [\d.]+s · 101/101 · cost_usd \$0\.7500 · \$0\.0150/item · CPU \d+% · RSS [\d.]+ [kMG]B$"
    assert re.search(ended, res.text, re.M), res.text
