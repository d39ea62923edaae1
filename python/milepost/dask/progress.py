"""Progress of Dask's own work as a phase of the run: futures, and the partitions of a
collection (`dask.bag`, `dask.dataframe`, `dask.array`, `delayed`), the way
`distributed.progress` shows them, but in milepost's displays, history and dashboard."""

from __future__ import annotations

from typing import Any, List, Optional

from ..errors import MilepostError
from ..pools import PoolScope
from ..task import Task

__all__ = ["progress"]


def progress(
    *work: Any,
    client: Any = None,
    description: Optional[str] = "dask",
    unit: str = "task",
    run: Optional[Task] = None,
    task: Optional[Task] = None,
    display: Optional[str] = "auto",
) -> Any:
    """Waits for `work` (futures, or collections, which are persisted first) and counts each
    future (each partition of a collection) done or failed with its error as it finishes (a
    cancelled one failed, `CancelledError`), in a phase of the current run (`task`, or a new
    phase of `run`; else a run of its own). Returns
    what it was given, persisted: `progress(bag)` then `.compute()` takes the results at once.
    A failure is counted and kept; raise it with `future.result()` as Dask does."""
    from distributed import Future, as_completed, default_client, futures_of

    try:
        client = client or default_client()
    except ValueError:
        raise MilepostError("milepost.dask.progress needs a Dask client: pass client=, or make one first") from None
    given: List[Any] = []
    futures: List[Any] = []
    for thing in work:
        if isinstance(thing, Future) or (
            isinstance(thing, (list, tuple)) and all(isinstance(f, Future) for f in thing)
        ):
            given.append(thing)
            futures += [thing] if isinstance(thing, Future) else list(thing)
        else:  # a collection: its partitions' futures once it is persisted
            persisted = client.persist(thing)
            given.append(persisted)
            futures += futures_of(persisted)
    scope = PoolScope(progress, description, len(futures), unit, run, task, display)
    failure: Optional[BaseException] = None
    try:
        for future in as_completed(futures):
            name = _name(future.key)
            if future.status == "error":
                scope.task.fail(name, future.exception())
            elif future.status == "cancelled":  # it will never run: not done
                scope.task.fail(name, f"CancelledError: {future.key} was cancelled")
            else:
                scope.task.advance()
    except BaseException as e:
        failure = e
        raise
    finally:
        scope.end(failure)
    return given[0] if len(given) == 1 else tuple(given)


def _name(key: Any) -> str:
    """A Dask key as an item's name: `('inc-ab12…', 3)` becomes `inc-ab12…[3]`."""
    if isinstance(key, tuple) and key:
        head, *rest = key
        return f"{head}[{', '.join(str(r) for r in rest)}]"
    return str(key)
