"""The monitor's Failures panel, from a run that published its failures."""

from __future__ import annotations

import time

from rich.console import Console

import milepost
from live_jobs import published
from milepost.monitor.render import failures
from milepost.monitor.view import View


def test_the_panel_shows_the_newest_failures_in_the_order_they_came() -> None:
    # The snapshot lists the newest 64 failures, newest first: the panel took the last six of
    # them, the oldest (doc-36 ... doc-41 of 100, then "and 94 more").
    with milepost.Run("fails", display="none") as run:
        phase = run.phase("p")
        for i in range(100):
            try:
                with phase.item(f"doc-{i}"):
                    raise ValueError(f"bad {i}")
            except ValueError:
                pass
    live = published(run.id)
    console = Console(width=100, record=True)
    console.print(failures(View(live, live.read(), time.time()), 100))
    lines = console.export_text().splitlines()
    assert [line.split(":")[0] for line in lines[:6]] == [f"✗ doc-{i} (p)" for i in range(94, 100)]
    assert lines[6].startswith("… and 94 more")
