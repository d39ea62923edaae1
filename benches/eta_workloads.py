"""Seeded synthetic workloads for the ETA benchmark (issue 6).

Each generator returns the sorted completion timestamps (seconds from the start of the run, one
per item) of a run of `n` items. The kinds mirror the ways ETAs go wrong in practice; the
defaults give runs of roughly 20-40 minutes, long enough that an estimator's time constants
(tqdm's EMA, rich's 30 s window, indicatif's 15 s decay) matter and short enough to replay fast.
Only `random.Random(seed)` is used, so a (kind, seed) pair always gives the same trace.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Callable, Dict, List, Tuple


def _gamma(rng: random.Random, mean: float, cv: float) -> float:
    """A positive duration with the given mean and coefficient of variation (sd / mean)."""
    shape = 1.0 / (cv * cv)
    return rng.gammavariate(shape, mean / shape)


def _sequential(durations: List[float]) -> List[float]:
    """One worker doing the items one after another: completions are the running sums."""
    out, t = [], 0.0
    for d in durations:
        t += d
        out.append(t)
    return out


def steady(seed: int, n: int = 2000, mean: float = 0.9, cv: float = 0.3) -> List[float]:
    """Constant rate with noise: item times ~ gamma(mean `mean` s, cv `cv`). ~30 min."""
    rng = random.Random(seed)
    return _sequential([_gamma(rng, mean, cv) for _ in range(n)])


def warmup(
    seed: int, n: int = 2000, mean: float = 0.6, cv: float = 0.3, warm_frac: float = 0.1, slower: float = 4.0
) -> List[float]:
    """Slow warm-up (caches cold, JIT, connections opening): the first `warm_frac` of the items
    take `slower` times as long, then the rate is `steady`'s. ~26 min, 8 of them warming up."""
    rng = random.Random(seed)
    warm = int(n * warm_frac)
    return _sequential([_gamma(rng, mean * (slower if i < warm else 1.0), cv) for i in range(n)])


def slowdown(seed: int, n: int = 2000, mean: float = 0.5, cv: float = 0.3, end_factor: float = 3.0) -> List[float]:
    """Steady slowdown (a growing index, a leaking cache): item time grows linearly from `mean`
    at the first item to `end_factor` x `mean` at the last. ~33 min."""
    rng = random.Random(seed)
    return _sequential([_gamma(rng, mean * (1.0 + (end_factor - 1.0) * i / max(n - 1, 1)), cv) for i in range(n)])


def bursts(
    seed: int, n: int = 2000, chunk: int = 50, gap: float = 30.0, gap_cv: float = 0.2, spacing: float = 10e-6
) -> List[float]:
    """A chunked process pool (`imap(..., chunksize=50)`): the parent only sees results when a
    whole chunk comes back, so `chunk` items complete `spacing` s (~10 us, exponential) apart,
    with ~`gap` s (gamma, cv `gap_cv`) between chunks. 40 chunks, ~20 min."""
    rng = random.Random(seed)
    out, t = [], 0.0
    for start in range(0, n, chunk):
        t += _gamma(rng, gap, gap_cv)
        for _ in range(min(chunk, n - start)):
            t += rng.expovariate(1.0 / spacing)
            out.append(t)
    return out


def heavy_tail(seed: int, n: int = 2000, workers: int = 16, median: float = 8.0, sigma: float = 1.0) -> List[float]:
    """`workers` concurrent workers, each taking the next item as soon as it is free; item
    durations are lognormal (median `median` s, sigma `sigma`: mean ~13 s, 1% above ~80 s), so
    completions come out of order and in clumps. ~1.2 items/s, ~27 min."""
    rng = random.Random(seed)
    free = [0.0] * workers  # heap of the times each worker becomes free
    out = []
    for _ in range(n):
        start = heapq.heappop(free)
        end = start + rng.lognormvariate(0.0, sigma) * median
        out.append(end)
        heapq.heappush(free, end)
    return sorted(out)


def stall(seed: int, n: int = 2000, mean: float = 0.8, cv: float = 0.3, stall_frac: float = 0.2) -> List[float]:
    """Steady, then a stall (a rate limit, a lost connection) starting somewhere between 40% and
    60% of the items and lasting `stall_frac` of the whole run, then recovery at the old rate.
    ~27 min of work + ~7 min of stall."""
    rng = random.Random(seed)
    durations = [_gamma(rng, mean, cv) for _ in range(n)]
    at = int(n * rng.uniform(0.4, 0.6))
    # stall = stall_frac * (work + stall)  =>  stall = work * f / (1 - f)
    durations[at] += sum(durations) * stall_frac / (1.0 - stall_frac)
    return _sequential(durations)


def periodic(
    seed: int, n: int = 2000, mean: float = 0.8, cv: float = 0.3, period: float = 600.0, depth: float = 0.5
) -> List[float]:
    """A pace that comes and goes (a shared service busier at some hours): the rate follows
    `1 + depth x sin(2 pi t / period + phase)` around `1 / mean` items/s, the phase random. With
    the defaults the rate swings between half and one and a half times its average every 10 min,
    ~2.7 cycles in a run of ~27 min. Held out: added after the estimator was tuned."""
    rng = random.Random(seed)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    out, t = [], 0.0
    for _ in range(n):
        t += _gamma(rng, mean / (1.0 + depth * math.sin(2.0 * math.pi * t / period + phase)), cv)
        out.append(t)
    return out


def mixed(
    seed: int, n: int = 2000, fast: float = 0.4, slow: float = 1.6, cv: float = 0.3, batch: Tuple[int, int] = (50, 250)
) -> List[float]:
    """Items in batches from sources of different speed (small and large documents, two
    regions): each batch of `batch` items (uniform) is all fast (`fast` s) or all slow (`slow`
    s), a coin flip per batch. The long-run pace is steady, but what is left may be mostly fast
    or mostly slow. ~33 min. Held out: added after the estimator was tuned."""
    rng = random.Random(seed)
    durations: List[float] = []
    while len(durations) < n:
        mean = fast if rng.random() < 0.5 else slow
        durations += [_gamma(rng, mean, cv) for _ in range(rng.randint(*batch))]
    return _sequential(durations[:n])


WORKLOADS: Dict[str, Callable[..., List[float]]] = {
    "steady": steady,
    "warmup": warmup,
    "slowdown": slowdown,
    "bursts": bursts,
    "heavy_tail": heavy_tail,
    "stall": stall,
}

# Kinds added after the estimator was tuned on the six above, and never tuned on: how it does on
# them is how it may do on a job nobody thought of.
HELD_OUT: Dict[str, Callable[..., List[float]]] = {
    "periodic": periodic,
    "mixed": mixed,
}
