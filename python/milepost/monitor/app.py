"""The monitor's Textual app: the run it was given, or the one picked from the list."""

from __future__ import annotations

import time
from typing import Callable, Optional

from textual.app import App
from textual.binding import Binding

from ..live.reader import LiveRun
from .dialogs import PickRun
from .run_screen import RunScreen

__all__ = ["MonitorApp"]


class MonitorApp(App[int]):
    """Attached to `run` (None: the user picks one). Quitting leaves the run alone."""

    TITLE = "milepost monitor"
    # Its commands are the keys in the footer: no palette to search.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("q", "quit_monitor", "Quit monitor")]

    def __init__(self, run: Optional[LiveRun] = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.live = run
        self.clock = clock

    def on_mount(self) -> None:
        if self.live is not None:
            self.push_screen(RunScreen(self.live, self.clock))
        else:
            self.push_screen(PickRun(), self.attach)

    def attach(self, run: Optional[LiveRun]) -> None:
        if run is not None:
            self.live = run
            self.push_screen(RunScreen(run, self.clock))

    def action_quit_monitor(self) -> None:
        self.exit(0)
