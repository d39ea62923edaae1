"""Group "item": `with ph.item(i): pass` a loop step, as users write it.

The item is made, entered and left each step (`ph.item(i)` spelled out in the loop), so the
difference to `bare` is what one item costs: without history, and with it (the run keeps every
item's row in its SQLite file, written by the store's thread while the loop runs, in a
`MILEPOST_HOME` of the benchmarks' own). `ph.advance()` is one count without an item, for
scale. The contenders take turns, round after round, in one test (see `interleaved`).
"""

import sqlite3

import pytest

import milepost
from milepost.persistence import default_path

pytestmark = pytest.mark.benchmark(group="item")

N = 50_000


def empty(n):
    for i in range(n):
        pass


def items(ph, n):
    for i in range(n):
        with ph.item(i):
            pass


def advance(ph, n):
    for i in range(n):
        ph.advance()


def in_a_run(history):
    def setup():
        # Entered here and left after its round (`leave_the_run`): its threads stop then.
        run = milepost.Run("item", display="none", history=history).__enter__()
        return (run.phase("map", total=N), N)

    return setup


def leave_the_run(ph, n):
    run = ph.run
    run.__exit__(None, None, None)
    assert run.snapshot().find("map")["done"] == n and run.snapshot().find("map")["in_flight"] == 0
    if run.history_path is not None:
        # Every item's row was written (the store flushes before the run ends).
        db = sqlite3.connect(str(default_path()))
        try:
            (kept,) = db.execute("SELECT COUNT(*) FROM items WHERE run_id = ?", (run.id,)).fetchone()
        finally:
            db.close()
        assert kept == n


def test_item_as_written(interleaved):
    interleaved(
        {
            "bare": (empty, lambda: (N,)),
            "milepost ph.advance()": (advance, in_a_run(False), leave_the_run),
            "with ph.item(i)": (items, in_a_run(False), leave_the_run),
            "with ph.item(i), history": (items, in_a_run(True), leave_the_run),
        },
        N,
        rounds=20,
    )
