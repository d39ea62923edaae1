"""The monitor's log view: the run's log lines and failures as they come, filtered by level (that
level and worse) and by source, with the same filter the dashboard's log pane uses."""

from __future__ import annotations

import time
from typing import Iterable, List, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from ..persistence.logs import rows_matching
from ..persistence.records import LogRecord
from .feed import Feed
from .looks import LEVEL_STYLES, clean, legible_text

__all__ = ["LogScreen", "LEVEL_FILTERS", "SHOWN_ROWS"]

#: The level filter's steps (`v` goes to the next): every line, then info, warning, error and worse.
LEVEL_FILTERS = (None, "info", "warning", "error")
#: Rows drawn at most when a filter changes (the newest).
SHOWN_ROWS = 2000


class LogScreen(Screen[None]):
    DEFAULT_CSS = """
    LogScreen #filter { height: auto; padding: 0 1; background: $panel; }
    LogScreen RichLog { height: 1fr; }
    """
    BINDINGS = [
        Binding("v", "level", "Level filter"),
        Binding("s", "source", "Source filter"),
        Binding("escape,l", "app.pop_screen", "Back"),
    ]

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self.feed = feed
        self.level: Optional[str] = None
        self.source: Optional[str] = None
        #: The rows on screen, oldest first (what the filter kept).
        self.shown: List[LogRecord] = []

    def compose(self) -> ComposeResult:
        yield Static(id="filter")
        yield RichLog(id="log", wrap=True, max_lines=SHOWN_ROWS * 2)
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def action_level(self) -> None:
        self.level = LEVEL_FILTERS[(LEVEL_FILTERS.index(self.level) + 1) % len(LEVEL_FILTERS)]
        self.redraw()

    def action_source(self) -> None:
        sources: List[Optional[str]] = [None, *sorted(self.feed.sources)]
        at = sources.index(self.source) if self.source in sources else 0
        self.source = sources[(at + 1) % len(sources)]
        self.redraw()

    def redraw(self) -> None:
        level = self.level or "all"
        source = clean(self.source) if self.source else "all"
        self.query_one("#filter", Static).update(
            Text.assemble(
                ("Logs", "bold"),
                f" of {clean(self.feed.run.name)} ({self.feed.run.id}) · level ≥ {level} · source: {source}",
            )
        )
        self.shown = []
        self.query_one("#log", RichLog).clear()
        self.add(list(self.feed.logs)[-SHOWN_ROWS * 4 :], limit=SHOWN_ROWS)

    def add(self, rows: Iterable[LogRecord], limit: Optional[int] = None) -> None:
        """Draws the rows the filter keeps (new rows from the feed, or all of them again)."""
        kept = rows_matching(rows, self.level, self.source, 0)
        if limit is not None:
            kept = kept[-limit:]
        self.shown.extend(kept)
        log = self.query_one("#log", RichLog)
        for r in kept:
            log.write(legible_text(_line(r)))


def _line(row: LogRecord) -> Text:
    ts = time.strftime("%H:%M:%S", time.localtime(row["ts"])) if row["ts"] else "--:--:--"
    level = row["level"]
    line = Text(f"{ts} ", style="dim")
    line.append(f"{level.upper():<8}", style=LEVEL_STYLES.get(level, ""))
    if row["source"]:
        line.append(f" [{clean(row['source'])}]", style="cyan")
    line.append(f" {clean(row['message'])}", style=LEVEL_STYLES.get(level, "") if level != "info" else "")
    return line
