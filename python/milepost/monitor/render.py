"""The monitor's panels as Rich renderables, from a `View` and the width they get: pure
functions (no Textual), so each panel reads the same at any size and in any test."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .. import _milepost
from ..agent import summary
from .looks import Bar, clean, count, duration, item_duration, mark, state_text, wall_time
from .view import ENDINGS, View

__all__ = ["header", "cost_line", "usage_line", "phases", "in_flight", "items", "failures", "totals", "NARROW"]

#: Below this many columns a phase takes three lines (name, bar, pace) instead of one.
NARROW = 90
#: Lines of an item's streamed output shown under it (the tail's newlines are marked '↵').
OUTPUT_LINES = 3
NEWLINE_MARK = "↵"


def header(view: View, width: int) -> RenderableType:
    run = view.run
    title = Text.assemble((clean(run.name), "bold"), "  ", state_text(view.state.state))
    title.append(f"   id {run.id} · pid {run.pid} on {clean(run.info.get('host', '?'))}", style="dim")
    lines: List[RenderableType] = [title, Text(f"command: {clean(run.command)}", overflow="ellipsis", no_wrap=True)]
    if view.state.meta:
        lines.append(Text(" · ".join(f"{clean(k)} {clean(v)}" for k, v in view.state.meta.items())))
    lines.append(Text(f"started {wall_time(run.started_at)} · elapsed {duration(view.elapsed)}"))
    cost = cost_line(view.root)
    if cost is not None:
        lines.append(Text(cost))
    usage = usage_line(view.resources, view.ended)
    if usage is not None:
        lines.append(usage)
    silent = view.silent_for
    if silent is not None:
        lines.append(
            Text(
                f"⚠ no update from the run for {duration(silent)}: it may have stopped publishing", style="bold yellow"
            )
        )
    if view.ended:
        symbol, style = mark(view.state.state)
        ending = ENDINGS.get(view.state.state, view.state.state)
        lines.append(Text(f"{symbol} Run ended {ending}. Press q to quit.", style=f"{style} reverse"))
    return Group(*lines)


def cost_line(node: Dict[str, Any]) -> Optional[str]:
    """`cost $1.2346 · $0.0123/item → $6.10 ($5.80–6.40)`: what the run spent, per item, and
    (while it runs with items left) where it is heading; None when it has no cost."""
    cost = node.get("cost")
    if cost is None:
        return None
    projected = node.get("projected_cost")
    total, processed = node.get("total"), node.get("processed") or 0
    heading = node.get("state") == "running" and total is not None and total > processed
    shown = (projected["value"], projected.get("low"), projected.get("high")) if projected and heading else None
    outlook = _milepost.format_cost_outlook(node.get("cost_per_item"), shown, clean(node.get("unit") or "it"))
    return _milepost.format_metric("cost", cost) + (f" · {outlook}" if outlook else "")


def usage_line(r: Optional[Dict[str, Any]], ended: bool) -> Optional[Text]:
    """`CPU 340% (85% of 4 cores) · RSS 2.1 GB (peak 2.4 GB) · read 1.2 MB/s · write 300 kB/s ·
    48 open files · CPU time 1m05s` while the run goes (once it ended: its CPU time and peak),
    then a warning for each filesystem it writes to that is low on space; None without a sample."""
    if r is None:
        return None
    parts: List[str] = []
    if not ended:
        if r.get("cpu_percent") is not None:
            parts.append(
                f"CPU {_milepost.format_cpu(r['cpu_percent'])} "
                f"({_milepost.format_cpu(r['machine_cpu_percent'])} of {r['cores']} cores)"
            )
        if r.get("rss_bytes") is not None:
            parts.append(f"RSS {_bytes(r['rss_bytes'])} (peak {_bytes(r['peak_rss_bytes'])})")
        for key, label in (("read_bytes_per_second", "read"), ("write_bytes_per_second", "write")):
            if r.get(key) is not None:
                parts.append(f"{label} {_bytes(r[key])}/s")
        if r.get("open_files") is not None:
            parts.append(f"{count(r['open_files'])} open files")
    else:
        parts.append(f"peak RSS {_bytes(r['peak_rss_bytes'])}")
    parts.append(f"CPU time {duration(r.get('cpu_seconds'))}")
    line = Text(" · ".join(parts))
    for disk in r.get("disks") or []:
        if disk.get("low"):
            free = float(disk.get("free_fraction") or 0.0) * 100
            line.append(f"\n⚠ disk {free:.1f}% free at {clean(disk.get('path'))}", style="bold yellow")
    if r.get("error"):
        line.append(f"\n⚠ resource sampling stopped: {clean(r['error'])}", style="yellow")
    return line


def _bytes(n: Any) -> str:
    return "–" if n is None else _milepost.format_bytes(int(n))


def _counts(node: Dict[str, Any]) -> str:
    shown = node.get("current_pass") or node  # a loop entered again: its pass, as tqdm shows it
    total, unit, divisor = shown.get("total"), clean(node.get("unit") or "it"), node.get("unit_divisor")
    if divisor:  # tqdm's unit_scale: "12.3M/45.0M", or "12.3MB" with no total
        text = _milepost.format_amounts(int(shown.get("processed") or 0), total, unit, divisor)
    else:
        processed = count(shown.get("processed", 0))
        text = f"{processed}/{count(total)} {unit}" if total is not None else f"{processed} {unit}"
    if node.get("current_pass"):
        text += f" · pass {node['current_pass']['number']}"
    for key in ("failed", "skipped", "retried"):
        if node.get(key):
            text += f" · {count(node[key])} {key}"
    return text


def _pct(node: Dict[str, Any]) -> str:
    fraction = node.get("fraction")
    return "   –" if fraction is None else f"{fraction * 100:3.0f}%"


def _rate(node: Dict[str, Any]) -> str:
    """The node's rate; once it stopped (no rate then), its mean over its whole time."""
    rate, elapsed = node.get("rate"), node.get("elapsed")
    if rate is None and elapsed and node.get("state") != "running":
        rate = float(node.get("processed") or 0) / float(elapsed)
    return _milepost.format_rate(rate, clean(node.get("unit") or "it"), node.get("unit_divisor"))


def _pace(node: Dict[str, Any], ended: bool) -> tuple[str, str]:
    rate = _rate(node)
    if node.get("state") != "running" or ended:
        return rate, f"took {duration(node.get('elapsed'))}"
    eta = _milepost.format_eta(node.get("eta"), node.get("eta_low"), node.get("eta_high"))
    return rate, eta + (" (from history)" if node.get("eta_from_history") else "")


def phases(view: View, width: int) -> RenderableType:
    nodes = view.phases
    if not nodes:
        return Text("no phases yet", style="dim")
    narrow = width < NARROW
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=16 if narrow else 28)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)  # the bar (narrow: counts, bar, pace)
    if not narrow:
        for justify in ("right", "left", "right", "left", "left"):  # %, counts, rate, ETA, state
            table.add_column(no_wrap=True, justify=justify)
    for node in nodes:
        name = Text("  " * (node["depth"] - 1) + clean(node.get("name")), style="bold" if node["depth"] == 1 else "")
        state = str(node.get("state", "?"))
        bar = Bar(node.get("fraction"), state)
        rate, eta = _pace(node, view.ended)
        if narrow:
            table.add_row(name, Text.assemble(_counts(node), "  ", state_text(state)))
            table.add_row(Text(_pct(node)), bar)
            table.add_row("", Text(f"{rate} · {eta}", style="dim"))
        else:
            table.add_row(name, bar, _pct(node), _counts(node), rate, eta, state_text(state))
    return table


def in_flight(view: View, width: int) -> RenderableType:
    rows = view.in_flight
    n = int(view.root.get("in_flight") or 0)
    if not rows:
        if view.ended:
            if view.state.state == "crashed" and n:
                return Text(f"nothing: the run is over (its process died with {count(n)} in flight)", style="dim")
            return Text("nothing: the run is over", style="dim")
        text = f"{count(n)} item{'s' if n != 1 else ''} in flight" if n else "nothing in flight"
        return Text(text, style="dim")
    lines: List[RenderableType] = []
    for row in rows:
        symbol, style = mark(str(row.get("state")))
        line = Text.assemble((f"{symbol} {clean(row['lane'])}", style), "  ", (clean(row.get("item") or "—"), "bold"))
        report = row.get("report")
        if isinstance(report, dict) and summary(report):
            line.append(f"   {clean(summary(report))}", style="cyan")
        if row.get("done") is not None:
            line.append(f"   {count(row['done'])} done · {count(row.get('failed') or 0)} failed", style="dim")
        figures = [_milepost.format_cpu(row["cpu_percent"])] if row.get("cpu_percent") is not None else []
        if row.get("rss_bytes") is not None:
            figures.append(_bytes(row["rss_bytes"]))
        if figures:
            line.append(f"   {' · '.join(figures)}", style="magenta")
        lines.append(line)
        for text in _tail(str(row.get("tail") or ""), OUTPUT_LINES, width - 6):
            lines.append(Text(f"    │ {text}", style="italic", no_wrap=True))
    return Group(*lines)


def _tail(tail: str, n: int, width: int) -> List[str]:
    """The last `n` non-empty lines of a streamed tail, cleaned, each ending within `width`
    columns: the newest of a stream is its end, so a line too long loses its beginning."""
    lines = [clean(line) for line in tail.split(NEWLINE_MARK) if line.strip()][-n:]
    room = max(8, width)
    return [line if cell_len(line) <= room else "…" + _last_cells(line, room - 1) for line in lines]


def _last_cells(text: str, cells: int) -> str:
    """The end of `text` in at most `cells` columns."""
    kept: List[str] = []
    for char in reversed(text):
        cells -= cell_len(char)
        if cells < 0:
            break
        kept.append(char)
    return "".join(reversed(kept))


def items(view: View, width: int, limit: int = 8) -> RenderableType:
    if view.items_note:
        return Text(view.items_note, style="dim")
    if not view.items:
        return Text("none yet", style="dim")
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column(no_wrap=True, justify="right")
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=3)
    for item in view.items[:limit]:
        status = str(item["status"])
        # Tokens and the like first, money last.
        ordered = sorted(item["metrics"].items(), key=lambda kv: (_milepost.is_money(kv[0]), kv[0]))
        metrics = " · ".join(_milepost.format_metric(k, v) for k, v in ordered)
        detail = Text(metrics)
        if item.get("error"):
            detail = Text(clean(item["error"]), style="red")
        table.add_row(state_text(status), clean(item["name"]), item_duration(item.get("duration")), detail)
    return table


def failures(view: View, width: int, limit: int = 6) -> Optional[RenderableType]:
    """The newest failures, in the order they came, or None when there are none (the panel
    hides). The snapshot lists them newest first."""
    listed = view.failures
    if not listed:
        return None
    lines: List[RenderableType] = []
    for failure in reversed(listed[:limit]):
        where = f" ({clean(failure['node'])})" if failure.get("node") else ""
        line = Text.assemble(("✗ ", "bold red"), (clean(failure.get("name")), "bold red"), where, ": ")
        line.append(clean(failure.get("error")), style="red")
        lines.append(line)
    more = int(view.root.get("failed") or 0) - len(lines)
    if more > 0:
        lines.append(Text(f"… and {count(more)} more (milepost show {view.run.id})", style="dim"))
    return Group(*lines)


def totals(view: View, width: int) -> Text:
    root = view.root
    metrics = sorted((root.get("metrics") or {}).items())
    # Money is the cost below, summed once.
    parts = [_milepost.format_metric(k, v) for k, v in metrics if not _milepost.is_money(k)]
    cost = root.get("cost")
    parts.append("cost –" if cost is None else _milepost.format_metric("cost", cost))
    parts.append(_rate(root))
    parts.append(f"elapsed {duration(view.elapsed)}")
    done = f"{count(root.get('done', 0))} done"
    if root.get("failed"):
        done += f" · {count(root['failed'])} failed"
    parts.append(done)
    return Text(" · ".join(parts))
