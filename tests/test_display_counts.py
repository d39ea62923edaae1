"""One meaning of progress everywhere: processed = done + failed + skipped, out of the total.
A count called "done" means done items only."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap

import milepost

# Two phases of unknown size: 3 done, 2 failed, 1 skipped = 6 processed.
JOB = textwrap.dedent(
    """
    import milepost
    with milepost.Run("counts", DISPLAY) as run:
        with run.phase("load") as load:
            load.advance(3)
        with run.phase("check") as check:
            check.fail("a", "bad"); check.fail("b", "bad")
            check.skip()
    """
)


def _job(display: str) -> str:
    return JOB.replace("DISPLAY", display)


def test_native_run_line_says_processed_when_the_total_is_unknown(pty_run) -> None:
    res = pty_run(_job("display='native'"), cols=120, rows=20)
    assert res.status == 0, res.raw[-2000:]
    head = next(line for line in res.lines if line.startswith("✓ counts"))
    assert re.search(r" · 6 processed · 2 failed \(60\.0% ok\) · 1 skipped", head), head
    assert " done" not in head, head


def test_plain_run_line_says_processed_when_the_total_is_unknown(clock) -> None:
    out = io.StringIO()
    with milepost.Run("counts", display="plain", output=out, clock=clock) as run:
        with run.phase("load") as load:
            load.advance(3)
        with run.phase("check") as check:
            check.fail("a", "bad")
            check.fail("b", "bad")
            check.skip()
    last = [line for line in out.getvalue().splitlines() if "] counts · completed" in line][-1]
    assert "· 6 processed · 2 failed" in last and " done" not in last, last


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60, env={**os.environ}
    )


def test_cli_counts_processed_and_names_it(tmp_path) -> None:
    with milepost.Run("counted", display="none") as run:
        with run.phase("p", total=10) as ph:
            ph.advance(3)
            ph.fail("a", "bad")
            ph.fail("b", "bad")
            ph.skip()
    history = _cli("history")
    assert history.returncode == 0, history.stderr
    header = history.stdout.splitlines()[0].split()
    assert "processed" in header and "items" not in header, history.stdout
    assert "6/10" in history.stdout
    show = _cli("show", run.id)
    assert "6/10 processed: 3 done, 2 failed, 1 skipped" in show.stdout, show.stdout
    phase_header = next(line for line in show.stdout.splitlines() if line.startswith("phase"))
    assert "processed" in phase_header.split(), show.stdout
    stats = _cli("stats", "counted")
    assert "processed" in next(line for line in stats.stdout.splitlines() if line.startswith("id")).split()
    shown = json.loads(_cli("show", run.id, "--json").stdout)
    assert (shown["processed"], shown["done"], shown["failed"], shown["skipped"]) == (6, 3, 2, 1)
    assert shown["phases"][0]["processed"] == 6
    listed = json.loads(_cli("history", "--json").stdout)
    assert listed[0]["processed"] == 6
