"""`milepost history`, `show` and `stats`: reading the history database."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _milepost
from .persistence import connect, default_path
from .text import more_failures

SPARK = "▁▂▃▄▅▆▇█"


class NoHistory(Exception):
    """There is no history database, or no such run."""


#: A history path's escapes (README "History paths are unambiguous").
_UNESCAPE = {"%25": "%", "%2F": "/", "%23": "#"}
_ESCAPED = re.compile("%25|%2F|%23")


def path_levels(path: Optional[str]) -> List[Tuple[str, int]]:
    """The levels of a history path (`load#2/inner%2Fpart`) below the run: each level's name as
    it was given, and which sibling of that name it is (1 for the first, 2 for `#2`, ...)."""
    levels = []
    for level in (path or "").split("/") if path else []:
        name, sep, nth = level.rpartition("#")  # a `#` in a name is escaped: this one numbers it
        if not (sep and nth.isdigit()):
            name, nth = level, "1"
        levels.append((_ESCAPED.sub(lambda m: _UNESCAPE[m.group(0)], name), int(nth)))
    return levels


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def display_path(levels: Sequence[Tuple[str, int]]) -> str:
    """A path for people: names as given, levels joined by ` › `, a later sibling of the same
    name marked (`load (2nd)`): `load (2nd) › inner/part`."""
    return " › ".join(_milepost.sanitize(name) + (f" ({_ordinal(nth)})" if nth > 1 else "") for name, nth in levels)


def open_db(path: Optional[str]) -> sqlite3.Connection:
    db_path = Path(path) if path else default_path()
    if not db_path.exists():
        raise NoHistory(f"no run history at {db_path} (runs are kept there by default; MILEPOST_HOME moves it)")
    return connect(db_path, readonly=True)


def cost_of(metrics: Dict[str, Any]) -> Optional[float]:
    """A run's cost: the sum of its metrics named like money (`cost`, `usd`), or None."""
    costs = [v for k, v in metrics.items() if "cost" in k.lower() or "usd" in k.lower()]
    return float(sum(costs)) if costs else None


def _run_dict(row: sqlite3.Row) -> Dict[str, Any]:
    metrics = json.loads(row["metrics"] or "{}")
    judged = row["done"] + row["failed"]
    return {
        "id": row["id"], "name": row["name"], "status": row["status"], "started_at": row["started_at"],
        "ended_at": row["ended_at"], "elapsed": row["elapsed"], "total": row["total"],
        "processed": _processed(row), "done": row["done"],
        "failed": row["failed"], "skipped": row["skipped"], "retried": row["retried"],
        "success_rate": (row["done"] / judged) if judged else None, "metrics": metrics, "cost": cost_of(metrics),
        "resumed": row["resumed"],
    }


def _processed(row: Any) -> int:
    """Progress, as every display counts it: items done, failed or skipped."""
    return int(row["done"] + row["failed"] + row["skipped"])


def history(db: sqlite3.Connection, name: Optional[str], limit: int) -> List[Dict[str, Any]]:
    sql = "SELECT * FROM runs" + (" WHERE name = ?" if name else "") + " ORDER BY started_at DESC LIMIT ?"
    return [_run_dict(r) for r in db.execute(sql, (name, limit) if name else (limit,))]


def find_run(db: sqlite3.Connection, which: str) -> Dict[str, Any]:
    row = db.execute("SELECT * FROM runs WHERE id = ?", (which,)).fetchone() or db.execute(
        "SELECT * FROM runs WHERE name = ? ORDER BY started_at DESC LIMIT 1", (which,)).fetchone()
    if row is None:
        raise NoHistory(f"no run with id or name {which!r}")
    return _run_dict(row)


def show(db: sqlite3.Connection, which: str, failures: Optional[int] = 20) -> Dict[str, Any]:
    """A run with its phases, workers and its newest `failures` failures (None: all of them);
    `failures_recorded` says how many the history holds."""
    run = find_run(db, which)
    phases = db.execute(
        "SELECT path, name, kind, status, total, done, failed, skipped, retried, elapsed, rate, mean_item_seconds, "
        "metrics FROM phases WHERE run_id = ? ORDER BY rowid", (run["id"],))
    # `path` as stored (escaped, unambiguous); `display` as `show` prints it.
    run["phases"] = [dict(r) | {"processed": _processed(r), "metrics": json.loads(r["metrics"] or "{}"),
                                "display": display_path(path_levels(r["path"]))} for r in phases]
    run["workers"] = [dict(r) for r in db.execute(
        "SELECT name, state, done, failed FROM workers WHERE run_id = ? ORDER BY name", (run["id"],))]
    recorded = recorded_failures(db, run["id"])
    run["failures"] = recorded if failures is None else recorded[:failures]
    run["failures_recorded"] = len(recorded)
    run["items"] = dict(db.execute(
        "SELECT count(*) AS n, sum(status = 'done') AS done FROM items WHERE run_id = ?", (run["id"],)).fetchone())
    return run


def recorded_failures(db: sqlite3.Connection, run_id: str) -> List[Dict[str, Any]]:
    """Every failure the history holds for a run, newest first. Every failure is an event
    (those of workers, and a dead worker's item, included); a failure from `item()` or
    `fail()` also has an item row, which stands in for its event if that was dropped."""
    events = [dict(r) for r in db.execute(
        "SELECT path AS phase, json_extract(data, '$.item') AS name, message AS error, ts AS at, "
        "json_extract(data, '$.path') AS names FROM events WHERE run_id = ? AND kind = 'item_failed'", (run_id,))]
    # An event names its phase by the names of its levels (the run's first), an item row by its
    # history path: they are matched on the names. Events name an item sanitized and clipped;
    # item rows keep the name as given.
    unmatched: Dict[Tuple[Tuple[str, ...], str], List[Dict[str, Any]]] = {}
    for f in events:
        names = _event_names(f.pop("names"), f["phase"])
        f["phase_display"] = display_path([(n, 1) for n in names])
        unmatched.setdefault((names, _item_key(f["name"])), []).append(f)
    failures = list(events)
    for row in db.execute("SELECT phase, name, error, started_at + coalesce(duration, 0) AS at FROM items "
                          "WHERE run_id = ? AND status = 'failed'", (run_id,)):
        levels = path_levels(row["phase"])
        key = (tuple(n for n, _ in levels), _item_key(row["name"]))
        if unmatched.get(key):
            # The same failure: the row's path also says which of same-named phases it was.
            unmatched[key].pop(0)["phase_display"] = display_path(levels)
        else:
            failures.append(dict(row) | {"phase_display": display_path(levels)})
    failures.sort(key=lambda f: f["at"] or 0.0, reverse=True)
    return failures


def _event_names(names: Optional[str], path: Optional[str]) -> Tuple[str, ...]:
    """The names of an event's levels below the run: from its `path` list, else (an event
    stored without one) from its path column."""
    try:
        listed = json.loads(names) if names else None
    except ValueError:
        listed = None
    if isinstance(listed, list) and listed:
        return tuple(str(n) for n in listed[1:])
    return tuple(n for n, _ in path_levels(path))


def _item_key(name: Optional[str]) -> str:
    return _milepost.sanitize(name or "")[:256]


def stats(db: sqlite3.Connection, name: str, limit: int) -> Dict[str, Any]:
    runs = list(reversed(history(db, name, limit)))
    if not runs:
        raise NoHistory(f"no runs called {name!r}")
    durations = [r["elapsed"] for r in runs if r["elapsed"] is not None]
    costs = [r["cost"] for r in runs if r["cost"] is not None]
    return {
        "name": name,
        "runs": runs,
        "duration": _summary(durations),
        "cost": _summary(costs),
        "success_rate": _summary([r["success_rate"] for r in runs if r["success_rate"] is not None]),
    }


def _summary(values: Sequence[float]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1], "last": values[-1]}


def sparkline(values: Sequence[Optional[float]]) -> str:
    """One block character a value, scaled from zero to the largest (durations and costs are
    compared with zero, so equal runs look equal)."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    hi = max(max(known), 1e-12)
    return "".join(" " if v is None else SPARK[max(0, min(7, round(v / hi * 7)))] for v in values)


# -- text output --------------------------------------------------------------------------------

def _when(t: Optional[float]) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _items(r: Dict[str, Any]) -> str:
    """Items processed (done, failed or skipped) out of the total."""
    processed = _milepost.format_count(r["processed"])
    return f"{processed}/{_milepost.format_count(r['total'])}" if r["total"] is not None else processed


def _rate(p: Dict[str, Any]) -> str:
    if p["rate"] is not None:
        return _milepost.format_rate(p["rate"])
    return _milepost.format_rate(p["processed"] / p["elapsed"]) if p["elapsed"] else "-"


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _money(x: Optional[float]) -> str:
    return "-" if x is None else f"${x:.4f}" if x < 10 else f"${x:.2f}"


def _dur(x: Optional[float]) -> str:
    return "-" if x is None else _milepost.format_duration(x)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def history_text(runs: List[Dict[str, Any]]) -> str:
    if not runs:
        return "no runs yet"
    rows = [[r["id"], _milepost.sanitize(r["name"]), r["status"], _when(r["started_at"]), _dur(r["elapsed"]),
             _items(r), _pct(r["success_rate"]), _money(r["cost"])] for r in runs]
    return table(["id", "name", "status", "started", "duration", "processed", "success", "cost"], rows)


def show_text(run: Dict[str, Any], db: Optional[str] = None) -> str:
    out = [f"{_milepost.sanitize(run['name'])} ({run['id']}): {run['status']}, started {_when(run['started_at'])}, "
           f"{_dur(run['elapsed'])}, {_items(run)} processed: {_milepost.format_count(run['done'])} done, "
           f"{_milepost.format_count(run['failed'])} failed, {_milepost.format_count(run['skipped'])} skipped, "
           f"success {_pct(run['success_rate'])}"]
    if run["metrics"]:
        out.append("metrics: " + ", ".join(_milepost.format_metric(k, v) for k, v in run["metrics"].items()))
    if run["phases"]:
        out.append("")
        out.append(table(["phase", "status", "processed", "failed", "duration", "rate"], [
            [p["display"], p["status"], _items(p), str(p["failed"]), _dur(p["elapsed"]),
             _rate(p)] for p in run["phases"]]))
    if run["workers"]:
        out.append("")
        out.append(table(["worker", "state", "done", "failed"],
                         [[_milepost.sanitize(w["name"]), w["state"], str(w["done"]), str(w["failed"])] for w in run["workers"]]))
    if run["failures"] or run["failed"]:
        out.append("")
        out.append("failures (newest first):")
        out += [f"  {f['phase_display']}: {_milepost.sanitize(f['name'] or '')}: "
                f"{_milepost.sanitize(f['error'] or '')}" for f in run["failures"]]
        out += _failures_notes(run, db)
    return "\n".join(out)


def _failures_notes(run: Dict[str, Any], db: Optional[str]) -> List[str]:
    """What the list of failures leaves out: those not listed, and those counted that the
    history does not hold (their events were dropped, or the history was off)."""
    notes = []
    listed, recorded = len(run["failures"]), run["failures_recorded"]
    where = f"milepost show {run['id']} --failures all" + (f" --db {shlex.quote(db)}" if db else "")
    more = more_failures(recorded - listed, where)
    if more is not None:
        notes.append(f"  {more}")
    if run["failed"] > recorded:
        notes.append(f"  ({_milepost.format_count(run['failed'] - recorded)} more were counted but not recorded)")
    return notes


def stats_text(s: Dict[str, Any]) -> str:
    runs = s["runs"]
    rows = [[r["id"], r["status"], _when(r["started_at"]), _dur(r["elapsed"]), _items(r), _pct(r["success_rate"]),
             _money(r["cost"])] for r in runs]
    out = [f"{_milepost.sanitize(s['name'])}: {len(runs)} runs", "",
           table(["id", "status", "started", "duration", "processed", "success", "cost"], rows), ""]
    for label, key, fmt in (("duration", "elapsed", _dur), ("cost", "cost", _money)):
        summary = s[label]
        if summary:
            out.append(f"{label:9s} {sparkline([r[key] for r in runs])}  min {fmt(summary['min'])}  "
                       f"median {fmt(summary['median'])}  max {fmt(summary['max'])}  last {fmt(summary['last'])}")
    return "\n".join(out)
