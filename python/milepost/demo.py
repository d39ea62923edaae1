"""`milepost demo`: a MapReduce-style job with the failures, retries and token costs of a real one.

setup (index the shards) → map (a pool of worker processes "calls a model" per document:
lognormal latencies, transient errors that are retried, permanent failures, tokens and cost,
all counted in the workers through shared memory) → reduce.
"""

from __future__ import annotations

import errno
import functools
import math
import random
import sys
import time
from typing import Any, Optional, TextIO

from .demo_llm import llm_job, llm_run
from .errors import Cancelled, InvalidValueError, MilepostError
from .observers import ConsoleSummary
from .processes import process_map
from .renderers.options import DisplayOptions
from .run import Run
from .task import current_item

#: Prices per token of the simulated model, in US dollars.
PRICE_IN = 3e-6
PRICE_OUT = 15e-6


class TransientError(Exception):
    """An error worth retrying (a timeout, a rate limit)."""


def _latency(rng: random.Random, mean_s: float) -> float:
    sigma = 0.6
    return rng.lognormvariate(math.log(mean_s) - sigma * sigma / 2, sigma)


def call_model(doc: str, seed: int, fail_rate: float, mean_s: float) -> int:
    """One document, in a worker process: up to three attempts at a flaky "model"."""
    item = current_item()
    assert item is not None, "called by process_map, inside an item"
    rng = random.Random(f"{seed}:{doc}")
    for attempt in range(3):
        time.sleep(_latency(rng, mean_s) if mean_s else 0)
        if rng.random() < fail_rate:
            if attempt < 2:
                item.retry()
                continue
            raise TransientError(f"upstream timed out 3 times on {doc}")
        if rng.random() < fail_rate / 2:
            raise ValueError(f"malformed record in {doc}")
        tokens_in, tokens_out = rng.randint(300, 1500), rng.randint(50, 400)
        item.metric("tokens_in", tokens_in)
        item.metric("tokens_out", tokens_out)
        item.metric("cost_usd", tokens_in * PRICE_IN + tokens_out * PRICE_OUT)
        return tokens_out
    raise AssertionError("unreachable")


class _ReaderWatch:
    """Standard output while the demo's display writes there (`--output stdout`): when its
    reader goes (`milepost demo --output stdout | head`), the demo is cancelled and writes
    nothing more, its summary included, as a program that SIGPIPE ends would be."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        #: The run to cancel when the reader goes (set once the run is made).
        self.run: Optional[Run] = None
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._went()

    def _went(self) -> None:
        self.gone = True
        try:
            if self.run is not None:
                self.run.cancel("the reader of standard output has gone")
        except MilepostError:
            pass  # the run had ended: nothing is left to stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # fileno, isatty, encoding...: the stream's own


class _SummaryOut:
    """Standard error for the demo's summary, unless the reader of its output has gone."""

    def __init__(self, watch: Optional[_ReaderWatch]) -> None:
        self._watch = watch

    def write(self, text: str) -> int:
        if self._watch is None or not self._watch.gone:
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        if self._watch is None or not self._watch.gone:
            sys.stderr.flush()


def run_demo(
    items: int = 5000,
    workers: int = 8,
    fail_rate: float = 0.02,
    display: Optional[str] = "auto",
    item_ms: float = 40.0,
    seed: int = 0,
    snapshot_file: Optional[str] = None,
    output: Optional[str] = None,
    llm: bool = False,
    concurrency: int = 16,
    budget: float = 0.075,
) -> int:
    """Runs the demo (`llm`: the LLM one, `demo_llm`); returns the number of items that failed
    for good. `output` is `Run(output=...)`: "stdout", "stderr" or a file path (plain, JSON and
    rich output). Raises BrokenPipeError, having stopped the demo, when the reader of standard
    output has gone."""
    if items < 1:
        raise InvalidValueError(f"--items must be >= 1, got {items}")
    if workers < 1:
        raise InvalidValueError(f"--workers must be >= 1, got {workers}")
    if concurrency < 1:
        raise InvalidValueError(f"--concurrency must be >= 1, got {concurrency}")
    if not math.isfinite(item_ms) or item_ms < 0:
        raise InvalidValueError(f"--item-ms must be a finite number >= 0, got {item_ms}")
    if not 0.0 <= fail_rate <= 1.0:
        raise InvalidValueError(f"--fail-rate must be between 0 and 1, got {fail_rate}")
    mean_s = item_ms / 1000.0
    watch = _ReaderWatch(sys.stdout) if output in ("stdout", "-") else None
    # A summary for people: machines reading JSON lines get only JSON, and "none" is nothing.
    shown = DisplayOptions.make(display, output).display
    summary = [ConsoleSummary(_SummaryOut(watch))] if shown not in ("json", "none") else []  # type: ignore[arg-type]
    shows = {"display": display, "snapshot_file": snapshot_file, "output": output, "observers": summary}
    if llm:
        run = llm_run(budget, seed, **shows)
        job = functools.partial(llm_job, run, items, concurrency, seed, item_ms / 2)
    else:
        run = Run("demo", **shows)  # type: ignore[arg-type]
        job = functools.partial(_job, run, items, workers, fail_rate, mean_s, seed)
    if watch is not None:
        watch.run = run
    previous = sys.stdout
    if watch is not None:
        sys.stdout = watch  # the display looks it up at each write
    try:
        failed = job()
    except Cancelled:
        if watch is None or not watch.gone:
            raise
    finally:
        if sys.stdout is watch:
            sys.stdout = previous
    if watch is not None and watch.gone:
        raise BrokenPipeError(errno.EPIPE, "the reader of standard output has gone")
    if run.state == "failed":  # e.g. a worker process killed: the pool broke
        raise MilepostError(f"run {run.id} failed (milepost show {run.id})")
    return failed


def _job(run: Run, items: int, workers: int, fail_rate: float, mean_s: float, seed: int) -> int:
    with run:
        with run.phase("setup", total=20, unit="shard") as setup:
            for i in range(20):
                with setup.item(f"shard-{i:03d}"):
                    time.sleep(mean_s / 4)
        docs = [f"doc-{i:05d}.jsonl" for i in range(items)]
        with run.phase("map", total=items, unit="doc") as mapping:
            work = functools.partial(call_model, seed=seed, fail_rate=fail_rate, mean_s=mean_s)
            # Small chunks: a worker's results come back often; its counts are live anyway.
            results = process_map(work, docs, workers, chunksize=4, task=mapping, return_exceptions=True)
        failed = sum(isinstance(r, BaseException) for r in results)
        with run.phase("reduce", total=16, unit="partition") as reduce:
            for p in range(16):
                with reduce.item(f"partition-{p:02d}"):
                    time.sleep(mean_s * 2)
        run.log(f"wrote 16 partitions; {failed} documents failed", source="reduce")
    return failed
