//! Throughput and ETA from `(time, processed)` observations.
//!
//! # The estimator
//!
//! The sampler records observations `(t_i, c_i)` of a node's cumulative processed count
//! (done + failed + skipped). Between observations the count is interpolated linearly, so
//! `c(t)` is defined for any `t` in the recorded span. With `now` and the current count `c`:
//!
//! * **Long rate** `r_long = (c - c_0) / (now - t_0)`: the global average. Stable, but it never
//!   forgets a slow warm-up or a stall.
//! * **Main rate** `r_main = (c - c(now - w)) / w` with the window
//!   `w = max(MIN_WINDOW, WINDOW_FRACTION * elapsed, now - t_k)`, where `t_k` is the time of the
//!   `K_CHANGES`-th most recent observation at which the count changed. The fraction lets the
//!   window forget the warm-up as the run goes on; the `t_k` term stretches the window over
//!   several bursts when items arrive in batches, so a window never sits between two bursts.
//!   The window always ends at `now`, not at the last completion, so during a stall the rate
//!   decays instead of freezing.
//! * **Short rate** over `max(SHORT_MIN_WINDOW, SHORT_FRACTION * elapsed)`: the recent pace.
//!
//! The point ETA is `remaining / r_main`. The range spans `remaining / r` for the three rates,
//! widened to at least `±u` around the point with `u = 0.05 + 0.25 * sqrt(remaining / total)`:
//! early in a run, when most work is unseen, the range is wide; near the end it narrows.
//! No ETA is given before the count has changed at two distinct observations (one burst says
//! nothing about the time between bursts), nor when the total is unknown.
//!
//! Memory is bounded: at `CAPACITY` observations every other one is dropped (the first is kept)
//! and the minimum spacing doubles, so the window covers the whole run at falling resolution.

use serde::Serialize;

const CAPACITY: usize = 512;
const INITIAL_SPACING: f64 = 0.05;
const MIN_WINDOW: f64 = 10.0;
const WINDOW_FRACTION: f64 = 0.3;
const SHORT_MIN_WINDOW: f64 = 2.0;
const SHORT_FRACTION: f64 = 0.05;
const K_CHANGES: usize = 4;

/// Rate and ETA at one instant. `None` means "unknown", never a guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Items per second over the main window.
    pub rate: Option<f64>,
    /// Seconds until `processed == total`.
    pub eta: Option<f64>,
    pub eta_low: Option<f64>,
    pub eta_high: Option<f64>,
}

/// A bounded series of `(time, count)` observations.
#[derive(Debug, Clone)]
pub struct RateWindow {
    obs: Vec<(f64, u64)>,
    spacing: f64,
}

impl Default for RateWindow {
    fn default() -> Self {
        Self { obs: Vec::with_capacity(64), spacing: INITIAL_SPACING }
    }
}

impl RateWindow {
    /// Records that `count` items were processed by `now`. Observations closer than the
    /// current spacing replace the latest one; time going backwards is ignored.
    pub fn observe(&mut self, now: f64, count: u64) {
        if !now.is_finite() {
            return;
        }
        if let Some(&(t, _)) = self.obs.last() {
            if now < t {
                return;
            }
            if self.obs.len() > 1 && now - self.obs[self.obs.len() - 2].0 < self.spacing {
                *self.obs.last_mut().expect("non-empty") = (now, count);
                return;
            }
        }
        self.obs.push((now, count));
        if self.obs.len() > CAPACITY {
            let mut i = 0;
            self.obs.retain(|_| {
                i += 1;
                i == 1 || i % 2 == 0
            });
            self.spacing *= 2.0;
        }
    }

    pub fn len(&self) -> usize {
        self.obs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.obs.is_empty()
    }

    /// The count at time `t`, interpolated between observations.
    fn count_at(&self, t: f64) -> f64 {
        let i = self.obs.partition_point(|&(ti, _)| ti <= t);
        if i == 0 {
            return self.obs[0].1 as f64;
        }
        let (t0, c0) = self.obs[i - 1];
        match self.obs.get(i) {
            Some(&(t1, c1)) if t1 > t0 => {
                c0 as f64 + (c1 as f64 - c0 as f64) * ((t - t0) / (t1 - t0))
            }
            _ => c0 as f64,
        }
    }

    /// Time of the `k`-th most recent observation at which the count changed, and how many
    /// changes there were in all (up to `k`).
    fn kth_change(&self, k: usize) -> (Option<f64>, usize) {
        let mut seen = 0;
        for w in self.obs.windows(2).rev() {
            if w[1].1 != w[0].1 {
                seen += 1;
                if seen == k {
                    return (Some(w[0].0), seen);
                }
            }
        }
        (None, seen)
    }

    fn rate_over(&self, now: f64, count: u64, window: f64) -> f64 {
        let start = (now - window).max(self.obs[0].0);
        let span = now - start;
        if span <= 0.0 {
            return 0.0;
        }
        ((count as f64 - self.count_at(start)) / span).max(0.0)
    }

    /// Rate and ETA at `now`, given the current processed `count` and the `total` if known.
    pub fn estimate(&self, now: f64, count: u64, total: Option<u64>) -> Estimate {
        let Some(&(t0, c0)) = self.obs.first() else {
            return Estimate::default();
        };
        let elapsed = now - t0;
        if elapsed <= 0.0 || count <= c0 {
            return Estimate::default();
        }
        let (kth, changes) = self.kth_change(K_CHANGES);
        let first_change = self.obs.windows(2).find(|w| w[1].1 != w[0].1).map(|w| w[0].0);
        let mut window = (WINDOW_FRACTION * elapsed).max(MIN_WINDOW);
        if let Some(t) = kth.or(first_change) {
            window = window.max(now - t);
        }
        let r_main = self.rate_over(now, count, window.min(elapsed));
        let rate = Some(r_main);
        let Some(total) = total else {
            return Estimate { rate, ..Estimate::default() };
        };
        let remaining = total.saturating_sub(count) as f64;
        if remaining == 0.0 {
            return Estimate { rate, eta: Some(0.0), eta_low: Some(0.0), eta_high: Some(0.0) };
        }
        // A count seen to change only once (or all at once) says nothing about the pace.
        if changes < 2 || r_main <= 0.0 {
            return Estimate { rate, ..Estimate::default() };
        }
        let r_long = (count - c0) as f64 / elapsed;
        let short = (SHORT_FRACTION * elapsed).max(SHORT_MIN_WINDOW).min(elapsed);
        let r_short = self.rate_over(now, count, short);
        let eta = remaining / r_main;
        let fastest = r_main.max(r_long).max(r_short);
        let slowest = r_main.min(r_long).min(r_short);
        let u = 0.05 + 0.25 * (remaining / total.max(1) as f64).sqrt();
        let low = (remaining / fastest).min(eta * (1.0 - u));
        let high = if slowest > 0.0 { (remaining / slowest).max(eta * (1.0 + u)) } else { f64::INFINITY };
        Estimate {
            rate,
            eta: Some(eta),
            eta_low: Some(low.max(0.0)),
            eta_high: high.is_finite().then_some(high),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a window with observations every `dt` seconds from a count function.
    fn feed(w: &mut RateWindow, from: f64, to: f64, dt: f64, count: impl Fn(f64) -> u64) {
        let mut t = from;
        while t <= to + 1e-9 {
            w.observe(t, count(t));
            t += dt;
        }
    }

    #[test]
    fn nothing_done_is_unknown() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 30.0, 0.1, |_| 0);
        assert_eq!(w.estimate(30.0, 0, Some(100)), Estimate::default());
        assert_eq!(RateWindow::default().estimate(1.0, 5, Some(10)), Estimate::default());
    }

    #[test]
    fn steady_rate_gives_exact_eta_inside_range() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 50.0, 0.1, |t| (t * 10.0) as u64);
        let e = w.estimate(50.0, 500, Some(1000));
        let eta = e.eta.unwrap();
        assert!((eta - 50.0).abs() < 1.0, "eta {eta}");
        assert!(e.eta_low.unwrap() <= eta && eta <= e.eta_high.unwrap());
        assert!((e.rate.unwrap() - 10.0).abs() < 0.2);
    }

    #[test]
    fn warm_up_is_forgotten() {
        // 100 items in the first 100 s, then 10/s.
        let mut w = RateWindow::default();
        let count = |t: f64| if t < 100.0 { t as u64 } else { 100 + ((t - 100.0) * 10.0) as u64 };
        feed(&mut w, 0.0, 300.0, 0.1, count);
        let e = w.estimate(300.0, count(300.0), Some(5000));
        let truth = (5000 - count(300.0)) as f64 / 10.0;
        assert!((e.eta.unwrap() - truth).abs() / truth < 0.05, "{e:?} vs {truth}");
    }

    #[test]
    fn stall_decays_the_rate_and_widens_the_range() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 60.0, 0.1, |t| (t * 10.0) as u64);
        let before = w.estimate(60.0, 600, Some(1200));
        feed(&mut w, 60.1, 120.0, 0.1, |_| 600);
        let during = w.estimate(120.0, 600, Some(1200));
        assert!(during.rate.unwrap() < before.rate.unwrap() / 2.0);
        assert!(during.eta.unwrap() > before.eta.unwrap() * 2.0);
    }

    #[test]
    fn one_burst_is_not_enough_but_several_are() {
        let mut w = RateWindow::default();
        // 50 items every 30 s, arriving at once.
        let count = |t: f64| 50 * ((t / 30.0).floor() as u64);
        feed(&mut w, 0.0, 31.0, 0.1, count);
        assert_eq!(w.estimate(31.0, 50, Some(1000)).eta, None);
        feed(&mut w, 31.1, 300.0, 0.1, count);
        let e = w.estimate(300.0, count(300.0), Some(1000));
        let truth = (1000 - count(300.0)) as f64 / (50.0 / 30.0);
        let eta = e.eta.unwrap();
        assert!((eta - truth).abs() / truth < 0.25, "eta {eta} truth {truth}");
    }

    #[test]
    fn all_items_at_one_timestamp() {
        let mut w = RateWindow::default();
        w.observe(0.0, 0);
        w.observe(5.0, 100);
        let e = w.estimate(5.0, 100, Some(100));
        assert_eq!(e.eta, Some(0.0));
        let partial = w.estimate(5.0, 100, Some(200));
        assert_eq!(partial.eta, None, "a single jump gives no pace");
    }

    #[test]
    fn total_unknown_gives_rate_only() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 20.0, 0.1, |t| (t * 4.0) as u64);
        let e = w.estimate(20.0, 80, None);
        assert!(e.rate.is_some());
        assert_eq!(e.eta, None);
    }

    #[test]
    fn total_changed_mid_run_moves_eta() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 20.0, 0.1, |t| (t * 10.0) as u64);
        let a = w.estimate(20.0, 200, Some(400)).eta.unwrap();
        let b = w.estimate(20.0, 200, Some(600)).eta.unwrap();
        assert!((b / a - 2.0).abs() < 0.05);
        assert_eq!(w.estimate(20.0, 200, Some(150)).eta, Some(0.0));
    }

    #[test]
    fn memory_is_bounded() {
        let mut w = RateWindow::default();
        feed(&mut w, 0.0, 100_000.0, 0.05, |t| t as u64);
        assert!(w.len() <= CAPACITY);
        let e = w.estimate(100_000.0, 100_000, Some(200_000));
        assert!((e.eta.unwrap() - 100_000.0).abs() / 100_000.0 < 0.02);
    }

    #[test]
    fn clock_going_backwards_is_ignored() {
        let mut w = RateWindow::default();
        w.observe(10.0, 5);
        w.observe(5.0, 9);
        w.observe(f64::NAN, 9);
        assert_eq!(w.len(), 1);
    }
}
