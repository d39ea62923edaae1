"""The dashboard API's answers as types: the OpenAPI description's schemas are generated from
them (and the history's records in `persistence.records`), and a test checks real answers
against those schemas."""

from __future__ import annotations

from typing import Any, Dict, List

from ..persistence.records import FailureRecord, ListedRun, LogRecord, PhaseRecord, RunOverview, TypedDict

__all__ = ["RunList", "PastRun", "LiveRun", "LogList", "ErrorAnswer", "CancelAnswer", "RetryAnswer"]


class RunList(TypedDict):
    """Live runs, then past runs, newest first (`total`: how many there are in all)."""

    runs: List[ListedRun]
    total: int


class PastRun(TypedDict):
    """A run from the history: its record, phases and newest failures."""

    live: bool
    run: RunOverview
    phases: List[PhaseRecord]
    failures: List[FailureRecord]


class LiveRun(TypedDict):
    """A live run (this process's, or another process's from the live directory): its latest
    snapshot (schema: `milepost/schema/snapshot-v1.json`, each node with its `cost`); `live` is
    false once it has ended; `state` is the snapshot's, or `crashed` when the run's process
    vanished without ending it (the snapshot is then its last one)."""

    live: bool
    state: str
    snapshot: Dict[str, Any]


class LogList(TypedDict):
    logs: List[LogRecord]


class ErrorAnswer(TypedDict):
    """What went wrong: a value that cannot be taken (named), a run that is not there, a run that
    has ended (naming how) or did not answer."""

    error: str


class CancelAnswer(TypedDict):
    """Cancel requested; `message` is the run's answer (items in flight finish, no new ones start)."""

    cancelled: bool
    message: str


class RetryAnswer(TypedDict):
    """The run's answer: how many failed items will run again (none, when no running pool has any)."""

    message: str
