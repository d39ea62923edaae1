"""Jobs run in their own process by the live-channel tests: `python live_jobs.py KIND ...`.

Each prints `started <run id>` once its run has started, and `ended <state>` at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import milepost
from milepost.live.place import LiveError
from milepost.live.reader import LiveRun, find_run


def start_job(*args: str) -> Tuple[subprocess.Popen, str]:
    """(For tests.) A job of this file in its own process, and its run id once it is published."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("started"), line + (proc.stderr.read() if proc.stderr else "")
    run_id = line.split()[1]
    published(run_id, alive=proc.poll)
    return proc, run_id


def published(run_id: str, seconds: float = 20.0, alive=lambda: None) -> LiveRun:
    """(For tests.) The run once it is published: a quarter second after its start, or after
    its end if that is sooner (or once `alive()` says its process ended: then as it is)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            run = find_run(run_id)
            if (run.directory / "snapshot.json").exists():
                return run
        except LiveError:
            pass
        if alive() is not None or time.monotonic() > deadline:
            return find_run(run_id)
        time.sleep(0.02)


def steady(n: int, item_seconds: float) -> None:
    """A loop of `n` items of `item_seconds` each, with metrics and streamed output."""
    run = milepost.Run("steady", display="none")
    try:
        with run:
            run.meta.update(model="test-model", provider="local")
            print("started", run.id, flush=True)
            with run.phase("work", total=n, unit="doc") as ph:
                for i in ph.pending(range(n)):  # a cancel ends it with milepost.Cancelled
                    with ph.item(f"doc-{i}") as item:
                        item.stream(f"token-{i} ")
                        item.metric("tokens", 3)
                        time.sleep(item_seconds)
                    if i % 7 == 3:
                        run.log(f"note {i}", level="warning", source="job")
    except milepost.Cancelled:
        pass
    print("ended", run.state, flush=True)


def chatty(n: int, item_seconds: float) -> None:
    """Items with tokens and cost, one in four failing; log lines at three levels from two
    sources (the monitor's log view filters them)."""
    run = milepost.Run("chatty", display="none")
    with run:
        print("started", run.id, flush=True)
        with run.phase("work", total=n) as ph:
            for i in range(n):
                if run.cancelled:
                    break
                try:
                    with ph.item(f"doc-{i}") as item:
                        item.metric("tokens", 5)
                        item.metric("cost_usd", 0.001)
                        time.sleep(item_seconds)
                        if i % 4 == 1:
                            raise ValueError(f"bad doc {i}")
                except ValueError:
                    pass
                run.log(f"loaded {i}", level="info", source="loader")
                if i % 3 == 0:
                    run.log(f"slow answer {i}", level="warning", source="llm")
    print("ended", run.state, flush=True)


def _flaky(x: int) -> int:
    """Fails the first time it sees an item that is 3 mod 10, then succeeds."""
    calls = Path(sys.argv[-1])
    with open(calls, "a") as f:
        f.write(f"{x}\n")
    seen = calls.read_text().split().count(str(x))
    time.sleep(0.02)
    if x % 10 == 3 and seen == 1:
        raise ValueError(f"flaky {x}")
    return x


def retries(kind: str, n: int, calls: str) -> None:
    """`n` items in a thread or process pool; the job waits (bounded) for a retry of its
    failures before the pool is done, so the test can ask for one."""
    with milepost.Run("retries", display="none") as run:
        print("started", run.id, flush=True)
        items = list(range(n))
        if kind == "threads":
            out = milepost.thread_map(_slow_tail, items, workers=4, return_exceptions=True, description="pool")
        else:
            import multiprocessing as mp

            out = milepost.process_map(
                _slow_tail,
                items,
                workers=2,
                chunksize=1,
                return_exceptions=True,
                description="pool",
                mp_context=mp.get_context("fork"),
            )
        failed = [i for i, v in enumerate(out) if isinstance(v, BaseException)]
        print("results", json.dumps(failed), flush=True)
    print("ended", run.state, flush=True)


def _slow_tail(x: int) -> int:
    # The last item takes long enough for the test to see the failures and send a retry.
    if x == int(sys.argv[2]) - 1:
        deadline = time.monotonic() + 20
        marker = Path(sys.argv[-1] + ".retried")
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.02)
    return _flaky(x)


def skippable(n: int) -> None:
    """Items that each wait until they are asked to be skipped (or 10 s)."""
    with milepost.Run("skippable", display="none") as run:
        print("started", run.id, flush=True)
        with run.phase("p", total=n) as ph:
            for i in range(n):
                with ph.item(f"item-{i}") as item:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        if item.skip_requested:
                            item.skip()
                            break
                        time.sleep(0.02)
    print("ended", run.state, ph.skipped, flush=True)


def quick(n: int) -> None:
    """Counts `n` and exits at once."""
    with milepost.Run("quick", display="none") as run:
        print("started", run.id, flush=True)
        with run.phase("p", total=n) as ph:
            ph.advance(n)
    print("ended", run.state, flush=True)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "steady":
        steady(int(sys.argv[2]), float(sys.argv[3]))
    elif what in ("threads", "processes"):
        retries(what, int(sys.argv[2]), sys.argv[3])
    elif what == "skippable":
        skippable(int(sys.argv[2]))
    elif what == "chatty":
        chatty(int(sys.argv[2]), float(sys.argv[3]))
    elif what == "quick":
        quick(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown job {what!r}")
