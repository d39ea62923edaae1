"""Run history: a SQLite store written in the background, every read of it, and resuming
interrupted runs.

- `store`: the database, its connection settings and the one writer thread (item rows on the
  hot path: `Store.buffer`, `Store.item`).
- `observer`: `HistoryObserver` writes a run's row, phases, workers and events.
- `reads`: `History`, every read (runs, one run, logs, stats, resume point, prior rates).
- `resume`: what a new run takes from the history (`Resume`, `find_resumable`, `prior_rates`).
- `money`: the one rule for money metrics (`is_money`, `cost_of`).
- `records`, `paths`, `logs`, `failures`, `schema`: the shapes, names and pieces the above share.
"""

from .money import cost_of, is_money
from .observer import HistoryObserver
from .reads import History, NoHistory, Unreadable
from .resume import Resume, claim, find_resumable, prior_rates
from .schema import SCHEMA_VERSION, SchemaError
from .store import Store, connect, default_path

__all__ = [
    "HistoryObserver",
    "History",
    "NoHistory",
    "Resume",
    "SCHEMA_VERSION",
    "SchemaError",
    "Store",
    "connect",
    "cost_of",
    "default_path",
    "claim",
    "find_resumable",
    "is_money",
    "prior_rates",
    "Unreadable",
]
