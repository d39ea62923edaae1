"""The Python face of a snapshot: the native view, its JSON, and a typed view of the JSON
(`SnapshotData`, `NodeData`...: the README's schema as TypedDicts) with one walk of its tree."""

from __future__ import annotations

import html as _html
import json
import re
from typing import Dict, Iterator, List, Literal, Optional, Sequence, Tuple, TypedDict, Union

from . import _milepost

__all__ = [
    "DiskSpaceData",
    "ItemData",
    "KeptData",
    "LaneData",
    "NodeData",
    "ProjectedCostData",
    "ResourcesData",
    "Snapshot",
    "SnapshotData",
    "node_paths",
    "walk",
]

NodeKind = Literal["run", "phase", "step"]
NodeState = Literal["pending", "running", "completed", "failed", "cancelled"]


class ProjectedCostData(TypedDict):
    """The cost at completion: spent plus the items left at the mean cost per item, with a
    ~90% range (`low` and `high` None when the items' own costs are not known)."""

    value: float
    low: Optional[float]
    high: Optional[float]


class PassData(TypedDict):
    """The current pass of a loop entered again (see `NodeData.current_pass`)."""

    number: int
    processed: int
    total: Optional[int]


class NodeData(TypedDict):
    """The run, a phase or a step, counts rolled up (README: "Snapshot schema")."""

    id: int
    name: str
    path: str
    kind: NodeKind
    unit: str
    #: Counts shown with SI prefixes in steps of this (tqdm's `unit_scale`), or None.
    unit_divisor: Optional[int]
    #: False for a loop made with tqdm's leave=False in a run: not drawn once it ended.
    leave: bool
    state: NodeState
    total: Optional[int]
    done: int
    failed: int
    skipped: int
    retried: int
    in_flight: int
    processed: int
    fraction: Optional[float]
    success_rate: Optional[float]
    rate: Optional[float]
    eta: Optional[float]
    eta_low: Optional[float]
    eta_high: Optional[float]
    stalled_for: Optional[float]
    eta_from_history: bool
    mean_item_seconds: Optional[float]
    elapsed: Optional[float]
    metrics: Dict[str, Union[int, float]]
    cost: Optional[float]
    cost_per_item: Optional[float]
    projected_cost: Optional[ProjectedCostData]
    tail: Optional[str]
    tail_item: Optional[str]
    #: A loop entered again (an inner loop): the pass its displays show; None on the first.
    current_pass: Optional[PassData]
    children: List[NodeData]


class LaneData(TypedDict):
    """A worker thread's or worker process's lane."""

    id: int
    name: str
    state: str
    item: Optional[str]
    tail: Optional[str]
    done: int
    failed: int
    heartbeat_age: float
    pid: Optional[int]
    cpu_percent: Optional[float]
    rss_bytes: Optional[int]


class DiskSpaceData(TypedDict):
    """Free space of the filesystem of a directory the run writes to."""

    path: str
    free_bytes: Optional[int]
    total_bytes: Optional[int]
    free_fraction: Optional[float]
    low: bool


class ResourcesData(TypedDict):
    """The run's process tree and the filesystems it writes to, as of the latest sample."""

    interval: float
    at: float
    processes: int
    unreadable: int
    cpu_percent: Optional[float]
    machine_cpu_percent: Optional[float]
    cores: int
    rss_bytes: Optional[int]
    read_bytes_per_second: Optional[float]
    write_bytes_per_second: Optional[float]
    open_files: Optional[int]
    cpu_seconds: float
    peak_rss_bytes: int
    disks: List[DiskSpaceData]
    error: Optional[str]


class ItemData(TypedDict):
    """A finished item in `recent`, or a failure in `failures`."""

    name: str
    node: str
    status: str
    duration: Optional[float]
    at: float
    lane: Optional[str]
    error: Optional[str]


class SnapshotData(TypedDict):
    """The whole snapshot document."""

    schema: int
    run_id: str
    name: str
    now: float
    started_at_unix: float
    events_dropped: int
    worker_events_dropped: int
    root: NodeData
    lanes: List[LaneData]
    recent: List[ItemData]
    failures: List[ItemData]
    metric_names: List[str]
    resources: Optional[ResourcesData]


class KeptData(TypedDict):
    """What `Snapshot.kept()` gives: the parts of `SnapshotData` the history keeps."""

    root: NodeData
    lanes: List[LaneData]
    resources: Optional[ResourcesData]


def walk(root: NodeData) -> Iterator[Tuple[int, NodeData]]:
    """`(depth, node)` for every phase and step below `root`, depth-first, in creation order
    (the run itself excluded): the one walk of the tree every reader uses."""
    stack: List[Tuple[int, NodeData]] = [(1, child) for child in reversed(root["children"])]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, child) for child in reversed(node["children"]))


def node_paths(root: NodeData) -> Iterator[Tuple[str, NodeData]]:
    """`("map/inner", node)` for every phase and step under `root`: the key the history and
    the metrics name a node by (names escaped and repeated names numbered, so that no two
    nodes share one)."""
    for _, node in walk(root):
        yield node["path"], node


#: A terminal's colour and style codes (`\x1b[32m`).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Snapshot:
    """One consistent view of a run, as every renderer and observer sees it.

    `data` is the JSON document, typed as `SnapshotData` (schema in the README); `run_line()`,
    `node_lines()`, `lane_lines()`, `failure_line()` and `frame()` are the text the native
    renderer draws, for displays that lay out the rest themselves.
    """

    __slots__ = ("_native", "_data", "_json", "_kept")

    def __init__(self, native: _milepost.Snapshot) -> None:
        self._native = native
        self._data: Optional[SnapshotData] = None
        self._json: Optional[str] = None
        self._kept: Optional[KeptData] = None

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
    def data(self) -> SnapshotData:
        """The snapshot as a dict (parsed once)."""
        if self._data is None:
            self._data = json.loads(self.json())
        return self._data

    @property
    def root(self) -> NodeData:
        """The run's own node, with phases and steps as `children`."""
        return self.data["root"]

    def kept(self) -> KeptData:
        """The run's tree, lanes and resources, as in `data` (parsed once), without decoding
        the recent items and failures: what the history keeps of a snapshot, read every
        second."""
        if self._data is not None:
            return {"root": self._data["root"], "lanes": self._data["lanes"], "resources": self._data["resources"]}
        if self._kept is None:
            self._kept = json.loads(self._native.kept_json())
        return self._kept

    @property
    def now(self) -> float:
        return self._native.now

    def nodes(self) -> Iterator[Tuple[int, NodeData]]:
        """`(depth, node)` for every phase and step, depth-first (the run itself excluded)."""
        return walk(self.root)

    def find(self, name: str) -> NodeData:
        """The first phase or step called `name`."""
        for _, n in self.nodes():
            if n["name"] == name:
                return n
        raise KeyError(name)

    def explicit_counts(self) -> List[Tuple[str, str, int, int]]:
        """`(path, kind, done, skipped)` per node: its own counts made without an item
        context, which the history keeps for a resumed run."""
        return self._native.explicit_counts()

    @property
    def state(self) -> str:
        """The run's state (its root's), without decoding the JSON."""
        return self._native.state

    @property
    def failed(self) -> int:
        """The items the run counts failed (its root's), without decoding the JSON."""
        return self._native.failed

    def run_line(self) -> str:
        return self._native.run_line()

    def node_lines(self) -> List[Tuple[int, str, str, str]]:
        """`(depth, name, state, stats)` for every phase and step, in `nodes()`'s order."""
        return self._native.node_lines()

    def frame(self, width: int = 100, height: int = 40, max_lanes: int = 8) -> List[str]:
        return self._native.frame(width, height, max_lanes)

    def html(self, width: int = 100, max_lanes: int = 8, notes: Sequence[str] = ()) -> str:
        """The native frame as an HTML block (`notes`: lines under it, such as the newest log
        lines): text, escaped, as names and errors are the job's."""
        # The frame's colours are terminal codes: HTML gets the text (the marks ✓ ✗ stay).
        lines = [_html.escape(_ANSI.sub("", line)) for line in self.frame(width, 40, max_lanes)]
        lines += [f'<span style="opacity:.75">{_html.escape(note)}</span>' for note in notes]
        style = "font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.35;margin:0"
        return f'<pre class="milepost" style="{style}">' + "\n".join(lines) + "</pre>"

    def _repr_html_(self) -> str:
        """Jupyter shows a snapshot as its frame."""
        return self.html()

    def lane_lines(self, max_lanes: int = 8) -> List[str]:
        """The native frame's lane lines without colour: the lanes at work, problems first,
        then "… N more lanes"."""
        return self._native.lane_lines(max_lanes)

    def failure_line(self) -> Optional[str]:
        """The native frame's line for the newest failure (`  ✗ item: error`), if any."""
        return self._native.failure_line()
