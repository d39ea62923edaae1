"""The pure-Python renderer on rich, for Jupyter and wherever the native one cannot draw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, TextIO

from .. import _milepost
from ..events import Event, LogLine
from ..observers.base import BaseObserver
from ..text import FirstFailures
from ..text import failure_line, log_line
from .native import SHOWN_FAILURES

if TYPE_CHECKING:
    from ..snapshot import Snapshot


#: Lanes of dead and stalled workers come first, so that folding never hides them.
_LANE_ORDER = {"died": 0, "stalled": 1}


def lane_lines(lanes: List[Dict[str, Any]], max_lanes: int) -> List[str]:
    """The native frame's lane lines (`rust/render/frame.rs`), without colour: the lanes
    still at work, problems first, then "… N more lanes"."""
    active = sorted((ln for ln in lanes if ln["state"] != "finished"), key=lambda ln: _LANE_ORDER.get(ln["state"], 2))
    shown = active if len(active) <= max_lanes else active[: max(max_lanes - 1, 0)]
    lines = [_lane_line(ln) for ln in shown]
    if len(shown) < len(active):
        lines.append(f"    … {len(active) - len(shown)} more lanes")
    return lines


def _lane_line(lane: Dict[str, Any]) -> str:
    item = f"▸ {_milepost.sanitize(lane['item'])}" if lane["item"] else None
    if lane["state"] == "died":
        what = "died"
    elif lane["state"] == "stalled":
        what = f"stalled {_milepost.format_duration(lane['heartbeat_age'])}" + (f" {item}" if item else "")
    else:
        what = item or "idle"
    counts = f"{_milepost.format_count(lane['done'])} done"
    if lane["failed"]:
        counts += f", {_milepost.format_count(lane['failed'])} failed"
    return f"    {_milepost.sanitize(lane['name'])} {what} ({counts})"


class RichRenderer(BaseObserver):
    """Draws the snapshot with rich's `Live`: the run line, a bar per phase, worker lanes and
    the last failure. Needs `pip install milepost[rich]`."""

    def __init__(self, stream: Optional[TextIO] = None, interval: float = 0.1, leave: bool = True,
                 max_lanes: int = 8) -> None:
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
        for (depth, node), (_, _, _, stats) in zip(snapshot.nodes(), snapshot.node_lines()):
            total = node["total"]
            bar = ProgressBar(total=float(total) if total else None, completed=float(node["processed"]), width=30)
            table.add_row(Text("  " * depth + _milepost.sanitize(node["name"])), bar, Text(stats))
        parts: list[Any] = [Text(snapshot.run_line(), style="bold"), table]
        parts.extend(Text(line) for line in lane_lines(snapshot.data["lanes"], self._max_lanes))
        failures = snapshot.data["failures"]
        if failures:
            f = failures[0]
            parts.append(Text(f"  ✗ {failure_line(f['name'], f['error'])}", style="red"))
        return Group(*parts)

    def close(self) -> None:
        note = self._failures.end(self._final)
        if note is not None:
            self._console.print(note, markup=False, highlight=False)
        self._live.stop()
