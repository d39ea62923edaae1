"""Group "render": CPU the native display's Rust thread takes to draw 16 lanes at 20 Hz.

The child runs under a pseudo-terminal (the native display draws only on a terminal) with a
fixed window size, and idles while its lanes hold items open. Its process CPU over the idle
window, as a percent of one core, is compared with the same child using display="none".
"""

import fcntl
import json
import os
import statistics
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark(group="render")

CHILD = Path(__file__).with_name("child_render.py")
ROWS, COLS = 40, 120  # room for the run, the phase and all 16 lanes


def run_child(display, window, result_path):
    """Runs the child on a fresh pty, draining its output (a full pty buffer would block the
    child's drawing thread); returns the child's result and the bytes it drew."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "MILEPOST_DISPLAY"}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), display, str(window), str(result_path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    drawn = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side has closed it
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=60 + window)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        os.close(master)
    assert code == 0, drawn.decode(errors="replace")[-2000:]
    return json.loads(Path(result_path).read_text(encoding="utf-8")), bytes(drawn)


def test_render_cpu(benchmark, tmp_path):
    window, rounds = (1.0, 1) if benchmark.disabled else (3.0, 2)
    cpu_pct = {"native": [], "none": []}
    drawn_kb = []

    def ab():
        for r in range(rounds):
            for display in ("native", "none") if r % 2 == 0 else ("none", "native"):
                result, drawn = run_child(display, window, tmp_path / f"{display}-{r}.json")
                assert result["display"] == display  # native really drew, not plain fallback
                assert result["in_flight"] == 16 and result["done"] == 16
                cpu_pct[display].append(result["cpu"] / result["wall"] * 100)
                if display == "native":
                    assert b"w15" in drawn  # all 16 lanes reached the screen
                    drawn_kb.append(len(drawn) / 1024)

    benchmark.pedantic(ab, rounds=1, iterations=1)
    native, none = statistics.median(cpu_pct["native"]), statistics.median(cpu_pct["none"])
    benchmark.extra_info["report"] = {
        "window s": window,
        "rounds": rounds,
        "native, % of a core": round(native, 3),
        "none (baseline), % of a core": round(none, 3),
        "drawing, % of a core (native - none)": round(native - none, 3),
        "KB drawn per native child (whole life)": round(statistics.median(drawn_kb), 1),
    }
