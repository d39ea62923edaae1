"""The native display on a pseudo-terminal read by a terminal emulator (pyte): long failures and
log lines printed above the bars take one row each, and a phase that completed without a total
draws its bar full."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

LONG_LINES = textwrap.dedent(
    """
    import time, milepost
    with milepost.Run("long-lines", refresh_hz=20, run_id="long-lines-run") as run:
        ph = run.phase("map", total=3)
        ph.fail("item-0", "Traceback: " + "E" * 1985 + "END!")
        ph.fail("item-1", "wide: " + "错" * 300 + "END!")
        run.log("note: " + "L" * 600 + "TAIL", source="loader")
        time.sleep(0.3)
        ph.advance(1)
        ph.end()
    """
)


def test_a_long_failure_and_log_line_take_one_row_each_above_the_bars(pty_run) -> None:
    res = pty_run(LONG_LINES, cols=80, rows=30)
    assert res.status == 0, res.raw[-2000:]
    lines = res.lines
    failure = [line for line in lines if line.startswith("✗ item-0: Traceback: EEE")]
    assert len(failure) == 1, res.text
    assert failure[0].endswith("…") and len(failure[0]) <= 80, failure
    wide = [line for line in lines if line.startswith("✗ item-1: wide: 错")]
    assert len(wide) == 1 and wide[0].endswith("…"), res.text
    log = [line for line in lines if "[loader] note: LLL" in line]
    assert len(log) == 1 and log[0].endswith("…") and len(log[0]) <= 80, res.text
    # Nothing of either wrapped onto further rows.
    assert not [line for line in lines if re.fullmatch(r"[EL错]+(END!|TAIL)?", line)], res.text
    assert "END!" not in res.text and "TAIL" not in res.text
    assert re.search(r"✓ long-lines › map \[", res.text) or "long-lines · completed" in res.text, res.text
    # The whole error is kept: in the history and in `milepost show`.
    shown = subprocess.run(
        [sys.executable, "-m", "milepost", "show", "long-lines-run", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    errors = [f["error"] for f in json.loads(shown.stdout)["failures"]]
    assert sorted(errors) == ["Traceback: " + "E" * 1985 + "END!", "wide: " + "错" * 300 + "END!"], errors


NO_TOTAL = textwrap.dedent(
    """
    import time, milepost
    with milepost.Run("no-total", refresh_hz=20) as run:
        with run.phase("map", total=4) as ph:
            ph.advance(4)
        with run.phase("reduce") as ph:
            for _ in range(8):
                ph.advance()
                time.sleep(0.06)
    """
)


def test_a_phase_that_completed_without_a_total_draws_its_bar_full(pty_run) -> None:
    res = pty_run(NO_TOTAL, cols=100, rows=20)
    assert res.status == 0, res.raw[-2000:]
    bar = (100 - 2) // 4  # the frame's bar width on a 100-column terminal
    # While it runs, its total is unknown: an empty bar.
    raw = re.sub(r"\x1b\[[0-9;]*m", "", res.raw.decode("utf-8", "replace"))
    assert re.search(r"reduce \[ {%d}\]\s+\d+ it · [\d.]+ it/s" % bar, raw), raw[-3000:]
    # Completed, it has processed all it had: a full bar.
    assert re.search(r"reduce \[█{%d}\] 100%% 8 it · completed" % bar, res.text), res.text
    assert re.search(r"map\s+\[█{%d}\] 100%% 4/4 · completed" % bar, res.text), res.text
