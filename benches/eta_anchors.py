"""Replay a completion trace through tqdm, rich, indicatif and milepost on a synthetic clock.

Every `replay_*` function takes the sorted completion times `ts` (seconds from the start, one per
item), the `total` and the checkpoint counts `checkpoints` (increasing), and returns, per
checkpoint, what that tool would show at the moment the count reaches it (time `ts[c - 1]`):
`(eta, low, high)` in seconds remaining, `None` where it shows no ETA. Only milepost has a range;
the anchors return `(eta, None, None)`.

tqdm and rich run their real code with the clock replaced; indicatif is Rust, so its estimator is
ported line by line. The run starts at t = 0 for every tool.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_right
from typing import Any, List, Optional, Sequence, TextIO, Tuple
from unittest import mock
from weakref import WeakSet

import rich.progress
import tqdm.std
from rich.console import Console

import milepost._milepost as _mp

Eta = Tuple[Optional[float], Optional[float], Optional[float]]


class _Clock:
    """A settable clock: each tool reads the trace time through it."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _devnull() -> TextIO:
    return open(os.devnull, "w", encoding="utf-8")


# --------------------------------------------------------------------------------------- tqdm


class _ReplayTqdm(tqdm.std.tqdm):  # type: ignore[misc]
    """Real tqdm, isolated from any monitor thread already running in this process: that thread
    compares its wall clock with our fake `last_print_t` and would fire at random. Its effect is
    replayed on the trace clock instead (`_monitor_tick`). No estimator code is overridden."""

    _instances: "WeakSet[Any]" = WeakSet()
    monitor_interval = 0
    monitor = None


def _monitor_tick(bar: tqdm.std.tqdm, now: float) -> None:
    # What tqdm's TMonitor.run does on each wake-up (tqdm/_monitor.py): a bar that has not
    # printed for `maxinterval` while `miniters > 1` gets `miniters = 1` and a refresh.
    if bar.miniters > 1 and (now - bar.last_print_t) >= bar.maxinterval:
        bar.miniters = 1
        bar.refresh(nolock=True)


def _tqdm_eta(bar: tqdm.std.tqdm) -> Optional[float]:
    # As tqdm's format_meter: EMA rate if it has one, else the global average n / elapsed.
    d = bar.format_dict
    rate = d["rate"]
    if rate is None and d["elapsed"]:
        rate = (d["n"] - d["initial"]) / d["elapsed"]
    return (d["total"] - d["n"]) / rate if rate else None  # tqdm prints "?" without a rate


def replay_tqdm(ts: Sequence[float], total: int, checkpoints: Sequence[int]) -> List[Eta]:
    clock = _Clock()
    out: List[Eta] = []
    with _devnull() as f, mock.patch.object(tqdm.std, "time", clock):  # __init__ reads `time`
        bar = _ReplayTqdm(total=total, file=f)  # defaults: smoothing=0.3, mininterval=0.1...
        bar._time = clock  # ...and every later read goes through `self._time`
        interval = 10.0  # tqdm.monitor_interval's default: the monitor wakes every 10 s
        next_wake = interval
        cps = iter(checkpoints)
        cp = next(cps, None)
        for i, t in enumerate(ts, 1):
            while next_wake <= t:
                clock.t = next_wake
                _monitor_tick(bar, next_wake)
                next_wake += interval
            clock.t = t
            bar.update(1)
            if i == cp:
                out.append((_tqdm_eta(bar), None, None))
                cp = next(cps, None)
        bar.close()
    return out


# --------------------------------------------------------------------------------------- rich


def replay_rich(ts: Sequence[float], total: int, checkpoints: Sequence[int]) -> List[Eta]:
    clock = _Clock()
    out: List[Eta] = []
    with _devnull() as f:
        progress = rich.progress.Progress(get_time=clock, console=Console(file=f), auto_refresh=False)
        task = progress.add_task("replay", total=total)  # starts at t = 0
        cps = iter(checkpoints)
        cp = next(cps, None)
        for i, t in enumerate(ts, 1):
            clock.t = t
            progress.advance(task, 1)
            if i == cp:
                out.append((progress.tasks[0].time_remaining, None, None))
                cp = next(cps, None)
    return out


# ---------------------------------------------------------------------------------- indicatif


def _estimator_weight(age: float) -> float:
    # EXPONENTIAL_WEIGHTING_SECONDS = 15: data 15 s old keeps 10% of its weight.
    return float(0.1 ** (age / 15.0))


class IndicatifEstimator:
    """Port of indicatif 0.18.6 `Estimator` (src/state.rs, `record`, `reset`,
    `steps_per_second`): a double-smoothed, time-based exponentially weighted steps/s, each
    stage normalized by the weight of the span actually observed, `1 - W(now - start)`."""

    def __init__(self, now: float) -> None:
        self.smoothed = 0.0  # smoothed_steps_per_sec
        self.double_smoothed = 0.0  # double_smoothed_steps_per_sec
        self.prev_steps = 0
        self.prev_time = now
        self.start_time = now

    def record(self, new_steps: int, now: float) -> None:
        # sanity check: don't record data if time or steps have not advanced
        if new_steps <= self.prev_steps or now <= self.prev_time:
            if new_steps < self.prev_steps:  # backwards seek resets (indicatif #480)
                self.prev_steps = new_steps
                self.reset(now)
            return
        delta_steps = new_steps - self.prev_steps
        delta_t = now - self.prev_time
        new_sps = delta_steps / delta_t
        weight = _estimator_weight(delta_t)
        self.smoothed = self.smoothed * weight + new_sps * (1.0 - weight)
        total_weight = 1.0 - _estimator_weight(now - self.start_time)
        normalized = self.smoothed / total_weight
        self.double_smoothed = self.double_smoothed * weight + normalized * (1.0 - weight)
        self.prev_steps = new_steps
        self.prev_time = now

    def reset(self, now: float) -> None:
        self.smoothed = 0.0
        self.double_smoothed = 0.0
        self.prev_time = now
        self.start_time = now

    def steps_per_second(self, now: float) -> float:
        # The time since the last update counts as a pseudo-update with 0 steps, so a stall
        # decays the rate instead of freezing it.
        reweight = _estimator_weight(now - self.prev_time)
        total_weight = 1.0 - _estimator_weight(now - self.start_time)
        sps = self.smoothed * reweight / total_weight
        dsps = self.double_smoothed * reweight + sps * (1.0 - reweight)
        return dsps / total_weight


class IndicatifRateLimit:
    """Port of indicatif 0.18.6 `AtomicPosition::allow` (src/state.rs): `ProgressBar::inc` only
    ticks (and so only records into the Estimator) when this token bucket, refilled one token
    per ms up to MAX_BURST = 10, allows it. Within a burst of items microseconds apart most
    increments are therefore not recorded until the next allowed one."""

    INTERVAL = 1_000_000  # ns
    MAX_BURST = 10

    def __init__(self, now: float) -> None:
        self.start = now
        self.capacity = self.MAX_BURST
        self.prev = 0  # ns after start of the last `True`

    def allow(self, now: float) -> bool:
        if now < self.start:
            return False
        elapsed = int((now - self.start) * 1e9)
        diff = max(elapsed - self.prev, 0)
        if self.capacity == 0 and diff < self.INTERVAL:
            return False
        new, remainder = divmod(diff, self.INTERVAL)
        self.capacity = min(self.MAX_BURST, self.capacity + new - 1)
        self.prev = elapsed - remainder
        return True


def replay_indicatif(ts: Sequence[float], total: int, checkpoints: Sequence[int]) -> List[Eta]:
    # What `ProgressBar::new(total)` + `inc(1)` per completion does; ETA as `ProgressState::eta`.
    est = IndicatifEstimator(0.0)
    gate = IndicatifRateLimit(0.0)
    out: List[Eta] = []
    cps = iter(checkpoints)
    cp = next(cps, None)
    for pos, t in enumerate(ts, 1):
        if gate.allow(t):
            est.record(pos, t)  # tick -> update_estimate_and_draw -> est.record(pos, now)
        if pos == cp:
            sps = est.steps_per_second(t)
            # indicatif shows 0 s when sps == 0 ("until progress starts"): that is no estimate.
            out.append(((total - pos) / sps if sps > 0 else None, None, None))
            cp = next(cps, None)
    return out


# ----------------------------------------------------------------------------------- milepost

SAMPLE_PERIOD = 0.25  # milepost's sampler observes the counters 4 times a second


def replay_milepost(ts: Sequence[float], total: int, checkpoints: Sequence[int]) -> List[Eta]:
    est = _mp.Estimator()
    est.observe(0.0, 0)  # a node anchors its window when it starts
    out: List[Eta] = []
    k = 1  # next sampler tick is k * SAMPLE_PERIOD
    for c in checkpoints:
        t_c = ts[c - 1]
        while k * SAMPLE_PERIOD < t_c:
            t = k * SAMPLE_PERIOD
            est.observe(t, bisect_right(ts, t))
            k += 1
        est.observe(t_c, c)  # a snapshot (the display reading it) observes too
        _, eta, low, high = est.estimate(t_c, c, total)
        out.append((_finite(eta), _finite(low), _finite(high)))
    return out


def _finite(x: Optional[float]) -> Optional[float]:
    return x if x is not None and math.isfinite(x) else None


ANCHORS = {
    "tqdm": replay_tqdm,
    "rich": replay_rich,
    "indicatif": replay_indicatif,
}
