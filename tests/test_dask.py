"""Runs counted from Dask workers over Dask's own channels (`MILEPOST_TRANSPORT=dask`), on a
real LocalCluster of two worker processes, loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

distributed = pytest.importorskip("distributed")

import milepost  # noqa: E402
import milepost.dask as mdask  # noqa: E402
from milepost import wire  # noqa: E402
from milepost.dask.link import DaskRoute  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes that cannot use the run's shared memory (the transport forced)."""
    before = os.environ.get("MILEPOST_TRANSPORT")
    os.environ["MILEPOST_TRANSPORT"] = "dask"  # inherited by the worker processes
    # Loopback only, the scheduler's HTTP server on any free port (with no dashboard it still
    # takes Dask's 8787 otherwise, which another cluster on the machine may hold).
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    )
    try:
        c = distributed.Client(cluster)
        try:
            c.wait_for_workers(2, timeout=60)  # a worker that never joins fails here, not in a gather
            yield c
        finally:
            c.close()
    finally:
        cluster.close()
        if before is None:
            os.environ.pop("MILEPOST_TRANSPORT", None)
        else:
            os.environ["MILEPOST_TRANSPORT"] = before


class Events(milepost.BaseObserver):
    def __init__(self) -> None:
        self.events: List[milepost.Event] = []

    def on_event(self, event: milepost.Event) -> None:
        self.events.append(event)

    def logs(self) -> List[str]:
        return [e.message for e in self.events if isinstance(e, milepost.LogLine)]


def _count(phase: milepost.Task, n: int) -> str:
    for _ in range(n):
        phase.advance()
    return type(phase.context).__name__


def _square(x: int) -> int:
    if x % 1000 == 7:
        raise ValueError(f"bad item {x}")
    return x * x


def _nodes(run: milepost.Run) -> Dict[str, Dict[str, Any]]:
    root = run.snapshot().data["root"]
    return {n["name"]: n for n in root["children"]}


def test_four_tasks_advance_exactly_and_a_lane_per_worker(client: Any) -> None:
    with milepost.Run("adv", display="none", history=False) as run:
        phase = run.phase("count")
        kinds = client.gather(client.map(_count, [phase] * 4, [100_000] * 4, pure=False))
        workers = set(client.scheduler_info()["workers"])
    assert kinds == ["RemoteContext"] * 4  # counted locally, sent over Dask: not shared memory
    assert _nodes(run)["count"]["done"] == 400_000
    lanes = run.snapshot().data["lanes"]
    assert {lane["name"] for lane in lanes} <= workers and lanes


def test_map_counts_ten_thousand_items_with_failures(client: Any) -> None:
    with milepost.Run("map", display="none", history=False) as run:
        results = mdask.map(_square, range(10_000), client=client, return_exceptions=True, description="squares")
        node = _nodes(run)["squares"]  # exact when map returns, before the run ends
        assert (node["done"], node["failed"]) == (9_990, 10)
    assert results[8] == 64 and isinstance(results[7], ValueError)
    failures = run.snapshot().data["failures"]
    assert {f["error"] for f in failures} >= {"ValueError: bad item 9007"}
    assert all(f["lane"].startswith("tcp://127.0.0.1:") for f in failures)


def test_rows_sent_from_the_workers_are_kept_in_the_history(client: Any, tmp_path) -> None:
    # The items' rows travel with the counts (`remote`): each is kept once, under its phase.
    history = tmp_path / "runs.db"
    with milepost.Run("rows", display="none", history=history) as run:
        mdask.map(_square, range(200), client=client, return_exceptions=True, description="squares")
    db = sqlite3.connect(str(history))
    rows = db.execute("SELECT phase, name, status, error FROM items WHERE run_id = ?", (run.id,)).fetchall()
    db.close()
    assert sorted(int(r[1]) for r in rows) == list(range(200)), "one row an item"
    assert {r[0] for r in rows} == {"squares"}
    assert [(r[1], r[2], r[3]) for r in rows if r[2] != "done"] == [("7", "failed", "ValueError: bad item 7")]


def test_the_scheduler_keeps_no_message_of_a_map_that_returned_or_a_run_that_ended(client: Any) -> None:
    # Dask's scheduler keeps the last 1,000 events of every topic for as long as it lives: the
    # messages of a run of 300,000 items held all their rows there (78 MB) after the run ended.
    # And a worker sent a heartbeat a second, on a thread of its own, for every run it ever
    # counted for, for as long as it lived.
    with milepost.Run("kept", display="none", history=False) as run:
        topic = f"milepost-{run.id}"
        mdask.map(_square, range(5000), client=client, return_exceptions=True, description="squares")
        assert sum(len(m["rows"]) for _, m in client.get_events(topic)) == 0  # merged, then dropped
        phase = run.phase("counted")
        client.submit(_count, phase, 10, pure=False).result()
        assert any(client.run(_sending_for, run.id).values())
    assert _nodes(run)["counted"]["done"] == 10
    assert not any(client.run(_sending_for, run.id).values())
    kept = len(client.get_events(topic))
    time.sleep(1.5)  # a heartbeat's interval and some
    assert len(client.get_events(topic)) == kept <= 1


def _sending_for(run_id: str) -> List[str]:
    return [t.name for t in threading.enumerate() if t.name == f"milepost-remote-{run_id}"]


def test_map_raises_the_first_failure_and_as_completed_yields_all(client: Any) -> None:
    with milepost.Run("map2", display="none", history=False):
        with pytest.raises(ValueError, match="bad item 7"):
            mdask.map(_square, range(20), client=client)
        got = dict(mdask.as_completed(_square, range(20), client=client, description="each"))
    assert sorted(got) == list(range(20)) and got[3] == 9


def _send(topic: str, messages: List[Dict[str, Any]], dask_worker: Any = None) -> int:
    for m in messages:
        dask_worker.log_event(topic, m)
    return len(messages)


def _message(run_id: str, source: str, seq: int, done: int, version: int = wire.VERSION) -> Dict[str, Any]:
    return {
        "milepost": version,
        "run": run_id,
        "source": source,
        "seq": seq,
        "nodes": {"1": [done, 0, 0, 0, 0, None, {}]},
        "made": {},
        "rows": [],
        "rows_dropped": 0,
        "lanes": [],
        "events": [],
        "events_dropped": 0,
    }


def _wait(cond: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_message_of_another_version_is_refused_and_said(client: Any) -> None:
    seen = Events()
    with milepost.Run("versions", display="none", history=False, observers=[seen]) as run:
        run.phase("p")
        link = mdask.connect(run.context, client)
        client.submit(int, pure=False).result()  # the subscription reached the scheduler (same stream)
        worker = next(iter(client.scheduler_info()["workers"]))
        client.run(_send, link.route.topic, [_message(run.id, worker, 1, 5, version=0)], workers=[worker])
        _wait(lambda: link.merger.stats().get(worker, {}).get("refused") == 1)
        assert _nodes(run)["p"]["done"] == 0
    assert any("version 0" in line and "older milepost" in line for line in seen.logs())
    with pytest.raises(wire.WireError, match="version 2"):
        wire.check({**_message("r", "w", 1, 0), "milepost": 2})


def test_a_flood_is_bounded_counted_and_shown_and_counts_stay_exact(client: Any) -> None:
    seen = Events()
    with milepost.Run("flood", display="none", history=False, observers=[seen]) as run:
        phase = run.phase("p")
        run.share()  # what a task handle does: its node gets the key messages name it by
        assert phase.shared_index == 1
        link = mdask.connect(run.context, client)
        client.submit(int, pure=False).result()  # the subscription reached the scheduler (same stream)
        worker = next(iter(client.scheduler_info()["workers"]))
        flood = [_message(run.id, worker, i, i) for i in range(1, 501)]
        client.run(_send, link.route.topic, flood, workers=[worker])
        _wait(lambda: link.merger.stats().get(worker, {}).get("dropped", 0) >= 400)
        time.sleep(0.3)  # the sender may send again (its allowance refills)
        client.run(_send, link.route.topic, [_message(run.id, worker, 501, 501)], workers=[worker])
        _wait(lambda: link.merger.stats()[worker]["seq"] == 501)
        assert _nodes(run)["p"]["done"] == 501  # the totals a later message carried
    assert any("too many messages" in line for line in seen.logs())


def test_a_bunch_of_messages_arriving_at_once_is_no_flood(client: Any) -> None:
    # A worker sends four messages a second, but they reach the run in bunches (the worker's
    # loop busy, the scheduler's batches): up to 33 at once were seen from a plain map, and
    # past 16 at once they were dropped as a flood, with the item rows they carried.
    with milepost.Run("bunch", display="none", history=False) as run:
        run.phase("p")
        run.share()
        link = mdask.connect(run.context, client)
        client.submit(int, pure=False).result()  # the subscription reached the scheduler (same stream)
        worker = next(iter(client.scheduler_info()["workers"]))
        bunch = [_message(run.id, worker, i, i) for i in range(1, 41)]
        client.run(_send, link.route.topic, bunch, workers=[worker])
        _wait(lambda: link.merger.stats().get(worker, {}).get("seq", 0) == 40)
        assert link.merger.stats()[worker]["dropped"] == 0


def test_maps_started_at_once_from_threads_share_one_link(client: Any) -> None:
    # Each thread made a link of its own: each subscribed the run's topic (Dask keeps the last
    # handler), and the others waited out their 10 s for messages that went elsewhere.
    with milepost.Run("threads", display="none", history=False) as run:
        start = threading.Barrier(4)
        links: List[Any] = []

        def first_map(i: int) -> None:
            start.wait(10)
            links.append(mdask.connect(run.context, client))
            mdask.map(
                _square,
                range(i * 100, i * 100 + 100),
                client=client,
                return_exceptions=True,
                run=run,
                description=f"m{i}",
            )

        threads = [threading.Thread(target=first_map, args=(i,)) for i in range(4)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len({id(link) for link in links}) == 1 and len(run.context.links) == 1
        assert time.monotonic() - began < 8  # no map waited out another's link
    assert sum(n["done"] + n["failed"] for n in _nodes(run).values()) == 400


def _send_from_a_thread_then_the_loop(
    topic: str, first: Dict[str, Any], second: Dict[str, Any], dask_worker: Any = None
) -> None:
    # What a worker does when the run asks for its counts (`flush`, on the worker's event loop)
    # just after its sending thread sent: the thread's message is queued for the loop, then
    # the loop sends its own.
    channel = DaskRoute(topic).open()
    sender = threading.Thread(target=channel.send, args=(first,))
    sender.start()
    sender.join()
    channel.send(second)


def test_messages_from_a_workers_thread_and_its_loop_arrive_in_the_order_sent(client: Any) -> None:
    # A later message that overtook an earlier one had the earlier one ignored as late: its
    # rows and events were lost (and, before every message carried every count, its counts).
    seen = Events()
    with milepost.Run("order", display="none", history=False, observers=[seen]) as run:
        run.phase("p")
        run.share()
        link = mdask.connect(run.context, client)
        client.submit(int, pure=False).result()  # the subscription reached the scheduler (same stream)
        worker = next(iter(client.scheduler_info()["workers"]))
        first, second = _message(run.id, worker, 1, 5), _message(run.id, worker, 2, 5)
        first["events"] = [["1", "log", {"message": "sent first", "level": "info"}]]
        second["events"] = [["1", "log", {"message": "sent second", "level": "info"}]]
        client.run(_send_from_a_thread_then_the_loop, link.route.topic, first, second, workers=[worker])
        _wait(lambda: link.merger.stats().get(worker, {}).get("seq") == 2)
    assert [line for line in seen.logs() if line.startswith("sent")] == ["sent first", "sent second"]


def _count_then_hang(phase: milepost.Task, flag: str) -> int:
    if os.path.exists(flag):  # Dask runs it again elsewhere once its worker is gone
        return 0
    open(flag, "w").close()
    for _ in range(1000):
        phase.advance()
    with phase.item("hangs"):
        time.sleep(60)
    return 1


def test_a_killed_worker_is_lost_and_counts_stay(client: Any, tmp_path: Any) -> None:
    with milepost.Run("kill", display="none", history=False) as run:
        phase = run.phase("p")
        fut = client.submit(_count_then_hang, phase, str(tmp_path / "ran"), pure=False)
        _wait(lambda: _nodes(run)["p"]["in_flight"] == 1 and _nodes(run)["p"]["done"] == 1000)
        busy = [lane["name"] for lane in run.snapshot().data["lanes"] if lane["state"] == "busy"]
        pids = client.run(os.getpid, workers=busy)
        os.kill(pids[busy[0]], signal.SIGKILL)
        _wait(lambda: _nodes(run)["p"]["failed"] == 1, seconds=20)
        assert fut.result(timeout=30) == 0
        node = _nodes(run)["p"]
        assert (node["done"], node["failed"], node["in_flight"]) == (1000, 1, 0)
        failure = run.snapshot().data["failures"][0]
        assert failure["error"] == f"worker lost ({busy[0]})" and failure["name"] == "hangs"


def _dies_on_15(x: int) -> int:
    if x == 15:
        os._exit(1)  # the worker dies, each time Dask runs the chunk again (KilledWorker)
    time.sleep(0.002)
    return x


def test_a_chunk_that_kills_its_workers_counts_its_items_failed(client: Any, tmp_path: Any) -> None:
    # The items of a chunk that failed as a whole were never counted (190 of 200 done, no
    # failure).
    history = tmp_path / "runs.db"
    with milepost.Run("dies", display="none", history=history) as run:
        results = mdask.map(
            _dies_on_15, range(100), client=client, chunksize=10, return_exceptions=True, description="d"
        )
        node = _nodes(run)["d"]
    # Dask also gives up on a chunk that waited on a worker each time it died.
    lost = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert set(range(10, 20)) <= set(lost) and all(type(results[i]).__name__ == "KilledWorker" for i in lost)
    assert node["failed"] >= len(lost)
    # Nothing finished is lost with a dying worker (a chunk it finished in its last 3 s may
    # run again: at least once).
    assert node["done"] >= 100 - len(lost)
    db = sqlite3.connect(str(history))
    failed = {n for (n,) in db.execute("SELECT name FROM items WHERE run_id = ? AND status = 'failed'", (run.id,))}
    db.close()
    assert {str(i) for i in range(16, 20)} <= failed  # never started anywhere: failed with the chunk
    client.wait_for_workers(2, timeout=60)  # the nanny brought them back for the tests after


def _inc_or_fail(x: int) -> int:
    if x == 13:
        raise ValueError("thirteen")
    return x + 1


def test_progress_counts_futures_and_a_collections_partitions(client: Any) -> None:
    import dask.bag as db

    events = Events()
    with milepost.Run("dask-progress", display="none", observers=[events]) as run:
        futures = client.map(_inc_or_fail, range(30), pure=False)
        same = mdask.progress(futures, description="futures")
        assert same is futures
        bag = db.from_sequence(range(40), npartitions=8).map(lambda x: x * 2)
        persisted = mdask.progress(bag, description="bag", unit="partition")
        assert sorted(persisted.compute()) == [2 * x for x in range(40)]
    snap = run.snapshot()
    futures_phase, bag_phase = snap.find("futures"), snap.find("bag")
    assert (futures_phase["done"], futures_phase["failed"], futures_phase["state"]) == (29, 1, "completed")
    assert (bag_phase["done"], bag_phase["total"], bag_phase["state"]) == (8, 8, "completed")
    failed = [e for e in events.events if isinstance(e, milepost.ItemFailed)]
    assert [e.error for e in failed] == ["ValueError: thirteen"] and failed[0].item.startswith("_inc_or_fail-")


def test_progress_counts_a_cancelled_future_failed_not_done(client: Any) -> None:
    with milepost.Run("dask-cancelled", display="none", history=False) as run:
        futures = client.map(_inc_or_fail, range(4), pure=False)
        slow = client.submit(time.sleep, 30, pure=False)
        client.cancel([slow])
        mdask.progress([*futures, slow], description="some")
    node = run.snapshot().find("some")
    assert (node["done"], node["failed"]) == (4, 1)
    assert run.snapshot().data["failures"][0]["error"].startswith("CancelledError")


def _five_then_broken() -> Iterator[int]:
    yield from range(5)
    raise OSError("the source went away")


def test_items_that_raise_end_the_maps_phase_and_its_own_run_failed(client: Any) -> None:
    with milepost.Run("broken", display="none", history=False) as run:
        with pytest.raises(OSError, match="went away"):
            mdask.map(_square, _five_then_broken(), client=client, description="m")
        assert run.snapshot().find("m")["state"] == "failed"
    with pytest.raises(OSError, match="went away"):
        mdask.map(_square, _five_then_broken(), client=client, description="alone", display="none")
    assert milepost.current_run() is None


def _advance_and_return(phase: milepost.Task, n: int) -> int:
    for _ in range(n):
        phase.advance()
    return n


def _spawn(tmp_path: Any, *args: str) -> "subprocess.Popen[bytes]":
    # The test's functions travel by reference: the scheduler unpickles task graphs too.
    path = os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MILEPOST_TRANSPORT": "dask", "PYTHONPATH": path}
    with open(tmp_path / f"{args[0]}.log", "wb") as log:  # the child has its own copy
        command = [sys.executable, "-m", f"distributed.cli.dask_{args[0]}", *args[1:]]
        return subprocess.Popen(command, stdout=log, stderr=log, env=env)


def test_a_scheduler_that_goes_away_mid_run_ends_the_run_with_what_arrived(tmp_path: Any) -> None:
    # A scheduler and a worker of their own, in processes, so that the scheduler can be killed.
    file = str(tmp_path / "scheduler.json")
    procs = [
        _spawn(
            tmp_path,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            file,
        )
    ]
    seen = Events()
    try:
        _wait(lambda: os.path.exists(file), seconds=60)
        procs.append(
            _spawn(
                tmp_path,
                "worker",
                "--scheduler-file",
                file,
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            )
        )
        with distributed.Client(scheduler_file=file, timeout=60) as c:
            c.wait_for_workers(1, timeout=60)
            with milepost.Run("orphan", display="none", history=False, observers=[seen]) as run:
                phase = run.phase("p")
                assert c.submit(_advance_and_return, phase, 500, pure=False).result() == 500
                mdask.connect(run.context, c).sync()  # what the worker counted is in
                procs[0].kill()  # the scheduler goes; the worker stays
                procs[0].wait(10)
                ended = time.monotonic()
            took = time.monotonic() - ended
            with contextlib.suppress(Exception):
                c.close(timeout=2)  # a client whose scheduler is gone
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
    assert run.state == "completed" and _nodes(run)["p"]["done"] == 500
    assert took < 15, f"the run's end waited {took:.1f}s for a scheduler that is gone"
    assert any("last counts could not be asked for" in line for line in seen.logs()), seen.logs()


def test_progress_counts_a_dataframe_computation_by_partition(client: Any) -> None:
    import dask.dataframe as dd  # the test dependencies bring dask[dataframe] (pyarrow)
    import pandas as pd

    frame = dd.from_pandas(pd.DataFrame({"a": range(100), "b": range(100)}), npartitions=5)
    with milepost.Run("dask-frame", display="none", history=False) as run:
        totals = mdask.progress(frame.assign(c=frame.a + frame.b), description="frame", unit="partition")
        assert int(totals.c.sum().compute()) == 2 * sum(range(100))
    node = run.snapshot().find("frame")
    assert (node["done"], node["total"], node["unit"], node["state"]) == (5, 5, "partition", "completed")
