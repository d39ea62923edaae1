"""Functions run in worker processes by test_processes.py (importable by spawned children)."""

from __future__ import annotations

import functools
import os
import signal
import time
from multiprocessing import util

import milepost

#: Seconds a worker of `linger_at_exit` takes to end once it has left the run.
LINGER = 3.0


def square_or_fail(x: int) -> int:
    item = milepost.current_item()
    item.metric("tokens", 10)
    item.metric("cost_usd", 0.5)
    if x % 25 == 7:
        raise ValueError(f"bad {x}")
    return x * x


def costly(x: int) -> int:
    """An item that costs 0.01, recorded in its worker process."""
    milepost.current_item().metric("cost_usd", 0.01)
    return x


def streams(x: int) -> int:
    """An item that streams output in its worker process (where nothing shows it)."""
    item = milepost.current_item()
    for token in ("a ", "b ", "c"):
        item.stream(token)
    return x


def count_into(task: milepost.Task, n: int) -> int:
    advance = task.advance
    for _ in range(n):
        advance()
    return os.getpid()


def nested_work(task: milepost.Task, k: int) -> None:
    with task.step("sub", total=5) as sub:
        for _ in range(5):
            sub.advance()
    for _ in milepost.track(range(3), desc="inner-loop"):
        pass
    task.log(f"worker {k} done", level="warning")
    task.fail(f"w{k}-item", "RuntimeError: from a worker")


def die_on_13(x: int) -> int:
    if x == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


def start_item_then_die(task: milepost.Task) -> None:
    with task.item("doomed.json"):
        os.kill(os.getpid(), signal.SIGKILL)


def hold_item(task: milepost.Task, seconds: float) -> None:
    with task.item("slow.json"):
        time.sleep(seconds)


def flood(task: milepost.Task, n: int) -> None:
    for i in range(n):
        task.log(f"line {i}")


def slow(x: int) -> int:
    time.sleep(0.05)
    return x


def long_failure(task: milepost.Task) -> None:
    task.fail("long-one", "E" * 5000)
    task.log("L" * 3000)


def nested_steps(task: milepost.Task) -> None:
    with task.step("outer") as outer:
        with outer.step("inner") as inner:
            inner.advance()


def many_metrics(task: milepost.Task, names: int) -> str:
    try:
        for i in range(names):
            task.metric(f"worker-metric-{i}", 1)
    except milepost.InvalidValueError as e:
        return str(e)
    return "no error"


def busy_in_one_item(task: milepost.Task, seconds: float) -> None:
    with task.item("long.json"):
        with task.step("sub") as sub:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sub.advance()
                time.sleep(0.01)


def open_step_forever(task: milepost.Task) -> None:
    task.step("never-closed").advance()
    time.sleep(0.2)


def long_step_names(task: milepost.Task, k: int) -> None:
    with task.step("S" * 300) as s:
        s.advance(k)


def threads_inside(n: int) -> int:
    """A thread pool inside a pool worker: its items count into the worker's run."""
    return sum(milepost.thread_map(abs, range(-n, 0), workers=2, description="inner"))


def child_sigint_ignored(_: int) -> bool:
    """Whether a program started from a pool item ignores SIGINT (its SigIgn mask)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/status').read())"], capture_output=True, text=True, check=True
    ).stdout
    mask = next(line.split()[1] for line in out.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def use_the_current_run(task: milepost.Task, n: int) -> tuple:
    """Worker code that asks for its run, as it would in the parent (`current_run()`)."""
    run = milepost.current_run()
    assert task.run is run
    for _ in milepost.track(range(n), desc="tracked-in-worker", run=run):
        pass
    with run.phase("worker-phase", total=2) as ph:
        ph.advance(2)
    milepost.thread_map(abs, range(-3, 0), run=run, description="threads-in-worker")
    with run.lane("mine") as lane:
        assert lane is None
    return (run.kind, run.id, run.name, run.history_path, run.cancelled, run.finished)


def spend_a_cent(x: int) -> int:
    """An item costing $0.01, recorded in the worker process."""
    milepost.current_item().metric("cost_usd", 0.01)
    time.sleep(0.002)
    return x


def dear_then_cheap(x: int) -> int:
    """The first five items cost $0.20, the rest $0.001 (recorded in the worker process)."""
    milepost.current_item().metric("cost_usd", 0.2 if x < 5 else 0.001)
    time.sleep(0.002)
    return x


def costs_the_same(pair: tuple) -> int:
    """Item `i` of `(i, cost)` records `cost_usd` = `cost` (in the worker process)."""
    i, cost = pair
    milepost.current_item().metric("cost_usd", cost)
    time.sleep(0.002)
    return i


def mixed(x: int) -> int:
    """Item `x` fails when x % 10 == 3, is skipped when x % 10 == 5, else records `x` tokens."""
    item = milepost.current_item()
    if x % 10 == 3:
        raise ValueError(f"bad {x}")
    if x % 10 == 5:
        item.skip()
        return -x
    item.metric("tokens", x)
    return x


def name_type(x: int) -> str:
    """The type of the name the item was given (a pool hands it on as it was made)."""
    return type(milepost.current_item().name).__name__


def items_of_another_phase(x: int) -> int:
    """A pool's item that runs an item of a phase of its own (made in the worker)."""
    with milepost.current_run().phase("inner").item(f"inner-{x}"):
        return x


def exits_on_4(x: int) -> int:
    if x == 4:
        # The map ends as the exit comes back: the first chunk (0-2, on the other worker) has
        # long come back by then, on a loaded machine too.
        time.sleep(0.5)
        raise SystemExit(3)
    return x


def name_of(x: object) -> object:
    """The name of the item running `x`, as `current_item()` gives it."""
    return milepost.current_item().name


class Label(str):
    """Text that shows itself otherwise (`str()` of it is not its value)."""

    def __str__(self) -> str:
        return f"label:{str.__str__(self)}"


class Unnamable:
    """An item whose default name cannot be made: a path-like whose text raises."""

    def __fspath__(self) -> str:
        return "unnamable"

    def __str__(self) -> str:
        raise RuntimeError("no text for this item")


def ident(x: object) -> object:
    return x


#: The item the last call of `keep_the_item` was handed, in this worker process.
_KEPT: dict = {}


def keep_the_item(x: int) -> tuple:
    """What `current_item()` gives an item of a pool, asked twice, around an item of its own
    and after it, and what became of the item before it in this worker, which it kept."""
    first = milepost.current_item()
    again = milepost.current_item()
    with milepost.current_run().phase("inner").item(f"inner-{x}") as inner:
        inner_is_current = milepost.current_item() is inner
    before = _KEPT.get("item")
    _KEPT["item"] = first
    kept_row = None if before is None else before.row[0]
    return first is again, inner_is_current, milepost.current_item() is first, first.name, kept_row


def a_coroutine_inside(x: int) -> tuple:
    """An item entered in a coroutine inside a pool's item, before the pool's item was asked
    for: the coroutine's is current in it, the pool's after it."""
    import asyncio

    async def inside() -> bool:
        with milepost.current_run().phase("aio").item(f"aio-{x}") as it:
            await asyncio.sleep(0)
            return milepost.current_item() is it

    inner_is_current = asyncio.run(inside())
    return inner_is_current, milepost.current_item().name


def nap_or_fail(x: int) -> int:
    """2 ms an item, never asking for it; item `x` fails when x % 4 == 1."""
    time.sleep(0.002)
    if x % 4 == 1:
        raise ValueError(f"bad {x}")
    return x


def label_name(item: int, index: int) -> Label:
    """An item name that is a `str` of its own text, whose `str()` says something else."""
    return Label(f"label {item}")


#: Calls `counted_once` really made in this process.
_CALLS = [0]


@functools.lru_cache(maxsize=None)
def counted_once(x: float) -> tuple:
    """`(x, how many calls this process really made)`: a repeated `x` is the cache's answer."""
    _CALLS[0] += 1
    return (x, _CALLS[0])


def linger_at_exit(x: int) -> int:
    """An item of 50 ms (so that a pool's workers all take some) whose worker process, told to
    go, takes LINGER seconds to end after it has left the run: an exit handler of the job's own,
    which runs after milepost's (a lower priority)."""
    if not _lingering:
        util.Finalize(None, time.sleep, args=(LINGER,), exitpriority=0)
        _lingering.append(True)
    time.sleep(0.05)
    return x * 2


_lingering: list = []
