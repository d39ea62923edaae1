"""`milepost replay FILE`: a saved JSON-lines stream (or a `.progress.json` snapshot) drawn
again, frame by frame on a terminal, as plain lines elsewhere, at the pace it was recorded."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, TextIO

from . import _milepost
from .errors import MilepostError
from .snapshot import Snapshot
from .text import event_line


class ReplayError(MilepostError):
    """The file is not a milepost stream; the message names the line."""


class Skipped:
    """Lines that are not milepost records (a log file may mix them in): counted, not fatal."""

    def __init__(self) -> None:
        self.count = 0
        self.first: Optional[str] = None

    def add(self, where: str) -> None:
        self.count += 1
        self.first = self.first or where


def records(path: Path, skipped: Optional[Skipped] = None) -> Iterator[Dict[str, Any]]:
    """The stream's objects. A whole-file snapshot (`.progress.json`) is one snapshot record.
    Lines that are not records are counted in `skipped`; a file with none is an error."""
    skipped = skipped if skipped is not None else Skipped()
    # Bytes that are not UTF-8 are kept as they are (surrogate escapes): a line holding them is
    # not a record, and is skipped as any other.
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.rstrip():
        obj = _parsed(stripped)
        if isinstance(obj, dict) and "root" in obj:
            yield {"type": "snapshot", "ts": obj.get("started_at_unix", 0) + obj.get("now", 0), "snapshot": obj}
            return
    found = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = _parsed(line)
        if not isinstance(obj, dict) or obj.get("type") not in ("snapshot", "event"):
            skipped.add(f"{path}:{number}")
            continue
        found = True
        yield obj
    if not found:
        raise ReplayError(f"{path}: no milepost records in it (a JSON-lines stream from display='json')")


def _parsed(text: str) -> Any:
    """The JSON value of `text`, or None when it is none: not JSON, not UTF-8 (surrogate
    escapes), or nested deeper than the parser goes."""
    try:
        text.encode("utf-8")
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None


def replay(
    path: Path, speed: float = 1.0, wait: bool = True, out: Optional[TextIO] = None, skipped: Optional[Skipped] = None
) -> int:
    """Draws the stream; returns how many snapshots were drawn."""
    out = out or sys.stdout
    on_terminal = out.isatty()
    drawn_lines = 0
    last_ts: Optional[float] = None
    shown = 0
    for rec in records(path, skipped):
        ts = float(rec.get("ts") or 0)
        if wait and last_ts is not None and ts > last_ts:
            time.sleep(min((ts - last_ts) / max(speed, 1e-6), 1.0))
        last_ts = ts
        stamp = time.strftime("%H:%M:%S", time.localtime(ts))
        if rec["type"] == "event":
            line = f"[{stamp}] {event_line(rec)}"
            if on_terminal and drawn_lines:
                out.write(f"\x1b[{drawn_lines}F\x1b[J")  # above the frame, which is drawn again next
                drawn_lines = 0
            out.write(line + "\n")
            continue
        try:
            snap = Snapshot(_milepost.Snapshot.from_json(json.dumps(rec["snapshot"])))
        except (ValueError, KeyError) as e:
            raise ReplayError(f"{path}: a snapshot could not be read ({e})") from None
        shown += 1
        if on_terminal:
            size = shutil.get_terminal_size()
            lines = snap.frame(size.columns - 2, size.lines, 8)
            if drawn_lines:
                out.write(f"\x1b[{drawn_lines}F\x1b[J")
            out.write("\n".join(lines) + "\n")
            drawn_lines = len(lines)
        else:
            out.write(f"[{stamp}] {snap.run_line()}\n")
            for depth, name, state, stats in snap.node_lines():
                if state == "running":
                    out.write(f"[{stamp}] {'  ' * depth}{name}: {stats}\n")
        out.flush()
    return shown
