"""`milepost runs`, `cancel`, `retry`, `skip` and `monitor`: the live channel's commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, List

from . import _milepost
from .live.place import LiveError
from .live.reader import find_run, list_runs
from .live.summary import progress, row

__all__ = ["add_parsers", "run_command", "COMMANDS"]

COMMANDS = ("runs", "cancel", "retry", "skip", "monitor")


def add_parsers(sub: Any) -> None:
    runs = sub.add_parser("runs", help="the runs on this machine: live ones, then recent ones")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, what in (("cancel", "cancel a live run"), ("retry", "run a live run's failed items again")):
        p = sub.add_parser(name, help=what)
        p.add_argument("run", help="a run id (or its start), or a name (its newest run)")
    skip = sub.add_parser("skip", help="ask a live run to skip an item in flight")
    skip.add_argument("run", help="a run id (or its start), or a name (its newest run)")
    skip.add_argument("item", help="the item's name")
    mon = sub.add_parser("monitor", help="attach to a live run in the terminal (pip install 'milepost[monitor]')")
    mon.add_argument("run", nargs="?", default=None, help="a run id or name (default: pick one)")


def run_command(args: argparse.Namespace) -> int:
    """`runs`, `cancel`, `retry` and `skip` (`monitor` is started by `cli`: it sits above this layer)."""
    try:
        if args.command == "runs":
            return _runs(args.json)
        run = find_run(args.run)
        print(run.send(args.command, getattr(args, "item", None)))
        return 0
    except LiveError as e:
        print(f"milepost {args.command}: {e}", file=sys.stderr)
        return 1


def _clean(text: str) -> str:
    return _milepost.sanitize(text).replace("\t", " ")


def _age(t: float) -> str:
    seconds = max(0.0, time.time() - t)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def _runs(as_json: bool) -> int:
    found = list_runs()
    # Live runs first, then the recent ones; newest first within each.
    entries = [row(r, s) for r, s in found if s.state == "running"] + [
        row(r, s) for r, s in found if s.state != "running"
    ]
    if as_json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("no runs on this machine yet (a run with a history publishes itself; see the README)")
        return 0
    table: List[List[str]] = [["STATE", "NAME", "ID", "PID", "PROGRESS", "STARTED", "COMMAND"]]
    for e in entries:
        # Names and commands are the job's text: no escape sequence or newline reaches the terminal.
        table.append(
            [
                e["state"],
                _clean(e["name"]),
                e["id"],
                str(e["pid"]),
                progress(e),
                _age(e["started_at"]),
                _clean(e["command"])[:60],
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    return 0
