"""Group "work": how much slower a loop doing ~10 µs of real work per item gets when tracked.

A per-item microbenchmark cannot show the cost of the run's background threads (GIL hand-offs,
cache effects), so this is an A/B of whole processes: (A) plain loop, (B) `milepost.track` with
display="none", (C) display="plain" writing to a file. Each round runs A, B and C in fresh
interpreters in a rotating order (so drift on a shared machine hits all three alike); the report
gives medians and the slowdown of B and C against A, by wall time (what a user waits) and by the
child's CPU time (all its threads; less disturbed by other tenants of a shared machine).
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark(group="work")

CHILD = Path(__file__).with_name("child_work.py")
WORK_SECONDS = 10e-6
MODES = ("plain", "track", "track-plain")


def calibrate(seconds=WORK_SECONDS):
    """The K for which the child's work(K) takes `seconds` here (measured once, used by all)."""
    sys.path.insert(0, str(CHILD.parent))
    try:
        from child_work import work
    finally:
        sys.path.pop(0)
    k, reps = 300, 2000
    best = min(_time(work, k, reps) for _ in range(5))
    return max(1, round(k * seconds / best))


def _time(f, k, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        f(k)
    return (time.perf_counter() - t0) / reps


def child(mode, n, k, plain_path):
    # A short plain interval so C really writes lines during the loop, not only at its ends.
    env = {**os.environ, "MILEPOST_INTERVAL": "0.5"}
    out = subprocess.run(
        [sys.executable, str(CHILD), mode, str(n), str(k), str(plain_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_work_slowdown(benchmark, tmp_path):
    # Many short rounds beat few long ones: the median then shrugs off a disturbed round.
    n, rounds = (2_000, 1) if benchmark.disabled else (20_000, 21)
    k = calibrate()
    plain_path = tmp_path / "plain.log"
    seconds = {mode: [] for mode in MODES}
    cpu = {mode: [] for mode in MODES}

    def ab():
        for r in range(rounds):
            for mode in MODES[r % 3 :] + MODES[: r % 3]:
                result = child(mode, n, k, plain_path)
                assert result["items"] == n
                seconds[mode].append(result["seconds"])
                cpu[mode].append(result["cpu"])

    benchmark.pedantic(ab, rounds=1, iterations=1)
    assert "[milepost " in plain_path.read_text(encoding="utf-8")  # C did draw its plain lines
    med = {mode: statistics.median(v) for mode, v in seconds.items()}
    benchmark.extra_info["report"] = {
        "items per process": n,
        "rounds": rounds,
        "work per item (us)": round(med["plain"] / n * 1e6, 2),
        "A plain loop, median s": med["plain"],
        "B track display=none, median s": med["track"],
        "C track display=plain, median s": med["track-plain"],
        # Each round's B and C are compared with that round's A: a paired ratio cancels the
        # drift of a shared machine that medians of separate columns keep.
        "B slowdown vs A, median of rounds (%)": _paired(seconds["track"], seconds["plain"]),
        "C slowdown vs A, median of rounds (%)": _paired(seconds["track-plain"], seconds["plain"]),
        "B-A spread of rounds (%)": _spread(seconds["track"], seconds["plain"]),
        "B CPU slowdown vs A, median of rounds (%)": _paired(cpu["track"], cpu["plain"]),
        "C CPU slowdown vs A, median of rounds (%)": _paired(cpu["track-plain"], cpu["plain"]),
    }


def _paired(b, a):
    return round(statistics.median((x / y - 1) * 100 for x, y in zip(b, a)), 2)


def _spread(b, a):
    """Min..max of the per-round slowdowns: how far to trust the median on this machine."""
    ratios = [(x / y - 1) * 100 for x, y in zip(b, a)]
    return f"{min(ratios):+.2f}..{max(ratios):+.2f}"


def test_item_slowdown_on_50_us_items(benchmark):
    """Issue 16: the 1% budget for items down to about 50 µs. A (plain loop) against D (each
    item in `with ph.item(i)` of a run that keeps every item's row in its history), fresh
    processes taking turns, paired rounds."""
    n, rounds = (500, 1) if benchmark.disabled else (10_000, 15)
    k = calibrate(50e-6)
    seconds = {mode: [] for mode in ("plain", "items")}
    cpu = {mode: [] for mode in ("plain", "items")}

    def ab():
        for r in range(rounds):
            for mode in ("plain", "items") if r % 2 == 0 else ("items", "plain"):
                result = child(mode, n, k, "")
                assert result["items"] == n
                seconds[mode].append(result["seconds"])
                cpu[mode].append(result["cpu"])

    benchmark.pedantic(ab, rounds=1, iterations=1)
    benchmark.extra_info["report"] = {
        "items per process": n,
        "rounds": rounds,
        "work per item (us)": round(statistics.median(seconds["plain"]) / n * 1e6, 2),
        "D items with history, slowdown vs A, median of rounds (%)": _paired(seconds["items"], seconds["plain"]),
        "D-A spread of rounds (%)": _spread(seconds["items"], seconds["plain"]),
        "D CPU slowdown vs A, median of rounds (%)": _paired(cpu["items"], cpu["plain"]),
    }
