"""A process pool's chunks come back in one piece (results, history rows, recent items): every
item still has its own row, result and count, whatever the chunk size, and a worker killed in
the middle of a chunk leaves exact counts (its chunk's rows are lost: a resumed run runs
those items again)."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

import milepost
from procs_helpers import (
    a_coroutine_inside,
    counted_once,
    die_on_13,
    exits_on_4,
    ident,
    items_of_another_phase,
    keep_the_item,
    label_name,
    mixed,
    nap_or_fail,
)


@pytest.fixture(autouse=True)
def shm_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "shm"
    d.mkdir()
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(d))
    return d


def _rows(run: milepost.Run) -> dict:
    db = sqlite3.connect(str(run.history_path))
    try:
        rows = db.execute(
            "SELECT name, phase, status, started_at, duration, error, metrics FROM items WHERE run_id = ?", (run.id,)
        ).fetchall()
    finally:
        db.close()
    by_name = {r[0]: r[1:] for r in rows}
    assert len(by_name) == len(rows), "one row an item"
    return by_name


def _expected(x: int):
    if x % 10 == 3:
        return "failed", f"ValueError: bad {x}", None
    if x % 10 == 5:
        return "skipped", None, None
    return "done", None, {"tokens": x}


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("named", [False, True])
def test_every_item_of_every_chunk_has_its_row_result_and_count(method, named) -> None:
    items = 57  # chunks of 8: the last one is short
    kw = {"item_name": lambda item, i: f'doc "{item}" é'} if named else {}
    name = (lambda x: f'doc "{x}" é') if named else str
    with milepost.Run("bulk", display="none") as run:
        out = milepost.process_map(
            mixed,
            range(items),
            workers=2,
            chunksize=8,
            description="m",
            return_exceptions=True,
            mp_context=mp.get_context(method),
            **kw,
        )
        snap = run.snapshot()
    for x, value in enumerate(out):
        if x % 10 == 3:
            assert isinstance(value, ValueError) and str(value) == f"bad {x}"
        else:
            assert value == (-x if x % 10 == 5 else x)
    m = snap.find("m")
    failed = sum(1 for x in range(items) if x % 10 == 3)
    skipped = sum(1 for x in range(items) if x % 10 == 5)
    assert (m["done"], m["failed"], m["skipped"]) == (items - failed - skipped, failed, skipped)

    rows = _rows(run)
    assert set(rows) == {name(x) for x in range(items)}
    for x in range(items):
        phase, status, started, duration, error, metrics = rows[name(x)]
        want_status, want_error, want_metrics = _expected(x)
        assert (phase, status, error) == ("m", want_status, want_error)
        assert (json.loads(metrics) if metrics else None) == want_metrics
        assert duration is not None and duration >= 0 and started > 0

    # The run's recent list: its newest items, each with its status and the lane of the worker
    # process it ran in.
    recent = snap.data["recent"]
    assert len(recent) == 32
    statuses = {name(x): _expected(x)[0] for x in range(items)}
    assert all(statuses[r["name"]] == r["status"] and r["lane"].startswith("pid ") for r in recent)
    assert len({r["name"] for r in recent}) == 32, "each item once"
    assert {f["name"] for f in snap.data["failures"]} == {name(x) for x in range(items) if x % 10 == 3}


def test_a_worker_killed_mid_chunk_leaves_exact_counts_and_the_rows_that_came_back() -> None:
    # One worker, chunks of 10: the first chunk comes back; the worker dies at item 13, in the
    # middle of the second, after counting 10, 11 and 12 done.
    with milepost.Run("killed", display="none") as run:
        with run.phase("map") as ph:
            out = milepost.process_map(
                die_on_13,
                range(30),
                workers=1,
                chunksize=10,
                task=ph,
                return_exceptions=True,
                mp_context=mp.get_context("fork"),
            )
        snap = run.snapshot()
    assert out[:10] == list(range(10))
    assert all(isinstance(o, milepost.WorkerDied) for o in out[10:])
    m = snap.find("map")
    assert (m["done"], m["failed"], m["in_flight"]) == (13, 1, 0), "what ran counted once, the item killed failed"
    assert [f["name"] for f in snap.data["failures"]] == ["13"]
    rows = _rows(run)
    assert {n: r[1] for n, r in rows.items()} == {str(x): "done" for x in range(10)}, "the chunk that came back"

    with milepost.Run("killed", display="none", resume=run.id) as again:
        left = list(again.phase("map").pending(range(30)))
    assert left == list(range(10, 30)), "items without a row run again"


def test_rows_of_chunks_that_come_back_once_the_history_is_off_are_counted_lost(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="milepost"):
        with milepost.Run("off", display="none") as run:
            run.context.store._disable("a test turned it off")  # noqa: SLF001 - fault injection
            out = milepost.process_map(
                mixed, range(30), workers=2, chunksize=4, description="m", return_exceptions=True
            )
            snap = run.snapshot()
    assert [o for o in out if not isinstance(o, BaseException)] == [
        -x if x % 10 == 5 else x for x in range(30) if x % 10 != 3
    ]
    m = snap.find("m")
    assert (m["done"], m["failed"], m["skipped"]) == (24, 3, 3), "counts are whole without a history"
    lost = [r.getMessage() for r in caplog.records if "are not in the history" in r.getMessage()]
    assert lost == ["milepost: 30 item rows of this run are not in the history (it was off)"], lost


def test_a_name_made_as_a_path_reaches_the_item_as_a_path_and_the_history_as_text() -> None:
    from procs_helpers import name_type

    with milepost.Run("paths", display="none") as run:
        out = milepost.process_map(
            name_type, range(5), workers=2, chunksize=2, description="m", item_name=lambda x, i: Path(f"doc-{x}.txt")
        )
    assert out == [type(Path("x")).__name__] * 5
    assert sorted(_rows(run)) == [f"doc-{x}.txt" for x in range(5)]


def test_default_names_are_made_in_the_worker_as_default_name_makes_them() -> None:
    # Numbers and text name themselves (no text is made for a number until it is asked for);
    # anything else is `default_name`'s: `str()` of a str or int subclass (a bool, a label
    # that shows itself otherwise), a path's text, `#index` for the rest.
    from procs_helpers import Label, name_of

    items = [3, "a", 1.5, True, ("t",), Path("p/q"), Label("x"), -7, 10**30]
    expected = ["3", "a", "1.5", "True", "#4", "p/q", "label:x", "-7", str(10**30)]
    with milepost.Run("names", display="none") as run:
        got = milepost.process_map(name_of, items, workers=2, chunksize=4, description="m")
    assert [str(g) if isinstance(g, Path) else g for g in got] == expected
    assert sorted(_rows(run)) == sorted(expected)


def test_an_item_whose_name_cannot_be_made_fails_alone_and_the_rest_of_its_chunk_runs() -> None:
    from procs_helpers import Unnamable, ident

    with milepost.Run("unnamable", display="none") as run:
        got = milepost.process_map(
            ident, [1, 2, 3, Unnamable(), 5], workers=1, chunksize=5, description="m", return_exceptions=True
        )
        snap = run.snapshot()
    assert got[:3] == [1, 2, 3] and got[4] == 5
    assert isinstance(got[3], RuntimeError) and str(got[3]) == "no text for this item"
    assert snap.find("m")["done"] == 4, "the item that could not be named did not run"
    assert sorted(_rows(run)) == ["1", "2", "3", "5"], "the rows of the chunk's other items are kept"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_items_of_a_phase_made_in_the_worker_are_counted_and_keep_no_row_of_the_pool(method) -> None:
    # The chunk's rows are the pool's items: an item of another phase run inside one (made in
    # the worker, as any worker-side item) is counted there, and its row is not the pool's.
    with milepost.Run("nested", display="none") as run:
        out = milepost.process_map(
            items_of_another_phase,
            range(10),
            workers=2,
            chunksize=3,
            description="m",
            mp_context=mp.get_context(method),
        )
        snap = run.snapshot()
    assert out == list(range(10))
    assert (snap.find("m")["done"], snap.find("inner")["done"]) == (10, 10)
    rows = _rows(run)
    assert {n: r[0] for n, r in rows.items()} == {str(x): "m" for x in range(10)}


def test_a_system_exit_in_an_item_ends_the_map_with_what_ran_counted() -> None:
    # Chunks of 3 on two workers: item 4 raises SystemExit, which is not an item's failure to
    # return: it ends the map, as it would end the loop of a process of one's own.
    with milepost.Run("exits", display="none") as run:
        with pytest.raises(SystemExit):
            milepost.process_map(
                exits_on_4, range(10), workers=2, chunksize=3, description="m", mp_context=mp.get_context("fork")
            )
        snap = run.snapshot()
    m = snap.find("m")
    assert m["in_flight"] == 0 and m["failed"] == 1, "item 4 ended as a `with` ends it, the 5 after it never started"
    rows = _rows(run)
    assert "4" not in rows and "5" not in rows and {"0", "1", "2"} <= set(rows), "its chunk's rows are lost with it"


def test_chunks_are_submitted_in_batches_and_never_run_dry(monkeypatch) -> None:
    """The parent tops its chunks in flight up in batches: each submission wakes the executor's
    thread, so one a chunk that came back cost a turn of that thread per chunk. In flight
    there are never fewer than half the read-ahead (16 chunks here) while chunks are left. And
    the parent takes each chunk as it finishes from a queue the futures put themselves in:
    `wait(FIRST_COMPLETED)` installed a waiter in every future in flight for each chunk."""
    from concurrent.futures import ProcessPoolExecutor

    from milepost import processes

    in_flight = []
    submit = ProcessPoolExecutor.submit

    def counting(self, *args, **kwargs):
        fut = submit(self, *args, **kwargs)
        in_flight.append(len(pool.pending) if pool else 0)
        return fut

    pool = None
    make = processes._Pool.__init__

    def keep(self, *args, **kwargs):
        nonlocal pool
        make(self, *args, **kwargs)
        pool = self

    waits = []
    wait = processes.wait
    monkeypatch.setattr(processes, "wait", lambda *a, **k: waits.append(1) or wait(*a, **k))
    monkeypatch.setattr(processes._Pool, "__init__", keep)
    monkeypatch.setattr(ProcessPoolExecutor, "submit", counting)
    with milepost.Run("batches", display="none"):
        out = milepost.process_map(str, range(400), workers=2, chunksize=5, mp_context=mp.get_context("fork"))
    assert out == [str(i) for i in range(400)]
    assert not waits, "no waiter installed in the futures in flight"
    assert len(in_flight) == 80, "a submission a chunk"
    first, rest = in_flight[:16], in_flight[16:]
    assert first == list(range(16)), "the read-ahead first"
    # Topped up when 8 are left, to 16: each batch is 8 submissions in a row.
    assert min(rest) >= 8, rest
    batches = sum(1 for k in range(1, len(rest)) if rest[k] <= rest[k - 1]) + 1
    assert batches <= len(rest) // 8 + 1, rest


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_item_a_pool_hands_its_function_is_one_object_current_around_items_of_its_own(method) -> None:
    # The pool's workers make an item's object only when the function asks for it: asked
    # twice it is the same, an item entered inside it is current until it ends, and an item
    # kept after its block has ended, counted and with its row.
    with milepost.Run("kept", display="none") as run:
        out = milepost.process_map(
            keep_the_item, range(40), workers=2, chunksize=5, description="k", mp_context=mp.get_context(method)
        )
    for x, (same, inner_current, outer_again, name, kept_row) in enumerate(out):
        assert (same, inner_current, outer_again, name) == (True, True, True, str(x))
        assert kept_row in (None, "done"), (x, kept_row)
    assert sum(o[4] == "done" for o in out) >= 40 - 2, "every item but each worker's first saw the one before ended"
    snap = run.snapshot()
    assert (snap.find("k")["done"], snap.find("inner")["done"]) == (40, 40)
    rows = _rows(run)
    assert all(rows[str(x)][:2] == ("k", "done") for x in range(40))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_an_item_entered_in_a_coroutine_inside_a_pool_item_is_the_current_one_there(method) -> None:
    with milepost.Run("aio", display="none") as run:
        out = milepost.process_map(
            a_coroutine_inside, range(12), workers=2, chunksize=3, description="p", mp_context=mp.get_context(method)
        )
    assert out == [(True, str(x)) for x in range(12)]
    assert (run.snapshot().find("p")["done"], run.snapshot().find("aio")["done"]) == (12, 12)


def test_items_that_never_ask_for_themselves_are_timed_back_to_back_and_fail_with_their_error() -> None:
    # Chunks of 4 in order: item 4c+1 raises, so 4c+2 starts on a reading of its own; 4c+1
    # and 4c+3 start at the very reading the item before them ended at. Spawned workers: a
    # process that imported greenlet (as this test session may have, through playwright)
    # enters every item through its object, timed as a `with` times it.
    with milepost.Run("plain", display="none") as run:
        out = milepost.process_map(
            nap_or_fail,
            range(40),
            workers=2,
            chunksize=4,
            description="p",
            return_exceptions=True,
            mp_context=mp.get_context("spawn"),
        )
    assert [type(v).__name__ if isinstance(v, Exception) else v for v in out] == [
        "ValueError" if x % 4 == 1 else x for x in range(40)
    ]
    snap = run.snapshot().find("p")
    assert (snap["done"], snap["failed"]) == (30, 10)
    rows = _rows(run)
    for x in range(40):
        phase, status, started, duration, error, _ = rows[str(x)]
        assert (phase, status, error) == ("p", "failed", f"ValueError: bad {x}") if x % 4 == 1 else ("p", "done", None)
        assert duration >= 0.002, (x, duration)
        if x % 4:
            gap = started - (rows[str(x - 1)][2] + rows[str(x - 1)][3])
            # Starts are kept to the microsecond: back to back is within that.
            assert gap >= -2e-6 if x % 4 == 2 else abs(gap) <= 2e-6, (x, gap)


def _path_name(item: int, index: int) -> Path:
    return Path(f'dir/"{item}" é\udcff')  # a quote, an accent, a lone surrogate (an undecodable file name)


@pytest.mark.parametrize("named", [_path_name, label_name])
@pytest.mark.parametrize("retries", [0, 1])
def test_a_chunks_newest_items_reach_the_recent_list_named_as_the_history_names_them(retries, named) -> None:
    # A chunk's newest items cross to the parent as one text: made by the native loop, or by
    # the Python one when items may run again. Either way every item is there once (a failed
    # one by its worker's event), with its status, its worker's lane and its name as the text
    # the history keeps for it (a lone surrogate replaced, as in every name the run keeps; a
    # `str` of its own by its own text, not its `str()`).
    with milepost.Run("recent", display="none") as run:
        milepost.process_map(
            mixed,
            range(20),
            workers=2,
            chunksize=8,
            description="m",
            item_name=named,
            return_exceptions=True,
            retries=retries,
            backoff=0.01,
            mp_context=mp.get_context("fork"),
        )
        recent = run.snapshot().data["recent"]
    rows = _rows(run)
    if named is label_name:
        assert set(rows) == {f"label {x}" for x in range(20)}
    else:
        assert len(rows) == 20 and all(name.startswith('dir/"') and "é\ufffd" in name for name in rows)
    assert {r["name"]: r["status"] for r in recent} == {name: row[1] for name, row in rows.items()}
    assert len(recent) == 20 and all(r["lane"].startswith("pid ") for r in recent)
    # Each done item's duration as its row has it (the row keeps nanoseconds).
    done = [r for r in recent if r["status"] == "done"]
    assert done and all(abs(r["duration"] - rows[r["name"]][3]) < 1e-8 for r in done)


def test_a_pool_items_huge_name_reaches_the_recent_list_clipped_as_any_name_is() -> None:
    names = [f"{i}" + "x" * 10_000 + "é" for i in range(6)]
    with milepost.Run("huge names", display="none", history=False) as run:
        assert milepost.process_map(ident, names, workers=2, chunksize=3, mp_context=mp.get_context("fork")) == names
        recent = run.snapshot().data["recent"]
    assert sorted(r["name"] for r in recent) == sorted(n[:256] + "…" for n in names)


def test_recent_items_that_are_not_what_a_worker_sends_are_refused_whole() -> None:
    # What a chunk's worker sends its parent for the recent list: bytes that are cut short, name
    # an unknown status or hold a name that is not UTF-8 are a ValueError saying where, and
    # nothing of them is kept.
    good = milepost._milepost.encode_recent([("a", "done", 0.5, 100.0), ("b", "skipped", None, 101.0)])
    status_at = len(good) // 2  # the second item's status byte (two items of one-byte names)
    broken = {
        "cut short": good[:-3],
        "an unknown status": good[:status_at] + b"\x09" + good[status_at + 1 :],
        "not UTF-8": good[:-1] + b"\xff",
    }
    with milepost.Run("recent bytes", display="none", history=False) as run:
        node = run._node
        for what, data in broken.items():
            with pytest.raises(ValueError, match=f"not a chunk's recent items: .*{what.split()[-1]}.* at byte \\d+"):
                node.record_recent(data, 99.0, "pid 1")
        assert run.snapshot().data["recent"] == []
        node.record_recent(good, 99.0, "pid 1")
        recent = run.snapshot().data["recent"]
    assert [(r["name"], r["status"], r["duration"], r["lane"]) for r in recent] == [
        ("b", "skipped", None, "pid 1"),
        ("a", "done", 0.5, "pid 1"),
    ]


def test_a_row_whose_status_is_none_of_an_items_is_refused_naming_it() -> None:
    # The rows of items that ran elsewhere (a remote worker, a chunk that came back as rows)
    # are queued with their status as text: a status that is not an item's is said, and adds
    # no row.
    buffer = milepost._milepost.RowBuffer("r1", 100.0)
    assert buffer.push("map", "7", "done", 100.5, 0.25) == 1
    with pytest.raises(ValueError, match='item status must be .*, got "finished"'):
        buffer.push("map", "8", "finished", 100.5, 0.25)
    assert len(buffer) == 1
    assert buffer.push("map", "9", "skipped", 100.75) == 2
    ((text, rows, done, failed, skipped, phase, t0),) = buffer.take()
    assert json.loads(text) == [[7, 500000, 250000000], [9, 750000, None, "skipped"]]
    assert (rows, done, failed, skipped, phase, t0) == (2, 1, 0, 1, "map", 100.0)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_pool_calls_a_function_that_keeps_or_hashes_its_arguments_as_it_would_be_called(method) -> None:
    # A callable that sees the tuple of its arguments: an exception class keeps it as its
    # `args`, `functools.lru_cache` makes it its key (and Python 3.14 keeps a tuple's hash in
    # it). Each item is called with a tuple of its own: every exception holds its item, and the
    # cache answers a repeated item and nothing else.
    ctx = mp.get_context(method)
    errors = milepost.process_map(
        ValueError, ["a", "b", "c"], workers=1, chunksize=3, mp_context=ctx, return_exceptions=True, display="none"
    )
    assert [e.args for e in errors] == [("a",), ("b",), ("c",)]
    items = [0.5, 0.5, 1.5, 1.5, 2.5, 0.5, 2.5, 3.5]
    got = milepost.process_map(counted_once, items, workers=1, chunksize=8, mp_context=ctx, display="none")
    assert got == [(0.5, 1), (0.5, 1), (1.5, 2), (1.5, 2), (2.5, 3), (0.5, 1), (2.5, 3), (3.5, 4)]
