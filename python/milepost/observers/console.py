"""A summary of the run printed when it ends."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional, TextIO

from .. import _milepost
from .base import BaseObserver

if TYPE_CHECKING:
    from ..snapshot import Snapshot


class ConsoleSummary(BaseObserver):
    """Prints one line per phase and the run's totals at the end (to stderr by default)."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self._stream = stream
        self._last: Optional[Snapshot] = None

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self._last = snapshot

    def close(self) -> None:
        if self._last is None:
            return
        out = self._stream or sys.stderr
        lines = [f"summary: {self._last.run_line()}"]
        lines += [f"{'  ' * depth}{name}: {stats}" for depth, name, _, stats in self._last.node_lines()]
        for f in self._last.data["failures"][:5]:
            lines.append(f"  failed {_milepost.sanitize(f['name'])}: {_milepost.sanitize(f['error'] or '')}")
        out.write("\n".join(lines) + "\n")
        out.flush()
