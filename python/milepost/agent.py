"""What an agent loop reports of one item beyond its end: its own progress (iterations of a
maximum), the criteria it checked and the files it made or changed (`Item.progress`, `check`,
`artifact`). Checked here, kept bounded, and turned into the summary the live channel shows
and the fields of the `ItemDetails` event the history keeps."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from .errors import InvalidValueError

__all__ = ["Details", "summary", "ARTIFACT_KINDS", "MAX_ENTRIES", "MAX_TEXT"]

ARTIFACT_KINDS = ("created", "modified")
#: Checks and artifacts kept per item (the first ones: a loop that reports thousands is a bug,
#: and one event carries them all).
MAX_ENTRIES = 100
#: Characters kept of a check's name or an artifact's path.
MAX_TEXT = 300


def _count(value: Any, what: str) -> int:
    # bool is an int to Python, never a count to a person.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(f"{what} must be an int >= 0, got {value!r}")
    return value


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class Details:
    """One item's progress, checks (by name: the last verdict counts) and artifacts (by path:
    the last kind counts)."""

    __slots__ = ("progress", "checks", "artifacts")

    def __init__(self) -> None:
        self.progress: Optional[Tuple[int, int]] = None
        self.checks: Dict[str, bool] = {}
        self.artifacts: Dict[str, str] = {}

    def set_progress(self, n: Any, of: Any) -> None:
        n, of = _count(n, "progress"), _count(of, "progress's of")
        if of == 0 or n > of:
            raise InvalidValueError(f"progress's of must be > 0 and >= progress ({n}), got {of!r}")
        self.progress = (n, of)

    def check(self, name: Any, ok: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidValueError(f"a check's name must be a non-empty str, got {name!r}")
        if not isinstance(ok, bool):
            raise InvalidValueError(f"check {name!r}: ok must be a bool, got {ok!r}")
        name = _clip(name)
        if name in self.checks or len(self.checks) < MAX_ENTRIES:
            self.checks[name] = ok

    def artifact(self, path: Any, kind: Any) -> None:
        if kind not in ARTIFACT_KINDS:
            raise InvalidValueError(f"artifact kind must be one of {', '.join(ARTIFACT_KINDS)}, got {kind!r}")
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidValueError(f"an artifact's path must be a str or a path, got {path!r}")
        text = os.fspath(path)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not text:
            raise InvalidValueError("an artifact's path must not be empty")
        text = _clip(text)
        if text in self.artifacts or len(self.artifacts) < MAX_ENTRIES:
            self.artifacts[text] = kind

    def live(self) -> Dict[str, Any]:
        """What the live channel shows on the item's line: small, whatever the item reported."""
        return {
            "progress": list(self.progress) if self.progress else None,
            "checks_ok": sum(self.checks.values()),
            "checks": len(self.checks),
            "artifacts": len(self.artifacts),
        }

    def fields(self) -> Dict[str, Any]:
        """The `ItemDetails` event's fields (JSON-ready)."""
        checks: List[List[Any]] = [[name, ok] for name, ok in self.checks.items()]
        artifacts: List[List[str]] = [[kind, path] for path, kind in self.artifacts.items()]
        return {"progress": list(self.progress) if self.progress else None, "checks": checks, "artifacts": artifacts}


def summary(live: Dict[str, Any]) -> str:
    """`iteration 3/20 · checks 2/3 · 1 file`: an item's line in the monitor, from `live()`."""
    parts = []
    progress = live.get("progress")
    if isinstance(progress, list) and len(progress) == 2:
        parts.append(f"iteration {progress[0]}/{progress[1]}")
    if live.get("checks"):
        parts.append(f"checks {live.get('checks_ok', 0)}/{live['checks']}")
    files = live.get("artifacts")
    if files:
        parts.append(f"{files} file{'s' if files != 1 else ''}")
    return " · ".join(parts)
