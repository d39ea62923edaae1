"""Child of test_render_cpu.py: a run with 16 busy lanes that does nothing but wait.

usage: child_render.py DISPLAY WINDOW_SECONDS RESULT_PATH
16 threads each bind a lane and hold one item open; the main thread sleeps for the window and
measures this process's CPU time over it, so what is counted is the display's drawing (plus the
idle background threads every run has, which the display="none" baseline also has).
The result goes to RESULT_PATH as JSON: stdout is the terminal the bars are drawn on.
"""

import json
import sys
import threading
import time

import milepost

LANES = 16


def main():
    display, window, result_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    run = milepost.Run("render-bench", display=display, refresh_hz=20, max_lanes=16)
    ready = threading.Barrier(LANES + 1)
    release = threading.Event()
    with run:
        phase = run.phase("work", total=LANES)

        def worker(i):
            with run.lane(f"w{i}"), phase.item(f"item-{i}"):
                ready.wait()
                release.wait()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(LANES)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(0.2)  # past the first frames and thread start-up
        c0, w0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        in_flight = run.snapshot().find("work")["in_flight"]
        release.set()
        for t in threads:
            t.join()
    result = {
        "display": run.display,
        "cpu": cpu,
        "wall": wall,
        "in_flight": in_flight,
        "done": run.snapshot().find("work")["done"],
    }
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
