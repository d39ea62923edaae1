"""`milepost history`, `show` and `stats` as text: tables and sparklines of the records
`persistence.History` reads (the reads themselves, and `--json`, are the records as they are)."""

from __future__ import annotations

import shlex
import time
from typing import Any, List, Mapping, Optional, Sequence

from . import _milepost
from .persistence.records import FailureRecord, ReportRecord, RunDetail, RunRecord, Stats
from .text import more_failures

SPARK = "▁▂▃▄▅▆▇█"


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


def _items(r: Mapping[str, Any]) -> str:
    """Items processed (done, failed or skipped) out of the total."""
    processed = _milepost.format_count(r["processed"])
    return f"{processed}/{_milepost.format_count(r['total'])}" if r["total"] is not None else processed


def _rate(p: Mapping[str, Any]) -> str:
    unit, divisor = p.get("unit") or "it", p.get("unit_divisor")
    return "-" if p["rate"] is None else _milepost.format_rate(p["rate"], unit, divisor)


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _money(x: Optional[float]) -> str:
    return "-" if x is None else f"${x:.4f}" if x < 10 else f"${x:.2f}"


def _dur(x: Optional[float]) -> str:
    return "-" if x is None else _milepost.format_duration(x)


def _bytes(x: Optional[float]) -> str:
    return "-" if x is None else _milepost.format_bytes(int(x))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, under a header and a rule."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def history_text(runs: Sequence[RunRecord], name: Optional[str] = None) -> str:
    """`milepost history` (of runs called `name`, if given): one line a run."""
    if not runs:
        return "no runs yet" if name is None else f"no runs named {_milepost.sanitize(name)!r}"
    rows = [
        [
            r["id"],
            _milepost.sanitize(r["name"]),
            r["status"],
            _when(r["started_at"]),
            _dur(r["elapsed"]),
            _items(r),
            _pct(r["success_rate"]),
            _money(r["cost"]),
        ]
        for r in runs
    ]
    return table(["id", "name", "status", "started", "duration", "processed", "success", "cost"], rows)


def show_text(run: RunDetail, db: Optional[str] = None) -> str:
    """`milepost show`: the run, its metrics, phases, workers and failures (`db`: the `--db` given,
    for the command that lists them all)."""
    out = [
        f"{_milepost.sanitize(run['name'])} ({run['id']}): {run['status']}, started {_when(run['started_at'])}, "
        f"{_dur(run['elapsed'])}, {_items(run)} processed: {_milepost.format_count(run['done'])} done, "
        f"{_milepost.format_count(run['failed'])} failed, {_milepost.format_count(run['skipped'])} skipped, "
        f"success {_pct(run['success_rate'])}"
    ]
    recorded = run["items"]["done"]
    if run["status"] == "crashed" and recorded is not None and recorded != run["done"]:
        # Its counts are its last snapshot's (written once a second); its item rows are written
        # apart from them, and they are what a resume goes by.
        out.append(
            f"  the history holds {_milepost.format_count(recorded)} items done, one by one: those are what a "
            "resume (resume=True) skips; the counts above are from its last snapshot, written up to a second "
            "before the crash"
        )
    if run.get("meta"):
        out.append(
            "about: "
            + " · ".join(f"{_milepost.sanitize(k)} {_milepost.sanitize(str(v))}" for k, v in run["meta"].items())
        )
    out += [f"  {_milepost.sanitize(n['message'])}" for n in run.get("notices", [])]
    if run["metrics"]:
        out.append("metrics: " + ", ".join(_milepost.format_metric(k, v) for k, v in run["metrics"].items()))
    if run["phases"]:
        out.append("")
        out.append(
            table(
                ["phase", "status", "processed", "failed", "duration", "rate"],
                [
                    [p["display"], p["status"], _items(p), str(p["failed"]), _dur(p["elapsed"]), _rate(p)]
                    for p in run["phases"]
                ],
            )
        )
    if run["workers"]:
        out.append("")
        out.append(
            table(
                ["worker", "state", "done", "failed"],
                [[_milepost.sanitize(w["name"]), w["state"], str(w["done"]), str(w["failed"])] for w in run["workers"]],
            )
        )
    if run.get("cpu_seconds") is not None:
        out.append("")
        out.append(f"resources: CPU time {_dur(run['cpu_seconds'])} · peak RSS {_bytes(run['peak_rss_bytes'])}")
    if run["failures"] or run["failed"]:
        out.append("")
        out.append("failures (newest first):")
        out += [
            f"  {f['phase_display']}: {_milepost.sanitize(f['name'] or '')}: {_milepost.sanitize(f['error'] or '')}"
            for f in run["failures"]
        ]
        out += _failures_notes(run, db)
    if run.get("retries"):
        out.append("")
        out += retries_lines(run["retries"])
    if run.get("reports"):
        out.append("")
        out += reports_lines(run["reports"])
    return "\n".join(out)


#: Retried attempts `milepost show` lists (`--json` has them all).
SHOWN_RETRIES = 20


def retries_lines(retries: Sequence[FailureRecord]) -> List[str]:
    """The attempts that failed and were tried again, newest first, each with its error."""
    out = [f"retried attempts (newest first): {_milepost.format_count(len(retries))}"]
    for r in retries[:SHOWN_RETRIES]:
        error = _milepost.sanitize(r["error"] or "") or "(retry asked for)"
        out.append(f"  {r['phase_display']}: {_milepost.sanitize(r['name'] or '')}: {error}")
    if len(retries) > SHOWN_RETRIES:
        out.append(f"  … {_milepost.format_count(len(retries) - SHOWN_RETRIES)} more (milepost show --json)")
    return out


def reports_lines(reports: Sequence[ReportRecord]) -> List[str]:
    """What items reported as they ran: a section an item, its progress, checks and files."""
    out = ["items' reports:"]
    for r in reports:
        where = f"{r['phase_display']}: " if r["phase_display"] else ""
        head = f"  {where}{_milepost.sanitize(r['name'])} ({r['status']})"
        if r["progress"]:
            head += f": iteration {r['progress'][0]}/{r['progress'][1]}"
        if r["checks"]:
            head += f", checks {sum(ok for _, ok in r['checks'])}/{len(r['checks'])}"
        out.append(head)
        out += [f"    {'✓' if ok else '✗'} {_milepost.sanitize(name)}" for name, ok in r["checks"]]
        out += [f"    {kind} {_milepost.sanitize(path)}" for kind, path in r["artifacts"]]
    return out


def _failures_notes(run: RunDetail, db: Optional[str]) -> List[str]:
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


def stats_text(s: Stats) -> str:
    """`milepost stats`: the runs, then sparklines and summaries of durations and costs."""
    runs = s["runs"]
    rows = [
        [
            r["id"],
            r["status"],
            _when(r["started_at"]),
            _dur(r["elapsed"]),
            _items(r),
            _pct(r["success_rate"]),
            _money(r["cost"]),
            _dur(r["cpu_seconds"]),
            _bytes(r["peak_rss_bytes"]),
        ]
        for r in runs
    ]
    out = [
        f"{_milepost.sanitize(s['name'])}: {len(runs)} run{'' if len(runs) == 1 else 's'}",
        "",
        table(["id", "status", "started", "duration", "processed", "success", "cost", "cpu", "peak rss"], rows),
        "",
    ]
    lines = (
        ("duration", s["duration"], [r["elapsed"] for r in runs], _dur),
        ("cost", s["cost"], [r["cost"] for r in runs], _money),
        ("cpu", s["cpu_seconds"], [r["cpu_seconds"] for r in runs], _dur),
        ("peak rss", s["peak_rss_bytes"], [r["peak_rss_bytes"] for r in runs], _bytes),
    )
    for label, summary, values, fmt in lines:
        if summary:
            out.append(
                f"{label:9s} {sparkline(values)}  min {fmt(summary['min'])}  "
                f"median {fmt(summary['median'])}  max {fmt(summary['max'])}  last {fmt(summary['last'])}"
            )
    return "\n".join(out)
