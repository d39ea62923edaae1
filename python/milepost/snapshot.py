"""The Python face of a snapshot: the Rust view plus its parsed JSON, built on demand."""

from __future__ import annotations

import json
from typing import Optional, Any, Iterator, List, Tuple

from . import _milepost

__all__ = ["Snapshot"]


def node_paths(root: dict[str, Any]) -> Iterator[Tuple[str, dict[str, Any]]]:
    """`("map/inner", node)` for every phase and step under a snapshot's `root`, depth-first:
    the path the history and the metrics name a node by (the node's `path`: names escaped and
    repeated names numbered, so that no two nodes share one)."""
    for child in root.get("children", []):
        yield child["path"], child
        yield from node_paths(child)


class Snapshot:
    """One consistent view of a run, as every renderer and observer sees it.

    `data` is the JSON document (schema in the README); `run_line()`, `node_lines()` and
    `frame()` are the same text the native renderer draws.
    """

    __slots__ = ("_native", "_data", "_json")

    def __init__(self, native: _milepost.Snapshot) -> None:
        self._native = native
        self._data: dict[str, Any] | None = None
        self._json: str | None = None

    @property
    def events_dropped(self) -> int:
        """Lifecycle events lost to a full observer queue."""
        return self._native.events_dropped

    def json(self) -> str:
        """The snapshot as JSON text."""
        if self._json is None:
            self._json = self._native.json()
        return self._json

    @property
    def data(self) -> dict[str, Any]:
        """The snapshot as a dict (parsed once)."""
        if self._data is None:
            self._data = json.loads(self.json())
        return self._data

    @property
    def root(self) -> dict[str, Any]:
        """The run's own node, with phases and steps as `children`."""
        return self.data["root"]

    @property
    def now(self) -> float:
        return self._native.now

    def nodes(self) -> Iterator[Tuple[int, dict[str, Any]]]:
        """`(depth, node)` for every phase and step, depth-first (the run itself excluded)."""

        def walk(n: dict[str, Any], d: int) -> Iterator[Tuple[int, dict[str, Any]]]:
            for c in n["children"]:
                yield d, c
                yield from walk(c, d + 1)

        return walk(self.root, 1)

    def find(self, name: str) -> dict[str, Any]:
        """The first phase or step called `name`."""
        for _, n in self.nodes():
            if n["name"] == name:
                return n
        raise KeyError(name)

    def explicit_counts(self) -> List[Tuple[str, str, int, int]]:
        """`(path, kind, done, skipped)` per node: its own counts made without an item
        context, which the history keeps for a resumed run."""
        return self._native.explicit_counts()

    def run_line(self) -> str:
        return self._native.run_line()

    def node_lines(self) -> List[Tuple[int, str, str, str]]:
        return self._native.node_lines()

    def frame(self, width: int = 100, height: int = 40, max_lanes: int = 8) -> List[str]:
        return self._native.frame(width, height, max_lanes)

    def lane_lines(self, max_lanes: int = 8) -> List[str]:
        """The native frame's lane lines without colour: the lanes at work, problems first,
        then "… N more lanes"."""
        return self._native.lane_lines(max_lanes)

    def failure_line(self) -> Optional[str]:
        """The native frame's line for the newest failure (`  ✗ item: error`), if any."""
        return self._native.failure_line()
