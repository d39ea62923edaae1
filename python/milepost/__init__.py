"""milepost: progress you can trust for jobs with thousands of items.

A Rust core counts updates from every thread at the cost of a C call, and one snapshot of that
state feeds the terminal bars, CI log lines, JSON lines and observers.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import _milepost, prices
from ._milepost import SCHEMA_VERSION
from .aio import async_as_completed, async_map
from .errors import Cancelled, InvalidValueError, MilepostError, RunEndedError
from .events import (
    Event,
    ItemDetails,
    ItemFailed,
    ItemRetried,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from .observers import BaseObserver, ConsoleSummary, JsonSnapshotFile, LoggingObserver, Observer
from .output import LoggingHandler, logging_redirect, print, suspend
from .pools import thread_map
from .prices import set_prices
from .processes import WorkerDied, process_as_completed, process_map
from .run import Run, current_run
from .snapshot import Snapshot
from .task import Item, Task, current_item
from .tqdm_compat import tqdm, trange
from .track import track
from .usage import TokenUsage, usage_of

try:  # one source, Cargo.toml's version, as the installed package's metadata has it
    __version__ = _version("milepost")
except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "SCHEMA_VERSION",
    "BaseObserver",
    "Cancelled",
    "ConsoleSummary",
    "Event",
    "InvalidValueError",
    "Item",
    "ItemFailed",
    "ItemDetails",
    "ItemRetried",
    "JsonSnapshotFile",
    "LogLine",
    "LoggingHandler",
    "tqdm",
    "trange",
    "logging_redirect",
    "LoggingObserver",
    "MilepostError",
    "Observer",
    "PhaseFinished",
    "PhaseStarted",
    "Run",
    "RunEndedError",
    "RunFinished",
    "RunStarted",
    "Snapshot",
    "StepFinished",
    "StepStarted",
    "Task",
    "TokenUsage",
    "WorkerDied",
    "async_as_completed",
    "async_map",
    "current_item",
    "current_run",
    "process_as_completed",
    "process_map",
    "prices",
    "print",
    "set_prices",
    "suspend",
    "thread_map",
    "track",
    "usage_of",
    "_milepost",
]
