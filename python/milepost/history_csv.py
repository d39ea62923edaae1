"""`milepost history`, `show` and `stats` as CSV (`--csv`): one row per run, phase or failure,
as each command lists them. Metrics become columns of their own (`metric:cost_usd`), so a
spreadsheet sums them; times are Unix seconds, as in `--json`."""

from __future__ import annotations

import csv
import io
from typing import Any, Dict, List, Mapping, Sequence

from .persistence.records import RunDetail, RunRecord, Stats

__all__ = ["history_csv", "show_csv", "stats_csv"]

RUN_COLUMNS = (
    "id", "name", "status", "started_at", "ended_at", "elapsed", "total", "processed",
    "done", "failed", "skipped", "retried", "success_rate", "cost", "cpu_seconds", "peak_rss_bytes",
)  # fmt: skip
PHASE_COLUMNS = ("path", "name", "kind", "status", "total", "processed", "done", "failed", "skipped", "retried",
                 "elapsed", "rate", "unit", "cost")  # fmt: skip
FAILURE_COLUMNS = ("phase", "name", "error", "at")


def history_csv(runs: Sequence[RunRecord]) -> str:
    """A row per run, newest first."""
    return _table([dict(r) for r in runs], RUN_COLUMNS)


def stats_csv(stats: Stats) -> str:
    """A row per run of the name, oldest first (the summaries are what `--json` adds)."""
    return _table([dict(r) for r in stats["runs"]], RUN_COLUMNS)


def show_csv(run: RunDetail) -> str:
    """The run, its phases, then its failures and retried attempts, a row each; `record` says
    which (`run`, `phase`, `failure`, `retry`), and each kind fills its own columns."""
    rows: List[Dict[str, Any]] = [{"record": "run", **run}]
    rows += [{"record": "phase", **p} for p in run["phases"]]
    rows += [{"record": "failure", **f, "phase": f["phase_display"]} for f in run["failures"]]
    rows += [{"record": "retry", **f, "phase": f["phase_display"]} for f in run.get("retries", [])]
    columns = ("record", *RUN_COLUMNS, *(c for c in PHASE_COLUMNS if c not in RUN_COLUMNS), *FAILURE_COLUMNS)
    return _table(rows, tuple(dict.fromkeys(columns)))


def _table(rows: List[Dict[str, Any]], columns: Sequence[str]) -> str:
    metrics = sorted({name for row in rows for name in _metrics(row)})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, *(f"metric:{m}" for m in metrics)])
    for row in rows:
        values = _metrics(row)
        writer.writerow([_cell(row.get(c)) for c in columns] + [_cell(values.get(m)) for m in metrics])
    return out.getvalue().rstrip("\n")


def _metrics(row: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = row.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _cell(value: Any) -> Any:
    """A cell: nothing for None; text without newlines (a spreadsheet reads one line a row)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.splitlines())
    if isinstance(value, (list, dict)):
        return ""
    return value
