"""The monitor's main screen: one live run, redrawn when it publishes, steered by keys. Files
are polled on the event loop (a stat, and a read only when it changed); the history and the
commands, which can wait on a lock or on the run's answer, go to worker threads."""

from __future__ import annotations

import time
from collections import deque
from functools import partial
from typing import Callable, Deque, List, Optional, Tuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from ..live.place import LiveError
from ..live.reader import LiveRun
from ..persistence import History, NoHistory, SchemaError, Unreadable
from ..persistence.records import ItemRecord
from . import render
from .dialogs import ConfirmCancel
from .feed import POLL_SECONDS, Feed
from .logs import LogScreen
from .panels import Panel
from .view import View

__all__ = ["RunScreen", "ITEMS_EVERY", "recent_items"]

#: Seconds between two reads of the history's newest items while the run makes progress.
ITEMS_EVERY = 0.5
#: Finished items read from the history (the panel lists the newest of them).
ITEMS = 20
#: Reads of the history after the run ended (ITEMS_EVERY apart).
END_READS = 4


def recent_items(run: LiveRun, limit: int = ITEMS) -> Tuple[List[ItemRecord], Optional[str]]:
    """The run's newest finished items from its history, or why there are none to show."""
    if run.history is None:
        return [], "the run keeps no history: no item details"
    try:
        with History.open(run.history) as history:
            return history.recent_items(run.id, limit), None
    except NoHistory:
        return [], "no history database yet"
    except SchemaError as e:
        return [], str(e)
    except Unreadable as e:
        return [], f"the history cannot be read: {e}"


#: The panels a new snapshot changes.
SNAPSHOT_PANELS = ("run", "phases", "in-flight", "failures", "totals")


class RunScreen(Screen[None]):
    DEFAULT_CSS = """
    RunScreen #run { height: auto; padding: 0 1; background: $boost; }
    RunScreen #body { height: 1fr; }
    RunScreen #answer { height: auto; padding: 0 1; }
    RunScreen #totals { height: auto; background: $panel; }
    """
    BINDINGS = [
        Binding("c", "cancel", "Cancel run"),
        Binding("r", "retry", "Retry failed"),
        Binding("l", "logs", "Logs"),
    ]

    def __init__(self, run: LiveRun, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.live = run
        self.clock = clock
        self.feed = Feed(run)
        self.view: Optional[View] = None
        #: Seconds from a snapshot's publication to the screen showing it, newest last.
        self.latencies: Deque[float] = deque(maxlen=1000)
        self._items_at = 0.0
        self._items_processed = -1
        self._reads_after_end = 0
        self._ticks = 0

    def compose(self) -> ComposeResult:
        yield Panel(render.header, id="run")
        with VerticalScroll(id="body"):
            yield Panel(render.phases, "Phases", id="phases")
            yield Panel(render.in_flight, "In flight", id="in-flight")
            yield Panel(render.failures, "Failures", id="failures")
            yield Panel(render.items, "Finished items (history)", id="items")
        yield Static(id="answer")
        yield Panel(render.totals, id="totals")
        yield Footer()

    def on_mount(self) -> None:
        # The first items are read here, not in a worker: the first frame is whole.
        self._items_at = time.monotonic()
        self.tick()
        if self.view is not None:
            self.view.items, self.view.items_note = recent_items(self.live)
            self._items_processed = int(self.view.root.get("processed") or 0)
            self.redraw("items")
        self.set_interval(POLL_SECONDS, self.tick)

    def tick(self) -> None:
        """One poll: a new state is drawn at once; the clock moves the elapsed time each second."""
        self._ticks += 1
        try:
            state = self.feed.poll()
        except LiveError as e:
            self.say(str(e), "red")
            state = None
        rows = self.feed.new_logs()
        if rows and isinstance(self.app.screen, LogScreen):
            self.app.screen.add(rows)
        if state is not None:
            if self.view is None:
                self.view = View(self.live, state, self.clock())
            self.view.state, self.view.now = state, self.clock()
            # The finished items come from the history, drawn when they are read (below).
            self.redraw(*SNAPSHOT_PANELS)
            published = state.published
            self.call_after_refresh(lambda: self.latencies.append(time.time() - published))
            self.app.sub_title = f"{self.live.name} · {state.state}"
        elif self.view is not None and self._ticks % round(1 / POLL_SECONDS) == 0 and not self.view.ended:
            self.view.now = self.clock()
            self.redraw("run", "totals")
        self._maybe_read_items()

    def redraw(self, *which: str) -> None:
        if self.view is None:
            return
        for panel in self.query(Panel):
            if not which or panel.id in which:
                panel.show(self.view)
        # A run that is over has nothing in flight, whatever its last published counts said.
        n = 0 if self.view.ended else int(self.view.root.get("in_flight") or 0)
        self.query_one("#in-flight", Panel).border_title = f"In flight · {n}" if n else "In flight"
        failed = int(self.view.root.get("failed") or 0)
        self.query_one("#failures", Panel).border_title = f"Failures · {failed}"

    def say(self, message: str, style: str = "") -> None:
        """A line above the totals: the run's answer to a command, or what went wrong."""
        self.query_one("#answer", Static).update(Text(message, style=style))

    # -- the history's newest items ------------------------------------------------------------
    def _maybe_read_items(self) -> None:
        view = self.view
        if view is None:
            return
        processed = int(view.root.get("processed") or 0)
        due = time.monotonic() - self._items_at >= ITEMS_EVERY
        # The run's last rows reach the history as it closes, maybe after its last snapshot:
        # a few more reads once it ended.
        after_end = view.ended and self._reads_after_end < END_READS
        if (processed != self._items_processed or after_end) and due:
            self._items_processed = processed
            self._reads_after_end += int(view.ended)
            self._items_at = time.monotonic()
            self.run_worker(partial(recent_items, self.live), thread=True, group="items", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, result = event.worker, event.worker.result
        if event.state != WorkerState.SUCCESS or result is None:
            return
        if worker.group == "items" and self.view is not None:
            self.view.items, self.view.items_note = result
            self.redraw("items")
        elif worker.group == "command":
            ok, message = result
            self.say(message, "bold green" if ok else "bold yellow")

    # -- keys ------------------------------------------------------------------------------------
    def action_cancel(self) -> None:
        if self.view is not None and self.view.ended:
            self.send("cancel")  # nothing to ask: the run says it has ended
            return
        self.app.push_screen(ConfirmCancel(self.live), lambda yes: self.send("cancel") if yes else self.say(""))

    def action_retry(self) -> None:
        self.send("retry")

    def action_logs(self) -> None:
        self.app.push_screen(LogScreen(self.feed))

    def send(self, kind: str) -> None:
        self.say(f"asking the run to {kind}…", "dim")
        self.run_worker(partial(ask, self.live, kind), thread=True, group="command", exit_on_error=False)


def ask(run: LiveRun, kind: str) -> Tuple[bool, str]:
    """Sends a command and waits for the run's answer (in a worker thread)."""
    try:
        return True, f"{kind}: {run.send(kind)}"
    except LiveError as e:
        return False, f"{kind}: {e}"
