"""Child of test_resources_cpu.py: a run with WORKERS worker processes, each holding an item open,
that does nothing but wait, sampling its resources (`on`) or not (`off`).

usage: child_resources.py on|off WINDOW_SECONDS WORKERS RESULT_PATH
Once every worker holds its item (and the first samples are past), the main thread sleeps for
the window and measures this process's CPU time over it (every thread of the job: the ticker,
the dispatcher, and with `on` the resource sampler), and the sampler thread's own time on a CPU
(its schedstat, in nanoseconds). The result goes to RESULT_PATH as JSON.
"""

import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import milepost

SAMPLER = "milepost-resour"  # the thread's name as the kernel keeps it (15 characters)


def hold(task, stop):
    """A worker's item, open until the stop file appears (looked for five times a second)."""
    with task.item(f"hold-{os.getpid()}"):
        while not os.path.exists(stop):
            time.sleep(0.2)


def sampler_ns():
    """Nanoseconds the resource sampler thread has spent on a CPU (0 when there is none)."""
    for task in os.listdir("/proc/self/task"):
        try:
            if Path(f"/proc/self/task/{task}/comm").read_text().strip() == SAMPLER:
                return int(Path(f"/proc/self/task/{task}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return 0


def main():
    mode, window, workers, result_path = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    stop = result_path + ".stop"
    with milepost.Run("resources-bench", display="none", history=False, resources=mode == "on") as run:
        phase = run.phase("hold", total=workers)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(hold, phase, stop) for _ in range(workers)]
            deadline = time.monotonic() + 60
            while run.snapshot().find("hold")["in_flight"] < workers and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.2)  # past the first samples
            c0, w0, s0 = time.process_time(), time.perf_counter(), sampler_ns()
            time.sleep(window)
            cpu, wall, own = time.process_time() - c0, time.perf_counter() - w0, sampler_ns() - s0
            snap = run.snapshot().data
            Path(stop).touch()
            for f in futures:
                f.result()
    resources = snap["resources"]
    result = {
        "mode": mode,
        "cpu": cpu,
        "wall": wall,
        "sampler_ns": own,
        "in_flight": snap["root"]["in_flight"],
        "processes": resources["processes"] if resources else None,
        "lanes_with_figures": sum(1 for lane in snap["lanes"] if lane["rss_bytes"] is not None),
    }
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
