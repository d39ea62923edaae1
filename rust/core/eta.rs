//! Throughput and ETA from `(time, processed)` observations.
//!
//! # The estimator
//!
//! The sampler records observations of a node's cumulative processed count (done + failed +
//! skipped) a few times a second. Only observations where the count grew are kept: the
//! **events** `e_k = (t_k, c_k)`. Four ideas make the estimate hold up where a single
//! exponential average or a fixed window does not:
//!
//! 1. **Stalls are set aside.** A closed gap between events longer than
//!    `max(STALL_FACTOR x typical gap, STALL_MIN_SECONDS)` (typical = median of the last
//!    [`GAP_HISTORY`] gaps) is a stall (a rate limit, a lost connection). Its excess over the
//!    typical gap is added to a running total `S`, stored with every event, so the *active*
//!    duration of any span is `(t_b - t_a) - (S_b - S_a)`. After a stall the estimate is the
//!    pace of the work, not of the pause. While a stall is going on (the open gap is past the
//!    threshold) the point ETA is unknown and `stalled` says for how long.
//! 2. **The noise is measured, not assumed.** A rate from `n` events has a relative noise of
//!    about `sqrt(D / n)`, whether an event is one item or a burst of fifty; `D` is the run's
//!    own dispersion per event: ~0.1 for items of steady size done one after another, ~1 to 2
//!    for many workers with heavy-tailed items, whose completions come in clumps and droughts.
//!    It is measured twice, over blocks of [`D_SHORT_EVENTS`] events (many blocks: precise) and
//!    over [`D_BLOCKS`] blocks spanning the run (few: noisy, but they see clumps longer than a
//!    short block), each from the differences of neighbouring blocks' log rates (a change of
//!    pace moves one difference, not the level of all); the larger is used. Before there are
//!    enough events, `D = 1` (Poisson).
//! 3. **The window adapts.** For windows holding the last `j = 3, 6, 12, ...` events and the
//!    whole run, the rate is `r_j = (c - c_start) / active duration` (windows end at `now`).
//!    The estimator keeps the largest window whose rate agrees with every smaller one:
//!    `|ln(r_j / r_i)| <= Z_CONSISTENT x sqrt(D / n_i)` for all `i < j`. A steady run ends up
//!    with a long, quiet window; after a slow warm-up or a stall the long windows disagree and
//!    are dropped; a chunked pool always spans several bursts. A noisy but stationary run keeps
//!    its long-run average instead of chasing a clump. The point ETA is `remaining / r`.
//! 4. **A slowdown is extrapolated.** Over the last [`TREND_SPAN`] of the processed items, cut
//!    into [`TREND_CHUNKS`] chunks, the item time `tau` of each chunk is paired with its
//!    position; the Theil–Sen slope `b` (median of pairwise slopes) is used only when at least
//!    [`TREND_AGREE`] of the pairwise slopes are positive (a consistent slowdown; a single
//!    outlier chunk cannot fake one, and speed-ups, usually a warm-up ending, are not
//!    extrapolated) and the rise it makes over the span is at least [`TREND_Z`] times what the
//!    chunks' noise (`D`) could make alone. Then
//!    `ETA = remaining x (tau_now + b x remaining / 2)`, the sum of a linearly growing item
//!    time, capped at [`TREND_CAP`] times the flat ETA.
//!
//! The range is `flat x e^-s .. ETA x e^s + min(U_AHEAD x (elapsed + ETA), ETA x e^s)` with
//! `s = Z_RANGE x sqrt(D / n + D / n_ahead)`: the noise of the chosen window's rate and of the
//! `n_ahead` events still to come (remaining items / items per event), so a range is narrow on
//! a steady run and wide where the pace is noisy or few events are left. The high end also
//! allows for a few percent of the run being lost to what the counts cannot show yet (the last
//! items of a pool finishing one by one, a short stall), at most doubling it, so that near the
//! end of a long run the range stays about what is left. With a trend the low end is still the
//! flat ETA's. Once the run has stalled, the high end grows by the stalled share of the elapsed
//! time: what happened once may happen again. On the benchmark's replayed traces the truth
//! falls inside about 85% of the time, less where the run changes in a way its counts had not
//! shown yet, such as a stall still to come (README, "The ETA").
//!
//! No ETA is given before the count has changed at two distinct events (one burst says
//! nothing about the time between bursts), nor when the total is unknown.
//!
//! Memory is bounded: past [`CAPACITY`] events, every other event of the older half is dropped.
//! Recent events stay exact and old ones thin out, while the cumulative stall time and event
//! sequence numbers stored in each event keep every window's duration and noise exact.

use std::collections::VecDeque;

use serde::Serialize;

const CAPACITY: usize = 1024;
const GAP_HISTORY: usize = 32;
const MIN_GAPS: usize = 8;
const STALL_FACTOR: f64 = 20.0;
const STALL_MIN_SECONDS: f64 = 5.0;
const J_MIN: usize = 3;
/// Four sd of the measured noise: with a dozen windows compared pairwise, a looser bound lets a
/// noisy run chase its clumps; a warm-up ending or a stall moves the rate by far more.
const Z_CONSISTENT: f64 = 4.0;
/// Stored events per block for the short-scale dispersion.
const D_SHORT_EVENTS: usize = 8;
/// Blocks spanning the run for the long-scale dispersion.
const D_BLOCKS: usize = 16;
/// Dispersion before it can be measured: a Poisson process's.
const D_PRIOR: f64 = 1.0;
/// Items that finish like clockwork would give `D` near 0 and a range of nothing.
const D_MIN: f64 = 0.01;
/// ~87% of a normal distribution lies within 1.5 sd.
const Z_RANGE: f64 = 1.5;
/// The share of the run's whole length the high end allows for what has not shown yet.
const U_AHEAD: f64 = 0.05;
const TREND_CHUNKS: usize = 8;
const TREND_MIN_EVENTS: usize = 3;
const TREND_AGREE: f64 = 0.8;
/// A pool's pace drifts for hundreds of items at a time; only a rise well past the noise counts.
const TREND_Z: f64 = 3.0;
/// Three quarters of the run: a real slowdown shows sooner, a drift of a noisy pace seldom spans it.
const TREND_SPAN: f64 = 0.75;
const TREND_CAP: f64 = 2.0;

/// Rate and ETA at one instant. `None` means "unknown", never a guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Items per second over the chosen window (active time).
    pub rate: Option<f64>,
    /// Seconds until `processed == total`.
    pub eta: Option<f64>,
    pub eta_low: Option<f64>,
    pub eta_high: Option<f64>,
    /// Seconds since the last item, when that is long enough to be a stall.
    pub stalled: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    t: f64,
    count: u64,
    /// Stalled seconds before this event (cumulative).
    stalled: f64,
    /// Real events before this one (thinning drops stored events, not this count).
    seq: u64,
}

/// A rate over the last `events` real events, which started at `start_count` items.
#[derive(Debug, Clone, Copy)]
struct Window {
    events: u64,
    rate: f64,
    start_count: u64,
}

/// A bounded series of count-changing observations, and the estimator over it.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    events: Vec<Event>,
    gaps: VecDeque<f64>,
    stalled: f64,
    seq: u64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

impl RateWindow {
    /// Records that `count` items were processed by `now`. The first observation anchors the
    /// window; later ones are kept only when the count grew. Time going backwards is ignored.
    pub fn observe(&mut self, now: f64, count: u64) {
        if !now.is_finite() {
            return;
        }
        let Some(last) = self.events.last().copied() else {
            self.events.push(Event { t: now, count, stalled: 0.0, seq: 0 });
            return;
        };
        if now < last.t || count <= last.count {
            return;
        }
        let gap = now - last.t;
        match self.stall_threshold() {
            Some((typical, limit)) if gap > limit => self.stalled += gap - typical,
            _ => {
                if self.gaps.len() == GAP_HISTORY {
                    self.gaps.pop_front();
                }
                self.gaps.push_back(gap);
            }
        }
        self.seq += 1;
        self.events.push(Event { t: now, count, stalled: self.stalled, seq: self.seq });
        if self.events.len() > CAPACITY {
            self.thin();
        }
    }

    /// `(typical gap, stall threshold)` once enough gaps are known.
    fn stall_threshold(&self) -> Option<(f64, f64)> {
        if self.gaps.len() < MIN_GAPS {
            return None;
        }
        let mut gaps: Vec<f64> = self.gaps.iter().copied().collect();
        let typical = median(&mut gaps);
        Some((typical, (STALL_FACTOR * typical).max(STALL_MIN_SECONDS)))
    }

    /// Drops every other event of the older half (the anchor and recent events stay).
    fn thin(&mut self) {
        let half = self.events.len() / 2;
        let mut i = 0;
        self.events.retain(|_| {
            i += 1;
            i == 1 || i > half || i % 2 == 0
        });
    }

    /// Stored events (bounded by the capacity).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Items per active second from event `e` to `now`.
    fn rate_since(&self, e: &Event, now: f64, count: u64) -> Option<f64> {
        let active = (now - e.t) - (self.stalled - e.stalled);
        (active > 0.0 && count > e.count).then(|| (count - e.count) as f64 / active)
    }

    /// Rate and ETA at `now`, given the current processed `count` and the `total` if known.
    pub fn estimate(&self, now: f64, count: u64, total: Option<u64>) -> Estimate {
        let Some(first) = self.events.first() else {
            return Estimate::default();
        };
        if count <= first.count || now <= first.t {
            return Estimate::default();
        }
        let open_gap = now - self.events.last().map_or(now, |e| e.t);
        let stalled = self.stall_threshold().filter(|&(_, limit)| open_gap > limit).map(|_| open_gap);
        let d = self.dispersion();
        let window = self.choose_window(now, count, d);
        let base = Estimate { rate: Some(window.rate), stalled, ..Estimate::default() };
        let Some(total) = total else {
            return base;
        };
        let remaining = total.saturating_sub(count) as f64;
        if remaining == 0.0 {
            return Estimate { eta: Some(0.0), eta_low: Some(0.0), eta_high: Some(0.0), ..base };
        }
        // One change (or all items at one instant) says nothing about the pace.
        if self.events.len() < 3 || window.rate <= 0.0 {
            return base;
        }
        let flat = remaining / window.rate;
        let n = window.events as f64;
        let per_event = (count - window.start_count) as f64 / n;
        let n_ahead = (remaining / per_event).max(1.0);
        let spread = (Z_RANGE * (d / n + d / n_ahead).sqrt()).exp();
        let eta = self.trend(now, count, d).map_or(flat, |(tau_now, slope)| {
            (remaining * (tau_now.max(1.0 / window.rate) + slope * remaining / 2.0)).min(TREND_CAP * flat)
        });
        let low = flat / spread;
        let elapsed = now - first.t;
        // The allowance at most doubles the high end: near the end of a long run a few percent
        // of its length would dwarf the little that is left (`ETA 18s (17s–1m49s)`).
        let mut high = eta * spread + (U_AHEAD * (elapsed + eta)).min(eta * spread);
        if self.stalled > 0.0 && elapsed > self.stalled {
            high *= 1.0 + self.stalled / (elapsed - self.stalled);
        }
        if stalled.is_some() {
            // Nobody knows when a stall ends: only "at least this long" is honest.
            return Estimate { eta_low: Some(low), ..base };
        }
        Estimate { eta: Some(eta), eta_low: Some(low), eta_high: Some(high), ..base }
    }

    /// Relative variance of a rate per event it holds (`D`, see the module docs): the larger of
    /// the short-scale and the long-scale measure, [`D_PRIOR`] until both can be taken.
    fn dispersion(&self) -> f64 {
        let Some(long) = self.dispersion_long() else {
            return D_PRIOR;
        };
        self.dispersion_short().map_or(long, |short| short.max(long)).max(D_MIN)
    }

    /// `ln(items / active s)` and real events from stored event `a` to `b`, if both are positive.
    fn block(&self, a: usize, b: usize) -> Option<(f64, f64)> {
        let (ea, eb) = (&self.events[a], &self.events[b]);
        let active = (eb.t - ea.t) - (eb.stalled - ea.stalled);
        let events = eb.seq.saturating_sub(ea.seq);
        (active > 0.0 && eb.count > ea.count && events > 0)
            .then(|| (((eb.count - ea.count) as f64 / active).ln(), events as f64))
    }

    /// Mean squared difference of neighbouring blocks of [`D_SHORT_EVENTS`] stored events,
    /// each difference scaled to unit variance per event; `None` below 8 blocks.
    fn dispersion_short(&self) -> Option<f64> {
        let (mut sum, mut terms) = (0.0, 0_u32);
        let mut prev: Option<(f64, f64)> = None;
        let mut b = self.events.len() - 1;
        while b >= D_SHORT_EVENTS {
            let a = b - D_SHORT_EVENTS;
            if let Some((x, m)) = self.block(a, b) {
                if let Some((px, pm)) = prev {
                    sum += (x - px).powi(2) / (1.0 / m + 1.0 / pm);
                    terms += 1;
                }
                prev = Some((x, m));
            }
            b = a;
        }
        (terms >= 7).then(|| sum / f64::from(terms))
    }

    /// From [`D_BLOCKS`] blocks of equal real events over the whole run (at least 2 each): the
    /// median absolute difference of neighbours, so that one change of pace (a warm-up
    /// ending) does not count as noise. `None` below 4 blocks.
    fn dispersion_long(&self) -> Option<f64> {
        let last = self.events.last()?.seq as usize;
        let blocks = D_BLOCKS.min(last / 2);
        if blocks < 4 {
            return None;
        }
        let at = |k: usize| {
            let seq = ((k * last) as f64 / blocks as f64).round() as u64;
            self.events.partition_point(|e| e.seq < seq).min(self.events.len() - 1)
        };
        let mut diffs = [0.0_f64; D_BLOCKS];
        let mut k_diffs = 0;
        let mut prev: Option<(f64, f64)> = None;
        for k in 0..blocks {
            let Some((x, m)) = self.block(at(k), at(k + 1)) else { continue };
            if let Some((px, pm)) = prev {
                diffs[k_diffs] = (x - px).abs() / (1.0 / m + 1.0 / pm).sqrt();
                k_diffs += 1;
            }
            prev = Some((x, m));
        }
        // The median absolute value of a normal variable is 0.6745 sd.
        (k_diffs >= 3).then(|| (median(&mut diffs[..k_diffs]) / 0.6745).powi(2))
    }

    /// The largest window whose rate agrees with every smaller one, given the noise `d`.
    fn choose_window(&self, now: f64, count: u64, d: f64) -> Window {
        let last = self.events.last().expect("non-empty");
        let seq_now = last.seq + u64::from(count > last.count);
        let window = |e: &Event| {
            self.rate_since(e, now, count).map(|rate| Window { events: seq_now - e.seq, rate, start_count: e.count })
        };
        let mut windows: Vec<Window> = Vec::with_capacity(12);
        let mut j = J_MIN;
        while j + 1 < self.events.len() {
            windows.extend(window(&self.events[self.events.len() - 1 - j]));
            j *= 2;
        }
        windows.extend(window(&self.events[0]));
        let mut chosen = windows.first().copied().unwrap_or(Window { events: 1, rate: 0.0, start_count: count });
        for (k, w) in windows.iter().enumerate().skip(1) {
            let agrees = windows[..k]
                .iter()
                .all(|s| (w.rate / s.rate).ln().abs() <= Z_CONSISTENT * (d / s.events.max(1) as f64).sqrt());
            if !agrees {
                break;
            }
            chosen = *w;
        }
        chosen
    }

    /// `(item time now, its growth per item)` when the recent items show a consistent slowdown,
    /// larger than the noise `d` could make.
    fn trend(&self, now: f64, count: u64, d: f64) -> Option<(f64, f64)> {
        let ev = &self.events;
        let processed = count - ev[0].count;
        let span = (processed as f64 * TREND_SPAN) as u64;
        if span < (TREND_CHUNKS * 2) as u64 || ev.len() < TREND_CHUNKS * TREND_MIN_EVENTS {
            return None;
        }
        let seq_now = ev[ev.len() - 1].seq + u64::from(count > ev[ev.len() - 1].count);
        let end = Event { t: now, count, stalled: self.stalled, seq: seq_now };
        let at = |target: f64| -> (usize, Event) {
            let i = ev.partition_point(|e| (e.count as f64) < target);
            (i, ev.get(i).copied().unwrap_or(end))
        };
        let lo = (count - span) as f64;
        let size = span as f64 / TREND_CHUNKS as f64;
        let mut points = Vec::with_capacity(TREND_CHUNKS);
        let mut chunk_events = 0;
        for k in 0..TREND_CHUNKS {
            let (ia, a) = at(lo + k as f64 * size);
            let (ib, b) = at(lo + (k + 1) as f64 * size);
            let active = (b.t - a.t) - (b.stalled - a.stalled);
            if ib - ia < TREND_MIN_EVENTS || b.count <= a.count || active <= 0.0 {
                return None;
            }
            let items = (b.count - a.count) as f64;
            points.push(((a.count + b.count) as f64 / 2.0, active / items));
            chunk_events += b.seq - a.seq;
        }
        let mut slopes = Vec::with_capacity(TREND_CHUNKS * (TREND_CHUNKS - 1) / 2);
        for i in 0..points.len() {
            for j in i + 1..points.len() {
                slopes.push((points[j].1 - points[i].1) / (points[j].0 - points[i].0));
            }
        }
        let rising = slopes.iter().filter(|s| **s > 0.0).count() as f64 / slopes.len() as f64;
        if rising < TREND_AGREE {
            return None;
        }
        let slope = median(&mut slopes);
        let mut taus = [0.0; TREND_CHUNKS];
        for (tau, p) in taus.iter_mut().zip(&points) {
            *tau = p.1;
        }
        let rise = slope * span as f64 / median(&mut taus);
        // A least-squares slope over K evenly spaced chunks, each with log noise
        // sqrt(d / events), makes a rise over the span of sd K x noise / sqrt(K (K^2 - 1) / 12).
        let k = TREND_CHUNKS as f64;
        let noise = (d * k / chunk_events as f64).sqrt() * k / (k * (k * k - 1.0) / 12.0).sqrt();
        if rise < TREND_Z * noise {
            return None;
        }
        let mut intercepts: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = median(&mut intercepts);
        Some((intercept + slope * count as f64, slope))
    }
}

#[cfg(test)]
#[path = "eta_tests.rs"]
mod tests;
