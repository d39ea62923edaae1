"""What a worker that cannot map the run's shared memory sends its run (`remote.py`), and what
the run makes of it (`merge.py`): without Dask, the channel a list."""

from __future__ import annotations

from typing import Any, Dict, List

import milepost
from milepost.merge import Merger
from milepost.remote import RemoteContext


class Recorded:
    """A channel that keeps what is sent (the run decides below which messages arrive)."""

    source = "tcp://127.0.0.1:1"

    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []

    def send(self, message: Dict[str, Any]) -> None:
        self.messages.append(message)


def test_a_lost_message_leaves_the_counts_exact_as_the_next_one_carries_them_all() -> None:
    # Before, a message carried only the counts that changed since the one before: with that
    # one lost (dropped as too many, or overtaken and ignored as late) the run never had them.
    with milepost.Run("lost", display="none", history=False) as run:
        phase = run.phase("p")
        run.share()  # what a task handle does: its node gets the key messages name it by
        channel = Recorded()
        worker = RemoteContext(channel, run.id, run.name)
        try:
            task = worker.task(phase.shared_index, phase.path)
            for _ in range(5):
                task.advance()
            worker.send_now()  # lost on its way
            worker.send_now()  # nothing counted since
        finally:
            worker._stop.set()
        assert Merger(run.context).receive(channel.messages[-1])
        assert run.snapshot().data["root"]["children"][0]["done"] == 5


def test_a_worker_faster_than_its_messages_keeps_every_row() -> None:
    # A message took at most 2,000 rows, four messages a second: a worker counting more than
    # 8,000 items a second (a map of small items) piled its rows up past the 100,000 it keeps
    # waiting, and dropped the rest (a map of 300,000 items kept 232,000 rows).
    with milepost.Run("fast", display="none", history=False) as run:
        phase = run.phase("p")
        run.share()
        channel = Recorded()
        worker = RemoteContext(channel, run.id, run.name)
        try:
            task = worker.task(phase.shared_index, phase.path)
            for i in range(150_000):
                with task.item(f"doc-{i}"):
                    pass
            worker.send_now()
        finally:
            worker._stop.set()
        assert worker.rows_dropped == 0
        assert sum(len(m["rows"]) for m in channel.messages) == 150_000
