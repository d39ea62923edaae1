"""`tqdm.contrib.concurrent`'s `thread_map` and `process_map`, with tqdm's signature (several
iterables, `max_workers=`, `chunksize=`, tqdm's keywords), on milepost's pools: each call an
item of the pool's phase, in a lane per worker."""

from __future__ import annotations

import functools
from typing import Any, Callable, List, Optional

from ..pools import thread_map as _thread_map
from ..processes import process_map as _process_map
from ..task import length_of
from ..track import TQDM_IGNORED

__all__ = ["thread_map", "process_map"]


def _star(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args)


def _pool_kwargs(iterables: tuple, tqdm_kwargs: dict) -> dict:
    tqdm_kwargs.pop("tqdm_class", None)
    tqdm_kwargs.pop("lock_name", None)
    desc = tqdm_kwargs.pop("desc", None)
    total = tqdm_kwargs.pop("total", None)
    unit = tqdm_kwargs.pop("unit", "it")
    tqdm_kwargs.pop("leave", None)
    unknown = set(tqdm_kwargs) - TQDM_IGNORED - {"disable", "file"}
    if unknown:
        raise TypeError(f"got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if total is None:
        lengths = [length_of(i) for i in iterables]
        total = min(lengths) if lengths and all(n is not None for n in lengths) else None  # type: ignore[type-var]
    return {
        "description": desc,
        "total": total,
        "unit": unit,
        "display": "none" if tqdm_kwargs.get("disable") else "auto",
    }


def thread_map(
    fn: Callable[..., Any], *iterables: Any, max_workers: Optional[int] = None, **tqdm_kwargs: Any
) -> List[Any]:
    """`list(map(fn, *iterables))` on a thread pool, with a bar (tqdm's thread_map)."""
    tqdm_kwargs.pop("chunksize", None)
    kwargs = _pool_kwargs(iterables, tqdm_kwargs)
    return _thread_map(functools.partial(_star, fn), zip(*iterables, strict=False), max_workers, **kwargs)


def process_map(
    fn: Callable[..., Any], *iterables: Any, max_workers: Optional[int] = None, chunksize: int = 1, **tqdm_kwargs: Any
) -> List[Any]:
    """`list(map(fn, *iterables))` in worker processes, with a bar (tqdm's process_map; `fn`
    must be picklable, as for ProcessPoolExecutor)."""
    kwargs = _pool_kwargs(iterables, tqdm_kwargs)
    return _process_map(functools.partial(_star, fn), zip(*iterables, strict=False), max_workers, chunksize, **kwargs)
