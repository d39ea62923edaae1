"""What the history's reads return: typed dicts, so that the CLI's `--json`, the dashboard's API
and its OpenAPI description (JSON Schemas generated from these types) share one shape."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

try:  # pydantic, which generates the dashboard's schemas, needs this TypedDict before Python 3.12
    from typing_extensions import TypedDict
except ImportError:  # pragma: no cover - without typing_extensions there is no pydantic either
    from typing import TypedDict

# TypedDict too: the dashboard's answer types take it from here, for the same reason.
__all__ = [
    "TypedDict",
    "RunRecord",
    "ListedRun",
    "PhaseRecord",
    "WorkerRecord",
    "FailureRecord",
    "ItemCounts",
    "ReportRecord",
    "RunOverview",
    "RunDetail",
    "LogRecord",
    "ItemRecord",
    "Summary",
    "Stats",
    "AT_WORK",
]

#: A worker lane's states while its run goes on: a run that ended without a word (killed) left
#: its lanes in one of them, and they are read, and kept once it resumes, as `lost`.
AT_WORK = ("busy", "idle", "stalled")


class RunRecord(TypedDict):
    """A run: its row in the history (or, for a live run, its latest snapshot)."""

    id: str
    name: str
    status: str
    started_at: Optional[float]
    ended_at: Optional[float]
    elapsed: Optional[float]
    total: Optional[int]
    #: Items done, failed or skipped: progress, as every display counts it.
    processed: int
    done: int
    failed: int
    skipped: int
    retried: int
    #: Done out of done and failed; None before any was judged.
    success_rate: Optional[float]
    metrics: Dict[str, float]
    #: The sum of the money metrics (`persistence.money`), None without any.
    cost: Optional[float]
    #: How many times the run was resumed (None for a live run the history was not asked about).
    resumed: Optional[int]
    #: What the run is about (`Run(meta=...)`: model, provider, experiment...).
    meta: Dict[str, Any]
    #: CPU seconds its processes used (the run's, its workers', theirs) and their peak resident
    #: memory in bytes (`Run(resources=...)`); None when it sampled none.
    cpu_seconds: Optional[float]
    peak_rss_bytes: Optional[int]


class ListedRun(RunRecord):
    """A run in the dashboard's list: live (this process has it) or from the history."""

    live: bool


class PhaseRecord(TypedDict):
    """A phase or step of a past run."""

    #: The stored history path (escaped, unambiguous: `load#2/inner%2Fpart`).
    path: str
    name: str
    kind: str
    status: str
    total: Optional[int]
    processed: int
    done: int
    failed: int
    skipped: int
    retried: int
    elapsed: Optional[float]
    rate: Optional[float]
    mean_item_seconds: Optional[float]
    metrics: Dict[str, float]
    cost: Optional[float]
    #: The path for people: `load (2nd) › inner/part`.
    display: str
    #: What it counts (`phase(name, unit="doc")`; "it" in a history from before schema 7).
    unit: str
    #: tqdm's `unit_divisor` (1000 or 1024) for counts shown with SI prefixes, if it had one.
    unit_divisor: Optional[int]


class WorkerRecord(TypedDict):
    name: str
    state: str
    done: int
    failed: int


class FailureRecord(TypedDict):
    """One failure: its event, or its item row where the event was not kept."""

    #: Where it happened: the event's path (names below the run) or the item row's history path.
    phase: Optional[str]
    name: Optional[str]
    error: Optional[str]
    #: Unix time it was recorded.
    at: Optional[float]
    phase_display: str


class ItemCounts(TypedDict):
    """Item rows the history holds for a run."""

    n: int
    done: Optional[int]


class RunOverview(RunRecord):
    """A past run as `GET /api/runs/{id}` gives it beside its phases and failures."""

    workers: List[WorkerRecord]
    #: How many failures the history holds (the list may show fewer).
    failures_recorded: int
    items: ItemCounts


class ReportRecord(TypedDict):
    """What an item reported as it ran (`Item.progress`, `check`, `artifact`)."""

    #: Its phase for people (empty for the run itself).
    phase_display: str
    name: str
    #: How the item ended.
    status: str
    #: [n, of], or None when it reported none.
    progress: Optional[List[int]]
    #: (name, ok) each.
    checks: List[Tuple[str, bool]]
    #: (kind, path) each: kind `created` or `modified`.
    artifacts: List[Tuple[str, str]]


class RunDetail(RunOverview):
    """A past run with its phases, its newest failures and what its items reported (`milepost
    show`)."""

    phases: List[PhaseRecord]
    failures: List[FailureRecord]
    reports: List[ReportRecord]
    #: Attempts that failed and were tried again (their errors), newest first.
    retries: List[FailureRecord]
    #: What milepost itself warned of, oldest first: budget warnings, the cancel asked for
    #: and its reason, phases a budget stopped.
    notices: List["LogRecord"]


class LogRecord(TypedDict):
    """A log line or a failure, as the dashboard's log pane lists it."""

    id: int
    ts: Optional[float]
    kind: Optional[str]
    level: str
    source: Optional[str]
    message: str
    #: Names of the levels below the run.
    path: List[str]


class ItemRecord(TypedDict):
    """A finished item's row: how it ended, with its own metrics (`milepost monitor`)."""

    id: int
    #: Its node's history path (`map/inner`; empty for the run itself).
    phase: str
    name: str
    status: str
    started_at: Optional[float]
    duration: Optional[float]
    error: Optional[str]
    metrics: Dict[str, float]
    #: The sum of its money metrics, None without any.
    cost: Optional[float]


class Summary(TypedDict):
    min: float
    median: float
    max: float
    last: float


class Stats(TypedDict):
    """Durations, costs and success across the recent runs of a name (`milepost stats`)."""

    name: str
    #: Oldest first.
    runs: List[RunRecord]
    duration: Optional[Summary]
    cost: Optional[Summary]
    success_rate: Optional[Summary]
    cpu_seconds: Optional[Summary]
    peak_rss_bytes: Optional[Summary]
