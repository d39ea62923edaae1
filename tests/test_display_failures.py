"""Which failures each display lists, and that each says how many more there were and where
all of them are: the live terminal, plain lines, rich, the end summary, `milepost show`."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import textwrap
import time

import milepost
from procs_helpers import start_item_then_die

NATIVE_JOB = textwrap.dedent(
    """
    import time, milepost
    with milepost.Run("failing", refresh_hz=20, run_id="run-with-12") as run:
        ph = run.phase("map", total=20)
        for i in range(12):
            ph.fail(f"item-{i}", "boom")
            time.sleep(0.02)
        ph.advance(8)
    """
)


def test_native_lists_the_first_5_then_says_how_many_more_and_where(pty_run) -> None:
    res = pty_run(NATIVE_JOB, cols=100, rows=20)
    assert res.status == 0, res.raw[-2000:]
    lines = res.lines
    assert [line for line in lines if line.startswith("✗ item-")] == [f"✗ item-{i}: boom" for i in range(5)]
    assert "… and 7 more failures (milepost show run-with-12)" in lines, res.text
    assert "  ✗ item-11: boom" in lines, "the frame keeps the latest failure"


def _fail_n(run: milepost.Run, clock, n: int) -> None:
    with run.phase("map") as ph:
        for i in range(n):
            ph.fail(f"item-{i}", "boom")
            clock.advance(0.1)
            run.poll()


def test_plain_lists_the_first_20_then_says_how_many_more_and_where(clock) -> None:
    out = io.StringIO()
    with milepost.Run("ci", display="plain", output=out, clock=clock, run_id="plain-run") as run:
        _fail_n(run, clock, 25)
    lines = out.getvalue().splitlines()
    printed = [line.split("] ", 1)[1] for line in lines if "] failed item-" in line]
    assert printed == [f"failed item-{i}: boom" for i in range(20)]
    assert lines[-1].endswith("] … and 5 more failures (milepost show plain-run)"), lines[-3:]


def test_rich_lists_the_first_5_then_says_how_many_more_and_where(clock) -> None:
    out = io.StringIO()
    with milepost.Run("fancy", display="rich", output=out, clock=clock, run_id="rich-run") as run:
        _fail_n(run, clock, 7)
    text = out.getvalue()
    # The first five above the live view, and the latest (item-6) in it.
    shown = [i for i in range(7) if f"✗ item-{i}: boom" in text]
    assert shown == [0, 1, 2, 3, 4, 6], text
    assert "… and 2 more failures (milepost show rich-run)" in text


def test_summary_lists_the_latest_5_then_says_how_many_more_and_where(clock, tmp_path) -> None:
    out = io.StringIO()
    with milepost.Run(
        "job", display="none", clock=clock, run_id="sum-run", observers=[milepost.ConsoleSummary(out)]
    ) as run:
        _fail_n(run, clock, 8)
    lines = out.getvalue().splitlines()
    assert [line for line in lines if "failed item-" in line] == [f"  failed item-{i}: boom" for i in (7, 6, 5, 4, 3)]
    assert lines[-1] == "  … and 3 more failures (milepost show sum-run)"
    # Kept elsewhere: the hint says where; kept nowhere: no hint to follow.
    db = tmp_path / "elsewhere.db"
    for history, hint in ((db, f" (milepost show other-run --db {db})"), (False, "")):
        out = io.StringIO()
        with milepost.Run(
            "job",
            display="none",
            clock=clock,
            run_id="other-run",
            history=history,
            observers=[milepost.ConsoleSummary(out)],
        ) as run:
            _fail_n(run, clock, 6)
        assert out.getvalue().splitlines()[-1] == f"  … and 1 more failure{hint}"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60, env={**os.environ}
    )


def test_show_lists_every_kind_of_failure_and_says_how_many_more() -> None:
    with milepost.Run("show-me", display="none") as run:
        with run.phase("map") as ph:
            for i in range(50):
                with contextlib.suppress(ValueError), ph.item(f"item-{i:02d}"):
                    raise ValueError(f"bad {i}")
            # A worker killed in its item: a failure with no item row, only its event.
            dead = mp.get_context("fork").Process(target=start_item_then_die, args=(ph,))
            dead.start()
            dead.join()
            time.sleep(0.6)  # noticed at the parent's next sample
    show = _cli("show", run.id)
    assert show.returncode == 0, show.stderr
    listed = [line for line in show.stdout.splitlines() if line.startswith("  map: ")]
    assert len(listed) == 20, show.stdout
    assert re.fullmatch(r"  map: doomed\.json: worker died \(pid \d+\)", listed[0]), "newest first"
    assert listed[1] == "  map: item-49: ValueError: bad 49"
    assert f"  … and 31 more failures (milepost show {run.id} --failures all)" in show.stdout, show.stdout
    every = _cli("show", run.id, "--failures", "all")
    listed = [line for line in every.stdout.splitlines() if line.startswith("  map: ")]
    assert len(listed) == 51 and listed[-1] == "  map: item-00: ValueError: bad 0"
    assert "more failures" not in every.stdout
    data = json.loads(_cli("show", run.id, "--json", "--failures", "5").stdout)
    assert data["failed"] == 51 and data["failures_recorded"] == 51 and len(data["failures"]) == 5
