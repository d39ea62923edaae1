"""The text of events as every display writes it: the native display, plain lines, rich, the
console summary and `milepost replay` share these lines, so that a failure or a log line reads
the same everywhere; and which failures a display lists, with how many more there were and
where all of them are (`… and 45 more failures (milepost show 3f2a9c1b0d4e)`). All text that
came from users is sanitized here."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple

from . import _milepost
from .events import Event, ItemFailed, RunStarted
from .home import default_history

if TYPE_CHECKING:
    from .snapshot import Snapshot

__all__ = ["FirstFailures", "LatestFailures", "event_line", "failure_line", "log_line", "more_failures"]


def _safe(value: Any) -> str:
    return _milepost.sanitize(str(value if value is not None else ""))


def failure_line(item: Any, error: Any) -> str:
    """`doc-7.json: ValueError: bad record`."""
    return f"{_safe(item)}: {_safe(error)}"


def log_line(level: Any, message: Any, source: Optional[Any] = None) -> str:
    """`WARNING [fetcher] slow upstream`."""
    src = f" [{_safe(source)}]" if source else ""
    return f"{str(level or 'info').upper()}{src} {_safe(message)}"


def event_line(event: Mapping[str, Any]) -> str:
    """Any event, from its JSON form (`milepost replay`): failures and log lines as above,
    the rest as `phase finished: map`."""
    kind = str(event.get("event", "event"))
    if kind == "item_failed":
        return f"failed {failure_line(event.get('item'), event.get('error'))}"
    if kind == "item_retried":
        error = event.get("error")
        return f"retried {_safe(event.get('item'))}" + (f" after {_safe(error)}" if error else "")
    if kind == "item_details":
        return f"reported {_safe(event.get('item'))}: " + _details(event)
    if kind == "log":
        return log_line(event.get("level"), event.get("message"), event.get("source"))
    what = event.get("name") or event.get("run_name") or ""
    return f"{kind.replace('_', ' ')}: {_safe(what)}"


def _details(event: Mapping[str, Any]) -> str:
    """`iteration 3/20, checks 1/2, 2 files` of an `item_details` event."""
    progress, checks, files = event.get("progress"), event.get("checks") or [], event.get("artifacts") or []
    parts = [f"iteration {progress[0]}/{progress[1]}"] if isinstance(progress, list) and len(progress) == 2 else []
    if checks:
        parts.append(f"checks {sum(1 for c in checks if c[1] is True)}/{len(checks)}")
    if files:
        parts.append(f"{len(files)} file{'s' if len(files) != 1 else ''}")
    return ", ".join(parts) or "nothing"


def where_failures_are(run_id: str, history: Optional[str]) -> Optional[str]:
    """The command that lists every failure of the run, or None when the run keeps no history
    (`history` is where the run's start event says it is kept)."""
    if history is None:
        return None
    path = Path(history)
    at_default = path.resolve() == default_history().resolve()
    return f"milepost show {run_id}" + ("" if at_default else f" --db {shlex.quote(str(path))}")


def more_failures(more: int, where: Optional[str]) -> Optional[str]:
    """`… and 3 more failures (where)`, or None when there are none."""
    if more <= 0:
        return None
    noun = "failure" if more == 1 else "failures"
    return f"… and {_milepost.format_count(more)} more {noun}" + (f" ({where})" if where else "")


class FirstFailures:
    """A live display's list: the first `limit` failures as they happen, then, at the end, a
    line for the ones it did not print."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.printed = 0
        self._where: Optional[str] = None

    def on_event(self, event: Event) -> Optional[str]:
        """`item: error` for a failure to print now, else None."""
        if isinstance(event, RunStarted):
            self._where = where_failures_are(event.run_id, event.history)
        elif isinstance(event, ItemFailed) and self.printed < self.limit:
            self.printed += 1
            return failure_line(event.item, event.error)
        return None

    def end(self, snapshot: Optional[Snapshot]) -> Optional[str]:
        """The closing line, from the run's final count (failures from workers included)."""
        if snapshot is None:
            return None
        return more_failures(snapshot.failed - self.printed, self._where)


class LatestFailures:
    """An end summary's list: the latest `limit` failures of the final snapshot, newest first,
    then a line for the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._where: Optional[str] = None

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._where = where_failures_are(event.run_id, event.history)

    def lines(self, snapshot: Snapshot) -> Tuple[List[str], Optional[str]]:
        """`item: error` for each failure listed, and the closing line (None if none is due)."""
        shown = snapshot.data["failures"][: self.limit]
        more = more_failures(snapshot.failed - len(shown), self._where)
        return [failure_line(f["name"], f["error"]) for f in shown], more
