"""`milepost monitor [RUN]`: checks what it was asked before the terminal is taken over, so
that a bad request is one line on stderr and status 1, never a traceback or a stray app."""

from __future__ import annotations

import sys
from typing import Optional

from ..live.place import LiveError, live_dir
from ..live.reader import find_run, list_runs
from .app import MonitorApp

__all__ = ["run_monitor"]


def run_monitor(which: Optional[str]) -> int:
    """Runs the monitor on the run `which` (id, start of an id, or name; None: pick one) and
    returns the exit status."""
    try:
        if which is None:
            if not list_runs():
                raise LiveError(f"no runs on this machine yet (none published in {live_dir()}); see `milepost runs`")
            run = None
        else:
            run = find_run(which)
            run.read()
    except LiveError as e:
        print(f"milepost monitor: {e}", file=sys.stderr)
        return 1
    status = MonitorApp(run).run()
    return int(status or 0)
