//! Throughput and ETA from `(time, processed)` observations.
//!
//! # The estimator
//!
//! The sampler records observations of a node's cumulative processed count (done + failed +
//! skipped) a few times a second. Only observations where the count grew are kept: the
//! **events** `e_k = (t_k, c_k)`. Three ideas make the estimate hold up where a single
//! exponential average or a fixed window does not:
//!
//! 1. **Stalls are set aside.** A closed gap between events longer than
//!    `max(STALL_FACTOR x typical gap, STALL_MIN_SECONDS)` (typical = median of the last
//!    [`GAP_HISTORY`] gaps) is a stall (a rate limit, a lost connection). Its excess over the
//!    typical gap is added to a running total `S`, stored with every event, so the *active*
//!    duration of any span is `(t_b - t_a) - (S_b - S_a)`. After a stall the estimate is the
//!    pace of the work, not of the pause. While a stall is going on (the open gap is past the
//!    threshold) the point ETA is unknown and `stalled` says for how long.
//! 2. **The window adapts.** For windows holding the last `j = 3, 6, 12, ...` events and the
//!    whole run, the rate is `r_j = (c - c_start) / active duration` (windows end at `now`).
//!    Each holds `n_j` real events; a rate from `n` events has a relative noise of about
//!    `1/sqrt(n)` whether an event is one item or a burst of fifty. The estimator keeps the
//!    largest window whose rate agrees with every smaller one:
//!    `|ln(r_j / r_i)| <= Z_CONSISTENT / sqrt(n_i)` for all `i < j`. A steady run ends up with a
//!    long, quiet window; after a slow warm-up or a stall the long windows disagree and are
//!    dropped; a chunked pool always spans several bursts. The point ETA is `remaining / r`.
//! 3. **A slowdown is extrapolated.** Over the last [`TREND_SPAN`] of the processed items, cut
//!    into [`TREND_CHUNKS`] chunks, the item time `tau` of each chunk is paired with its
//!    position; the Theil–Sen slope `b` (median of pairwise slopes) is used only when at least
//!    [`TREND_AGREE`] of the pairwise slopes are positive (a consistent slowdown; a single
//!    outlier chunk cannot fake one, and speed-ups, usually a warm-up ending, are not
//!    extrapolated). Then `ETA = remaining x (tau_now + b x remaining / 2)`, the sum of a
//!    linearly growing item time, capped at [`TREND_CAP`] times the flat ETA.
//!
//! The range is `ETA / (1 + u) .. ETA x (1 + u)` with
//! `u = Z_RANGE / sqrt(n) + U_BASE + U_REMAINING x remaining / total`: the noise of the chosen
//! window plus an allowance for the unseen part of the run, wider early. With a trend the low
//! end reaches down to the flat ETA. Once the run has stalled, the high end grows by the
//! stalled share of the elapsed time: what happened once may happen again.
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
const Z_CONSISTENT: f64 = 2.0;
const Z_RANGE: f64 = 1.5;
const U_BASE: f64 = 0.1;
const U_REMAINING: f64 = 0.3;
const TREND_CHUNKS: usize = 8;
const TREND_MIN_EVENTS: usize = 3;
const TREND_AGREE: f64 = 0.8;
const TREND_SPAN: f64 = 0.5;
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
        let (n, rate) = self.choose_window(now, count);
        let base = Estimate { rate: Some(rate), stalled, ..Estimate::default() };
        let Some(total) = total else {
            return base;
        };
        let remaining = total.saturating_sub(count) as f64;
        if remaining == 0.0 {
            return Estimate { eta: Some(0.0), eta_low: Some(0.0), eta_high: Some(0.0), ..base };
        }
        // One change (or all items at one instant) says nothing about the pace.
        if self.events.len() < 3 || rate <= 0.0 {
            return base;
        }
        let flat = remaining / rate;
        let u = Z_RANGE / (n as f64).sqrt() + U_BASE + U_REMAINING * remaining / total.max(1) as f64;
        let (mut eta, mut low, mut high) = (flat, flat / (1.0 + u), flat * (1.0 + u));
        if let Some((tau_now, slope)) = self.trend(now, count) {
            let trended = (remaining * (tau_now.max(1.0 / rate) + slope * remaining / 2.0)).min(TREND_CAP * flat);
            low = low.min(flat);
            high = high.max(trended * (1.0 + u));
            eta = trended;
        }
        let elapsed = now - first.t;
        if self.stalled > 0.0 && elapsed > self.stalled {
            high *= 1.0 + self.stalled / (elapsed - self.stalled);
        }
        if stalled.is_some() {
            // Nobody knows when a stall ends: only "at least this long" is honest.
            return Estimate { eta_low: Some(low), ..base };
        }
        Estimate { eta: Some(eta), eta_low: Some(low), eta_high: Some(high), ..base }
    }

    /// `(real events, rate)` of the largest window that agrees with every smaller one.
    fn choose_window(&self, now: f64, count: u64) -> (u64, f64) {
        let last = self.events.last().expect("non-empty");
        let seq_now = last.seq + u64::from(count > last.count);
        let mut windows: Vec<(u64, f64)> = Vec::with_capacity(12);
        let mut j = J_MIN;
        while j + 1 < self.events.len() {
            let e = &self.events[self.events.len() - 1 - j];
            if let Some(r) = self.rate_since(e, now, count) {
                windows.push((seq_now - e.seq, r));
            }
            j *= 2;
        }
        let first = &self.events[0];
        if let Some(r) = self.rate_since(first, now, count) {
            windows.push((seq_now - first.seq, r));
        }
        let mut chosen = windows.first().copied().unwrap_or((1, 0.0));
        for (k, &(_, r)) in windows.iter().enumerate().skip(1) {
            let agrees = windows[..k]
                .iter()
                .all(|&(n_i, r_i)| (r / r_i).ln().abs() <= Z_CONSISTENT / (n_i.max(1) as f64).sqrt());
            if !agrees {
                break;
            }
            chosen = windows[k];
        }
        chosen
    }

    /// `(item time now, its growth per item)` when the recent items show a consistent slowdown.
    fn trend(&self, now: f64, count: u64) -> Option<(f64, f64)> {
        let ev = &self.events;
        let processed = count - ev[0].count;
        let span = (processed as f64 * TREND_SPAN) as u64;
        if span < (TREND_CHUNKS * 2) as u64 || ev.len() < TREND_CHUNKS * TREND_MIN_EVENTS {
            return None;
        }
        let end = Event { t: now, count, stalled: self.stalled, seq: 0 };
        let at = |target: f64| -> (usize, Event) {
            let i = ev.partition_point(|e| (e.count as f64) < target);
            (i, ev.get(i).copied().unwrap_or(end))
        };
        let lo = (count - span) as f64;
        let size = span as f64 / TREND_CHUNKS as f64;
        let mut points = Vec::with_capacity(TREND_CHUNKS);
        for k in 0..TREND_CHUNKS {
            let (ia, a) = at(lo + k as f64 * size);
            let (ib, b) = at(lo + (k + 1) as f64 * size);
            let active = (b.t - a.t) - (b.stalled - a.stalled);
            if ib - ia < TREND_MIN_EVENTS || b.count <= a.count || active <= 0.0 {
                return None;
            }
            let items = (b.count - a.count) as f64;
            points.push(((a.count + b.count) as f64 / 2.0, active / items));
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
        let mut intercepts: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = median(&mut intercepts);
        Some((intercept + slope * count as f64, slope))
    }
}

#[cfg(test)]
#[path = "eta_tests.rs"]
mod tests;
