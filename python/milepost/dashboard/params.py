"""The values an endpoint takes from its path, query or headers: each declared once, and read
and described (in the OpenAPI description) from that one declaration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import MilepostError
from ..persistence.logs import LEVELS


class BadInput(MilepostError, ValueError):
    """A value the API cannot take: answered 400 with this message, which names it."""


@dataclass(frozen=True)
class Param:
    """One value an endpoint takes.

    Attributes:
        name: Its name in the query, the header or the path.
        where: `query`, `header` or `path`.
        kind: `integer` (a whole number, `low..high`) or `string` (one of `choices`, if any).
        default: What an absent or empty value means.
        low: The smallest whole number taken.
        high: The largest (None: no limit).
        choices: The strings taken, case-insensitive (empty: any).
        about: What it means, for the description.
    """

    name: str
    where: str = "query"
    kind: str = "integer"
    default: Optional[int] = None
    low: int = 0
    high: Optional[int] = None
    choices: Tuple[str, ...] = ()
    about: str = ""

    def number(self, values: Mapping[str, str]) -> int:
        """The whole number in `values` (a query or headers), or the default; BadInput otherwise."""
        raw = values.get(self.name)
        if raw is None or raw == "":
            return self.default or 0
        value = int(raw) if raw.isascii() and raw.isdigit() else None
        if value is None or value < self.low or (self.high is not None and value > self.high):
            span = f"from {self.low} to {self.high}" if self.high is not None else f"{self.low} or more"
            raise BadInput(f"{self.name} must be a whole number {span}, got {raw!r}")
        return value

    def text(self, values: Mapping[str, str]) -> Optional[str]:
        """The string in `values`, or None when absent or empty; BadInput if not a choice."""
        raw = values.get(self.name)
        if raw is not None and raw != "" and self.choices and raw.lower() not in self.choices:
            raise BadInput(f"{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
        return raw or None

    def describe(self) -> Dict[str, Any]:
        """The OpenAPI parameter object."""
        schema: Dict[str, Any] = {"type": self.kind}
        if self.kind == "integer":
            schema["minimum"] = self.low
            if self.high is not None:
                schema["maximum"] = self.high
            if self.default is not None:
                schema["default"] = self.default
        if self.choices:
            schema = {"type": "string", "enum": list(self.choices)}
        out = {"name": self.name, "in": self.where, "required": self.where == "path", "schema": schema}
        return {**out, "description": self.about} if self.about else out


RUN_ID = Param("run_id", "path", "string", about="A run's id")
LIMIT = Param("limit", default=50, low=1, high=500, about="How many runs")
# Bounded: SQLite takes whole numbers below 2**63, and an offset past them answered 500.
OFFSET = Param("offset", default=0, high=10**9, about="How many runs to leave out first")
NAME = Param("name", kind="string", about="Only runs with this name")
LEVEL = Param("level", kind="string", choices=tuple(LEVELS), about="This level and worse")
SOURCE = Param("source", kind="string", about="Only lines from this source")
AFTER = Param("after", default=0, high=2**63 - 1, about="Only what came after this id")
LAST_EVENT_ID = Param("Last-Event-ID", "header", default=0, about="Resume after this event id (as `after`)")
RUN = Param("run", kind="string", about="The live run's id (required)")
