"""A published run with fixed contents, for the monitor's snapshot tests: run.json,
snapshot.json and events.jsonl written as a live run writes them, a history database with its
item rows, fixed times, and a host that is not this one (so its process is trusted alive:
`running` without a real process). `CLOCK` is the monitor's "now" for it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from milepost.persistence import connect

RUN_ID = "5e1f0c2a9b7d"
STARTED = 1767225600.0  # 2026-01-01 00:00:00 UTC
PUBLISHED = STARTED + 754.25
#: The monitor's clock for a running fixture: 1.5 s after the last publication.
CLOCK = PUBLISHED + 1.5


def node(name: str, state: str, total: Optional[int], done: int, **extra: Any) -> Dict[str, Any]:
    failed, skipped = extra.pop("failed", 0), extra.pop("skipped", 0)
    processed = done + failed + skipped
    base = {
        "id": 0, "name": name, "path": name, "kind": "phase", "unit": "doc", "state": state,
        "total": total, "done": done, "failed": failed, "skipped": skipped, "retried": 0,
        "in_flight": 0, "processed": processed, "fraction": processed / total if total else None,
        "success_rate": None, "rate": None, "eta": None, "eta_low": None, "eta_high": None,
        "stalled_for": None, "eta_from_history": False, "mean_item_seconds": None, "elapsed": None,
        "metrics": {}, "cost": None, "cost_per_item": None, "projected_cost": None, "tail": None,
        "tail_item": None, "children": [],
    }  # fmt: skip
    base.update(extra)
    return base


def snapshot(ended: Optional[str]) -> Dict[str, Any]:
    running = ended is None
    fetch = node("fetch", "completed", 1200, 1200, elapsed=96.0, rate=None, unit="page")
    summarize = node(
        "summarize",
        "running" if running else ended,
        1200,
        611,
        failed=7,
        in_flight=3 if running else 0,
        rate=1.31 if running else None,
        eta=441.0 if running else None,
        eta_low=388.0 if running else None,
        eta_high=530.0 if running else None,
        elapsed=658.25,
        metrics={"tokens": 1834211, "cost_usd": 4.1275},
        cost=4.1275,
        cost_per_item=0.0066788,
        projected_cost={"value": 8.0146, "low": 7.7120, "high": 8.3172},
    )
    root = node("summarize-docs", "running" if running else ended, 2400, 1811, failed=7, kind="run", path="")
    root.update(
        in_flight=summarize["in_flight"], rate=summarize["rate"], elapsed=754.25, unit="it",
        metrics={"tokens": 1834211, "cost_usd": 4.1275}, cost=4.1275, children=[fetch, summarize],
        cost_per_item=0.0066788, projected_cost={"value": 8.0146, "low": 7.7120, "high": 8.3172},
    )  # fmt: skip
    lanes = [
        {"id": i, "name": f"worker-{i}", "state": "busy" if running else "finished", "item": item if running else None,
         "tail": None, "done": 200 + i, "failed": 2 + i % 2, "heartbeat_age": 0.1}
        for i, item in enumerate(["doc-0612.md", "doc-0613.md", "doc-0614.md"])
    ]  # fmt: skip
    if running:
        lanes[1]["tail"] = "The committee's report finds that↵the budget rose by 4% while"
    failures = [
        {"name": f"doc-0{n}.md", "node": "summarize", "status": "failed", "duration": 2.5, "at": 300.0 + n,
         "lane": "worker-1", "error": err}
        for n, err in [(590, "TimeoutError: no answer in 60 s"), (342, "ValueError: empty document"),
                       (117, "RateLimitError: 429 Too Many Requests")]  # newest first, as a snapshot lists them
    ]  # fmt: skip
    return {
        "schema": 1, "run_id": RUN_ID, "name": "summarize-docs", "now": 754.25, "started_at_unix": STARTED,
        "events_dropped": 0, "worker_events_dropped": 0, "root": root, "lanes": lanes, "recent": [],
        "failures": failures, "metric_names": ["cost_usd", "tokens"],
    }  # fmt: skip


def _events() -> List[Dict[str, Any]]:
    base = {"run_id": RUN_ID, "run_name": "summarize-docs"}
    return [
        {**base, "event": "run_started", "timestamp": STARTED, "path": ["summarize-docs"]},
        {**base, "event": "log", "timestamp": STARTED + 12, "path": ["summarize-docs"], "level": "info",
         "message": "corpus has 1200 documents", "source": "loader"},
        {**base, "event": "log", "timestamp": STARTED + 310, "path": ["summarize-docs", "summarize"],
         "level": "warning", "message": "rate limited, backing off 2 s", "source": "llm"},
        {**base, "event": "item_failed", "timestamp": STARTED + 417, "path": ["summarize-docs", "summarize"],
         "item": "doc-0117.md", "error": "RateLimitError: 429 Too Many Requests"},
        {**base, "event": "log", "timestamp": STARTED + 500, "path": ["summarize-docs"], "level": "debug",
         "message": "cache hit ratio 0.42", "source": "loader"},
    ]  # fmt: skip


def _history(path: Path) -> None:
    db = connect(path)
    try:
        rows = [
            (
                "summarize",
                f"doc-0{600 + i}.md",
                "done",
                STARTED + 700 + i,
                1.25 + i / 8,
                None,
                json.dumps({"tokens": 2900 + 37 * i, "cost_usd": 0.0065 + i / 10000}),
            )
            for i in range(10)
        ] + [("summarize", "doc-0590.md", "failed", STARTED + 704.5, 60.0, "TimeoutError: no answer in 60 s", "{}")]
        rows.sort(key=lambda r: r[3])
        db.executemany(
            "INSERT INTO items (run_id, phase, name, status, started_at, duration, error, metrics) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(RUN_ID, *r) for r in rows],
        )
        db.commit()
    finally:
        db.close()


def publish(root: Path, history: Path, ended: Optional[str] = None) -> str:
    """Writes the fixture run in live directory `root` (running, or `ended` so): its id."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = root / RUN_ID
    for sub in (directory, directory / "commands", directory / "replies"):
        sub.mkdir(mode=0o700, exist_ok=True)
    _history(history)
    info = {
        "format": 1, "id": RUN_ID, "name": "summarize-docs", "pid": 4242, "pid_start": None,
        "host": "build-box", "argv": ["summarize.py", "--model", "gpt-4o-mini", "corpus/"],
        "cwd": "/home/ana/jobs", "started_at": STARTED, "history": str(history),
    }  # fmt: skip
    head = {
        "format": 1, "published": PUBLISHED, "ended": ended,
        "meta": {"model": "gpt-4o-mini", "provider": "openai"},
        "snapshot": snapshot(ended),
    }  # fmt: skip
    (directory / "run.json").write_text(json.dumps(info))
    (directory / "snapshot.json").write_text(json.dumps(head))
    (directory / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _events()))
    for name in ("run.json", "snapshot.json", "events.jsonl"):
        os.chmod(directory / name, 0o600)
    return RUN_ID
