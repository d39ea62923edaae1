"""A run that ended is freed once its user lets go of it: a long-lived process (a notebook, a
service) runs many."""

from __future__ import annotations

import gc
import weakref

import milepost


def _same(x: int) -> int:
    return x


def test_runs_that_shared_with_worker_processes_are_freed_when_they_end() -> None:
    # Every run that shared its counts with worker processes stayed for as long as the
    # process lived (held by the table that finds a run by its segment).
    ended = []
    for i in range(3):
        with milepost.Run(f"freed-{i}", display="none", history=False) as run:
            assert milepost.process_map(_same, range(50), workers=2) == list(range(50))
        ended.append(weakref.ref(run))
        del run
    gc.collect()
    assert [r() for r in ended] == [None, None, None]
