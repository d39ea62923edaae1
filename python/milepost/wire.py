"""The messages a worker that cannot map the run's segment sends its run (see `remote.py`).

A message is a plain dict (what msgpack, and so Dask's event stream, carries), tagged with its
format's version. Counts in it are cumulative (each node's own totals so far, not what changed
since the last message), for every node in every message: a message lost, dropped or repeated
leaves the run's counts exact, since the next one carries them all. Rows and events are the
only parts that are deltas.

```
milepost   VERSION
run        the run's id
source     who sends it: the worker's address (its lanes are named after it)
seq        1, 2, 3... per sender: older or repeated messages are ignored
nodes      {key: [done, failed, skipped, retried, in_flight, total | None, {metric: value}]}
made       {key: [parent key, kind, name, unit]}: phases and steps the worker made
rows       [[key, item, status, started_at, duration | None, error | None, metrics json | None]]
rows_dropped     rows the worker could not keep (counted, its counts stay exact)
lanes      [[lane, item | None]]: what each of its threads works on
events     [[key, kind, {field: value}]]: log lines, retries, item reports
events_dropped   events it could not keep
```
"""

from __future__ import annotations

from typing import Any, Dict

from .errors import MilepostError

__all__ = ["VERSION", "WireError", "check"]

#: The format's version: a run refuses any other (a worker on an older or newer milepost).
VERSION = 1

#: What every message holds, and the type of each part.
_PARTS: Dict[str, type | tuple[type, ...]] = {
    "run": str,
    "source": str,
    "seq": int,
    "nodes": dict,
    "made": dict,
    "rows": (list, tuple),
    "rows_dropped": int,
    "lanes": (list, tuple),
    "events": (list, tuple),
    "events_dropped": int,
}


class WireError(MilepostError, ValueError):
    """A message this run cannot read (another format's version, a part missing): refused."""


def check(message: Any) -> Dict[str, Any]:
    """The message, if this run can read it; else `WireError` saying why."""
    if not isinstance(message, dict) or "milepost" not in message:
        raise WireError(f"not a milepost message: {_short(message)}")
    version = message["milepost"]
    if version != VERSION:
        raise WireError(
            f"message format version {version!r} from {message.get('source', '?')!r}: this run reads "
            f"version {VERSION} (the worker runs {'an older' if _older(version) else 'another'} milepost)"
        )
    for part, kind in _PARTS.items():
        if not isinstance(message.get(part), kind):
            raise WireError(f"message from {message.get('source', '?')!r} has no valid {part!r}: {_short(message)}")
    return message


def _older(version: Any) -> bool:
    return isinstance(version, int) and version < VERSION


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "…"
