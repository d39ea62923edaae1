"""Run history: a SQLite store written in the background, and resuming interrupted runs."""

from .history import HistoryObserver, Resume, find_resumable, prior_rates
from .schema import SCHEMA_VERSION
from .store import Store, connect, default_path

__all__ = ["HistoryObserver", "Resume", "SCHEMA_VERSION", "Store", "connect", "default_path", "find_resumable", "prior_rates"]
