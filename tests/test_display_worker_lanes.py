"""Worker lanes that died or stalled, as the terminal displays show them: real worker processes,
one killed with SIGKILL in an item and one silent in its item past `stall_after`."""

from __future__ import annotations

import io
import multiprocessing as mp
import re
import textwrap
import threading
import time

import milepost
from procs_helpers import hold_item

# Three items done, then killed inside the fourth; a second worker sits in its item, silent,
# until after the run has ended (the test kills it then).
JOB = textwrap.dedent(
    """
    import multiprocessing as mp, os, signal, time, milepost
    FORK = mp.get_context("fork")

    def die_in_fourth(task):
        for i in range(3):
            with task.item(f"ok-{i}"):
                pass
        with task.item("doomed.json"):
            os.kill(os.getpid(), signal.SIGKILL)

    def hold(task):
        with task.item("slow.json"):
            time.sleep(30)

    with milepost.Run("lanes", refresh_hz=20, stall_after=0.5, display=DISPLAY) as run:
        ph = run.phase("work", total=10)
        dead = FORK.Process(target=die_in_fourth, args=(ph,))
        dead.start(); dead.join()
        holder = FORK.Process(target=hold, args=(ph,))
        holder.start()
        time.sleep(1.5)
    holder.kill(); holder.join()
    """
)


def _die_in_fourth(task: milepost.Task) -> None:
    import os
    import signal

    for i in range(3):
        with task.item(f"ok-{i}"):
            pass
    with task.item("doomed.json"):
        os.kill(os.getpid(), signal.SIGKILL)


def test_native_display_shows_a_dead_and_a_stalled_worker(pty_run) -> None:
    res = pty_run(JOB.replace("DISPLAY", "'native'"), cols=100, rows=30, timeout=60)
    assert res.status == 0, res.raw[-2000:]
    text = res.text
    # The final frame: the run's lanes as they ended.
    assert re.search(r"pid \d+ died \(3 done, 1 failed\)", text), text
    assert re.search(r"pid \d+ stalled [\d.]+s ▸ slow\.json \(0 done\)", text), text
    assert not re.search(r"pid \d+ idle", text), "a dead worker is not idle"
    assert "doomed.json: worker died (pid" in text


def test_a_dead_lane_is_shown_before_busy_ones_are_folded() -> None:
    # Eight threads busy in an item and max_lanes=3: the dead worker's lane is among those
    # shown, and the fold line counts the rest.
    fork = mp.get_context("fork")
    go = threading.Event()
    with milepost.Run("fold", display="none") as run:
        ph = run.phase("work")

        def busy(i: int) -> None:
            with run.lane(f"t{i}"), ph.item(f"busy-{i}"):
                go.wait(10)

        threads = [threading.Thread(target=busy, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        dead = fork.Process(target=_die_in_fourth, args=(ph,))
        dead.start()
        dead.join()
        time.sleep(0.6)  # the parent notices the death at its next sample (4 a second)
        lines = run.snapshot().frame(100, 30, 3)
        go.set()
        for t in threads:
            t.join()
    text = "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines)
    assert re.search(r"pid \d+ died \(3 done, 1 failed\)", text), text
    assert "… 7 more lanes" in text, text


def test_rich_display_shows_a_dead_and_a_stalled_worker() -> None:
    out = io.StringIO()
    fork = mp.get_context("fork")
    with milepost.Run("lanes", display="rich", output=out, stall_after=0.5) as run:
        ph = run.phase("work", total=10)
        dead = fork.Process(target=_die_in_fourth, args=(ph,))
        dead.start()
        dead.join()
        holder = fork.Process(target=hold_item, args=(ph, 30.0))
        holder.start()
        time.sleep(1.5)
    holder.kill()
    holder.join()
    text = out.getvalue()
    assert re.search(r"pid \d+ died \(3 done, 1 failed\)", text), text
    assert re.search(r"pid \d+ stalled [\d.]+s ▸ slow\.json \(0 done\)", text), text
