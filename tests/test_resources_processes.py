"""Resource figures of real worker processes: a worker burning a core, one holding 300 MB, a
grandchild counted in the tree, workers that exit leaving the totals. Each waits with a
deadline for the sample it expects (a loaded two-core machine can starve a worker for a
moment), and every worker stops as soon as the test has seen what it needs."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

import milepost
from milepost.snapshot import LaneData, ResourcesData
from resources_helpers import burn, churn, hold_memory, with_grandchild

FORK = mp.get_context("fork")
MIB = 2**20
Seen = Tuple[ResourcesData, List[LaneData]]


@pytest.fixture(autouse=True)
def shm_dir(tmp_path, monkeypatch) -> None:
    d = tmp_path / "shm"
    d.mkdir()
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(d))


@pytest.fixture
def stop(tmp_path) -> Iterator[str]:
    """A file whose appearance tells the workers to stop (made at the end whatever happens)."""
    path = tmp_path / "stop"
    yield str(path)
    path.touch()


def _watch(
    run: milepost.Run, check: Callable[[ResourcesData, List[LaneData]], bool], busy: Optional[Future] = None
) -> Seen:
    """The first sample `check` accepts, within 10 s; the parent sleeps between looks, so that
    its own CPU stays out of the way. Fails at once if the worker's call `busy` ended."""
    deadline = time.monotonic() + 10.0
    seen: Optional[Seen] = None
    while time.monotonic() < deadline:
        data = run.snapshot().data
        if data["resources"] is not None:
            seen = (data["resources"], data["lanes"])
            if check(*seen):
                return seen
        if busy is not None and busy.done():
            busy.result()
            raise AssertionError("the worker ended before the sample was seen")
        time.sleep(0.05)
    raise AssertionError(f"no sample as expected within 10 s; the last: {seen}")


def _lane(lanes: List[LaneData], pid: int) -> Optional[LaneData]:
    return next((lane for lane in lanes if lane["pid"] == pid and lane["state"] not in ("finished", "died")), None)


def _settings() -> dict:
    return {"interval": 0.5}


def test_a_worker_burning_a_core_shows_about_100_percent_and_the_run_total_rises(stop) -> None:
    with milepost.Run("burn", display="none", history=False, resources=_settings()) as run:
        with ProcessPoolExecutor(1, mp_context=FORK) as pool:
            pid = pool.submit(os.getpid).result()
            idle, _ = _watch(run, lambda r, _: r["cpu_percent"] is not None and r["processes"] >= 2)
            busy = pool.submit(burn, run, stop)

            def burning(r: ResourcesData, lanes: List[LaneData]) -> bool:
                lane = _lane(lanes, pid)
                return lane is not None and 80 <= (lane["cpu_percent"] or 0) <= 120

            r, lanes = _watch(run, burning, busy)
            Path(stop).touch()
            busy.result()
    lane = _lane(lanes, pid)
    assert lane is not None and lane["name"] == f"pid {pid}" and lane["item"] == "burn"
    assert r["cpu_percent"] is not None and r["cpu_percent"] >= lane["cpu_percent"], "the total holds the lane"
    assert idle["cpu_percent"] is not None and r["cpu_percent"] >= idle["cpu_percent"] + 60
    assert r["machine_cpu_percent"] == pytest.approx(r["cpu_percent"] / r["cores"])
    assert lane["rss_bytes"] is not None and lane["rss_bytes"] > 0
    # Thread lanes have no process of their own.
    with milepost.Run("threads", display="none", history=False) as run, run.lane("t") as _:
        (thread_lane,) = run.snapshot().data["lanes"]
    assert (thread_lane["pid"], thread_lane["cpu_percent"], thread_lane["rss_bytes"]) == (None, None, None)


def test_a_worker_holding_300_mb_shows_it_on_its_lane_and_leaves_the_totals_when_it_exits(stop) -> None:
    with milepost.Run("memory", display="none", history=False, resources=_settings()) as run:
        before, _ = _watch(run, lambda r, _: True)
        with ProcessPoolExecutor(1, mp_context=FORK) as pool:
            pid = pool.submit(os.getpid).result()
            busy = pool.submit(hold_memory, run, 300, stop)

            def holding(r: ResourcesData, lanes: List[LaneData]) -> bool:
                lane = _lane(lanes, pid)
                return lane is not None and (lane["rss_bytes"] or 0) >= 300 * MIB

            r, lanes = _watch(run, holding, busy)
            Path(stop).touch()
            busy.result()
        # The pool is shut down: its worker has exited.
        after, lanes_after = _watch(run, lambda r, _: r["processes"] == before["processes"])
    assert r["rss_bytes"] is not None and r["rss_bytes"] >= 300 * MIB + before["rss_bytes"] * 0.5
    assert r["processes"] == before["processes"] + 1
    assert after["rss_bytes"] is not None and after["rss_bytes"] < r["rss_bytes"] - 250 * MIB
    assert after["peak_rss_bytes"] >= 300 * MIB, "the peak stays"
    gone = [lane for lane in lanes_after if lane["pid"] == pid]
    assert gone and all(lane["cpu_percent"] is None and lane["rss_bytes"] is None for lane in gone)


def test_a_grandchild_process_is_counted_in_the_tree(stop) -> None:
    with milepost.Run("tree", display="none", history=False, resources=_settings()) as run:
        before, _ = _watch(run, lambda r, _: True)
        with ProcessPoolExecutor(1, mp_context=FORK) as pool:
            pid = pool.submit(os.getpid).result()
            # The worker's own memory before its child, as the kernel says it: a fork of a test
            # session that imported much is large already.
            own_before = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            busy = pool.submit(with_grandchild, run, 200, stop)

            def counted(r: ResourcesData, lanes: List[LaneData]) -> bool:
                lane = _lane(lanes, pid)
                own = (lane or {}).get("rss_bytes") or 0
                return r["processes"] == before["processes"] + 2 and (r["rss_bytes"] or 0) >= own + 200 * MIB

            r, lanes = _watch(run, counted, busy)
            Path(stop).touch()
            busy.result()
    lane = _lane(lanes, pid)
    assert lane is not None and lane["rss_bytes"] is not None and lane["rss_bytes"] < own_before + 100 * MIB, (
        "a lane is its own process: the grandchild counts in the tree, not in the lane"
    )


def test_processes_that_come_and_go_between_samples_break_nothing() -> None:
    with milepost.Run("churn", display="none", history=False, resources={"interval": 0.1}) as run:
        first, _ = _watch(run, lambda r, _: True)
        with ProcessPoolExecutor(2, mp_context=FORK) as pool:
            futures = [pool.submit(churn, run, 150) for _ in range(2)]
            while not all(f.done() for f in futures):
                run.snapshot()  # snapshots read the board while the sampler writes it
                time.sleep(0.01)
            assert [f.result() for f in futures] == [150, 150]
        last, _ = _watch(run, lambda r, _: r["at"] > first["at"] + 0.5 and r["processes"] == first["processes"])
    assert last["error"] is None and last["rss_bytes"] is not None and last["cpu_percent"] is not None


# The job runs as root with no capability but those to change user: the child it starts as
# `nobody` is then another user's process, whose I/O and descriptors it may not read.
FOREIGN_JOB = textwrap.dedent(
    """
    import json, os, subprocess, time, milepost
    def nobody():
        os.setgid(65534)
        os.setuid(65534)
    with milepost.Run("foreign", display="none", history=False, resources={"interval": 0.1}) as run:
        child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, preexec_fn=nobody)  # until its stdin closes
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = run.snapshot().data["resources"]
            if r is not None and r["processes"] == 2 and r["cpu_percent"] is not None:
                break
            time.sleep(0.05)
        child.stdin.close()
        child.wait()
    print(json.dumps(r))
    """
)


def test_another_user_s_process_in_the_tree_is_counted_as_unreadable_not_zero() -> None:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to start a process of another user")
    proc = subprocess.run(
        [setpriv, "--bounding-set=-all,+setuid,+setgid", sys.executable, "-c", FOREIGN_JOB],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.splitlines()[-1])
    assert r["processes"] == 2 and r["unreadable"] == 1, r
    # What could be read is the job's own: its I/O and descriptors, and everyone's CPU and memory.
    assert r["open_files"] is not None and r["read_bytes_per_second"] is not None
    assert r["rss_bytes"] is not None and r["error"] is None
