"""One line of a run, as `milepost runs` and the monitor's picker show it."""

from __future__ import annotations

from typing import Any, Dict

from .reader import LiveRun, LiveState

__all__ = ["row", "progress"]


def row(run: LiveRun, state: LiveState) -> Dict[str, Any]:
    root = state.root
    return {
        "id": run.id,
        "name": run.name,
        "state": state.state,
        "pid": run.pid,
        "done": root.get("done", 0),
        "processed": root.get("processed", root.get("done", 0)),
        "failed": root.get("failed", 0),
        "total": root.get("total"),
        "fraction": root.get("fraction"),
        "started_at": run.started_at,
        "published": state.published,
        "command": run.command,
        "meta": state.meta,
    }


def progress(entry: Dict[str, Any]) -> str:
    processed, total = entry["processed"], entry["total"]
    text = f"{processed:,}" if total is None else f"{processed:,}/{total:,}"
    if entry["fraction"] is not None:
        text += f" {entry['fraction'] * 100:.0f}%"
    if entry["failed"]:
        text += f" ({entry['failed']:,} failed)"
    return text
