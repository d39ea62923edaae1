"""The pure-Python renderer on rich, for Jupyter and wherever the native one cannot draw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TextIO

from .. import _milepost
from ..events import Event, LogLine
from ..observers.base import BaseObserver
from ..text import FirstFailures, log_line
from .native import SHOWN_FAILURES

if TYPE_CHECKING:
    from ..snapshot import Snapshot


class RichRenderer(BaseObserver):
    """Draws the snapshot with rich's `Live`: the run line, a bar per phase, worker lanes and
    the last failure. Needs `pip install milepost[rich]`."""

    def __init__(
        self, stream: Optional[TextIO] = None, interval: float = 0.1, leave: bool = True, max_lanes: int = 8
    ) -> None:
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError as e:  # pragma: no cover - exercised only without the extra
            raise ImportError("display='rich' needs rich: pip install 'milepost[rich]'") from e
        import sys

        self.interval = interval
        self._max_lanes = max_lanes
        # As on the native display: the first failures above the live view, the latest in it.
        self._failures = FirstFailures(SHOWN_FAILURES)
        self._final: Optional[Snapshot] = None
        self._console = Console(file=stream or sys.stderr)
        self._live = Live(console=self._console, auto_refresh=False, transient=not leave)
        self._live.start()

    def on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self._console.print(log_line(event.level, event.message, event.source), markup=False, highlight=False)
        else:
            failure = self._failures.on_event(event)
            if failure is not None:
                self._console.print(f"✗ {failure}", markup=False, highlight=False, style="red")

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._final = snapshot
        self._live.update(self._render(snapshot), refresh=True)

    def _render(self, snapshot: Snapshot) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        table.add_column()
        table.add_column(width=30)
        table.add_column()
        # nodes() and node_lines() walk the tree in the same depth-first order.
        for (depth, node), (_, _, _, stats) in zip(snapshot.nodes(), snapshot.node_lines(), strict=True):
            # A loop entered again (an inner loop) shows its current pass, as the other displays.
            shown = node.get("current_pass") or node
            total, processed = shown["total"], shown["processed"]
            bar = ProgressBar(total=float(total) if total else None, completed=float(processed), width=30)
            table.add_row(Text("  " * depth + _milepost.sanitize(node["name"])), bar, Text(stats))
        parts: list[Any] = [Text(snapshot.run_line(), style="bold"), table]
        # The native frame's own lane and failure lines: no display re-implements them.
        parts.extend(Text(line) for line in snapshot.lane_lines(self._max_lanes))
        failure = snapshot.failure_line()
        if failure is not None:
            parts.append(Text(failure, style="red"))
        return Group(*parts)

    def close(self) -> None:
        note = self._failures.end(self._final)
        if note is not None:
            self._console.print(note, markup=False, highlight=False)
        self._live.stop()
