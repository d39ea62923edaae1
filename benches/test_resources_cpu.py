"""Group "resources": what sampling the run's resources once a second costs the job, with 32
worker processes (each holding an item) in its tree.

Paired rounds in fresh processes (the order alternates): the job's CPU time over an idle window
with `resources=True` and with `resources=False`; the difference is the sampling, in percent of
one core (goal: under 0.2%). The sampler thread's own time on a CPU (its schedstat) is reported
too: the same cost, read without the rest of the job's noise.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark(group="resources")

CHILD = Path(__file__).with_name("child_resources.py")


def run_child(mode, window, workers, result_path):
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode, str(window), str(workers), str(result_path)],
        capture_output=True,
        text=True,
        timeout=120 + window,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(Path(result_path).read_text(encoding="utf-8"))


def test_sampling_cost_with_32_workers(benchmark, tmp_path):
    window, rounds, workers = (0.3, 1, 4) if benchmark.disabled else (10.0, 5, 32)
    job = {"on": [], "off": []}
    sampler = []

    def ab():
        for r in range(rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                result = run_child(mode, window, workers, tmp_path / f"{mode}-{r}.json")
                assert result["in_flight"] == workers
                job[mode].append(result["cpu"] / result["wall"] * 100)
                if mode == "on":
                    # The whole tree is sampled: the job and every worker, each lane with its figures.
                    assert result["processes"] == workers + 1 and result["lanes_with_figures"] == workers
                    sampler.append(result["sampler_ns"] / 1e9 / result["wall"] * 100)
                else:
                    assert result["processes"] is None and result["sampler_ns"] == 0

    benchmark.pedantic(ab, rounds=1, iterations=1)
    diffs = [on - off for on, off in zip(job["on"], job["off"])]
    benchmark.extra_info["report"] = {
        "worker processes": workers,
        "window s": window,
        "paired rounds": rounds,
        "job CPU, resources off, % of a core (median)": round(statistics.median(job["off"]), 3),
        "job CPU, resources on, % of a core (median)": round(statistics.median(job["on"]), 3),
        "sampling, % of a core (median of paired differences)": round(statistics.median(diffs), 3),
        "spread of paired differences": f"{min(diffs):+.3f}..{max(diffs):+.3f}",
        "sampler thread alone, % of a core (median)": round(statistics.median(sampler), 3),
        "sampler thread, ms a sample": round(statistics.median(sampler) * 10, 2),
    }
