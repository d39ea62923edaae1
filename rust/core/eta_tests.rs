//! Tests of the ETA estimator on synthetic traces: a clock that is only a number, no sleeps.

use super::*;

/// A small deterministic generator (xorshift64*), so traces are the same on every run.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Around `mean`, +-30 %.
    fn jitter(&mut self, mean: f64) -> f64 {
        mean * (0.7 + 0.6 * self.next_f64())
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }
}

/// Completion times of items done one after another.
fn sequential(durations: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut t = 0.0;
    durations
        .into_iter()
        .map(|d| {
            t += d;
            t
        })
        .collect()
}

/// Replays completion times as the sampler sees them (4 observations a second), up to the
/// moment item `upto` completes; returns the window and that moment.
fn replay(ts: &[f64], upto: usize) -> (RateWindow, f64) {
    let mut w = RateWindow::default();
    w.observe(0.0, 0);
    let now = ts[upto - 1];
    let mut t = 0.25;
    while t < now {
        w.observe(t, ts.partition_point(|&x| x <= t) as u64);
        t += 0.25;
    }
    w.observe(now, upto as u64);
    (w, now)
}

/// Relative error of the ETA at item `at` of the trace `ts`, and whether the range holds the truth.
fn check(ts: &[f64], at: usize) -> (f64, bool) {
    let (w, now) = replay(ts, at);
    let e = w.estimate(now, at as u64, Some(ts.len() as u64));
    let truth = ts[ts.len() - 1] - now;
    let eta = e.eta.expect("an ETA");
    let inside = e.eta_low.unwrap() <= truth && e.eta_high.is_none_or(|h| truth <= h);
    ((eta - truth).abs() / truth, inside)
}

#[test]
fn nothing_done_is_unknown() {
    let mut w = RateWindow::default();
    for i in 0..100 {
        w.observe(f64::from(i) * 0.25, 0);
    }
    assert_eq!(w.estimate(30.0, 0, Some(100)), Estimate::default());
    assert_eq!(RateWindow::default().estimate(1.0, 5, Some(10)), Estimate::default());
}

#[test]
fn steady_rate_is_accurate_and_inside_its_range() {
    let mut rng = Rng(7);
    let ts = sequential((0..2000).map(|_| rng.jitter(0.9)));
    for at in [300, 1000, 1700] {
        let (err, inside) = check(&ts, at);
        assert!(err < 0.05 && inside, "at {at}: error {err}");
    }
}

/// Completion times of `workers` concurrent workers taking items of lognormal durations (median
/// 8 s, sigma 1) as soon as they are free: a stationary pace, noisy and clumped.
fn pool(seed: u64, workers: usize, n: usize) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut free = vec![0.0_f64; workers];
    let mut ts: Vec<f64> = (0..n)
        .map(|_| {
            let (i, start) = free.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
            free[i] = start + rng.lognormal(8.0, 1.0);
            free[i]
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    ts
}

/// Items done at 10%, 15%, ..., 90% of `n`.
fn checkpoints(n: usize) -> impl Iterator<Item = usize> {
    (2..=18).map(move |k| n * k / 20)
}

#[test]
fn a_steady_range_is_narrow_and_holds_the_truth() {
    let (mut inside, mut widths) = (0, Vec::new());
    for seed in 1..=5 {
        let mut rng = Rng(seed);
        let ts = sequential((0..2000).map(|_| rng.jitter(0.9)));
        for at in checkpoints(ts.len()) {
            let (w, now) = replay(&ts, at);
            let e = w.estimate(now, at as u64, Some(2000));
            let truth = ts[ts.len() - 1] - now;
            let (low, high) = (e.eta_low.unwrap(), e.eta_high.unwrap());
            inside += usize::from(low <= truth && truth <= high);
            widths.push((high - low) / truth);
        }
    }
    let coverage = inside as f64 / widths.len() as f64;
    let width = median(&mut widths);
    // The point is within ~1% here: a range much wider than the noise says nothing.
    assert!(coverage >= 0.8 && width < 0.2, "coverage {coverage}, median width {width}");
}

#[test]
fn stationary_noise_is_averaged_not_chased() {
    // 16 workers, heavy-tailed items: the pace over a few hundred items swings, the long-run
    // average does not. Measured against that average, not against the noisy truth. A stretch
    // of such noise can still pass for a slowdown now and then, hence "almost always".
    let (mut close, mut all) = (0_u32, 0_u32);
    for seed in 1..=5 {
        let ts = pool(seed, 16, 2000);
        for at in checkpoints(ts.len()) {
            let (w, now) = replay(&ts, at);
            let eta = w.estimate(now, at as u64, Some(2000)).eta.unwrap();
            let average = (2000 - at) as f64 * now / at as f64;
            close += u32::from((eta / average).ln().abs() < 0.1);
            all += 1;
        }
    }
    assert!(f64::from(close) >= 0.95 * f64::from(all), "{close} of {all} ETAs within 10% of the long-run average");
}

#[test]
fn the_noise_is_measured_per_run() {
    // Items of steady size one after another: a rate from n events is good to ~0.2 / sqrt(n).
    let mut rng = Rng(4);
    let steady = sequential((0..2000).map(|_| rng.jitter(0.9)));
    // 16 workers, heavy-tailed items: clumps and droughts, noisier than a Poisson process.
    let noisy = pool(4, 16, 2000);
    let at = |ts: &[f64], done: usize| {
        let (w, _) = replay(ts, done);
        w.dispersion()
    };
    let (quiet, clumped) = (at(&steady, 1000), at(&noisy, 1000));
    // Item times of cv 0.17 (cv^2 0.03) plus the sampler's quarter-second quantization.
    assert!((0.02..0.08).contains(&quiet), "steady: {quiet}");
    // Lognormal items of sigma 1 have cv^2 = e - 1 = 1.7, what many such workers add up to.
    assert!((0.7..3.0).contains(&clumped), "pool: {clumped}");
    // Too few events to measure: a Poisson process is assumed.
    assert_eq!(at(&steady, 5).to_bits(), D_PRIOR.to_bits());
}

#[test]
fn a_pool_range_allows_for_its_noise_and_stragglers() {
    let (mut inside, mut all) = (0_u32, 0_u32);
    for seed in 1..=5 {
        let ts = pool(seed, 16, 2000);
        for at in checkpoints(ts.len()) {
            let (_, holds) = check(&ts, at);
            inside += u32::from(holds);
            all += 1;
        }
    }
    assert!(f64::from(inside) >= 0.8 * f64::from(all), "{inside} of {all} ranges hold the truth");
}

#[test]
fn a_slow_warm_up_is_forgotten() {
    let mut rng = Rng(11);
    let ts = sequential((0..2000).map(|i| rng.jitter(if i < 200 { 2.4 } else { 0.6 })));
    let (err, inside) = check(&ts, 500);
    assert!(err < 0.1 && inside, "error {err}");
}

#[test]
fn a_steady_slowdown_is_extrapolated() {
    let mut rng = Rng(3);
    let ts = sequential((0..2000).map(|i| rng.jitter(0.5 * (1.0 + 2.0 * f64::from(i) / 2000.0))));
    let (err, inside) = check(&ts, 1000);
    // A flat rate would be ~20 % short here, even knowing the current pace exactly.
    assert!(err < 0.1 && inside, "error {err}");
}

#[test]
fn bursts_need_several_and_then_are_averaged() {
    let mut ts = Vec::new();
    let mut t = 0.0;
    for _ in 0..40 {
        t += 30.0;
        for _ in 0..50 {
            t += 1e-5;
            ts.push(t);
        }
    }
    let (w, now) = replay(&ts, 50);
    assert_eq!(w.estimate(now, 50, Some(2000)).eta, None, "one burst says nothing");
    let (err, inside) = check(&ts, 1000);
    assert!(err < 0.1 && inside, "error {err}");
}

#[test]
fn concurrent_heavy_tailed_items() {
    let ts = pool(5, 16, 2000);
    let (err, _) = check(&ts, 1000);
    assert!(err < 0.25, "error {err}");
}

#[test]
fn a_stall_is_reported_then_set_aside() {
    let mut rng = Rng(9);
    let mut durations: Vec<f64> = (0..2000).map(|_| rng.jitter(0.8)).collect();
    durations[1000] += 400.0;
    let ts = sequential(durations);
    // During the stall: no point ETA, how long it has lasted, and a lower bound.
    let (w, _) = replay(&ts, 1000);
    let during = ts[999] + 200.0;
    let e = w.estimate(during, 1000, Some(2000));
    assert_eq!(e.eta, None);
    assert!((e.stalled.unwrap() - 200.0).abs() < 1.0);
    assert!(e.eta_low.unwrap() > 0.0);
    // Right after it ends, the pace of the work counts, not the pause.
    let (err, inside) = check(&ts, 1001);
    assert!(err < 0.1 && inside, "error {err}");
}

#[test]
fn all_items_at_one_timestamp() {
    let mut w = RateWindow::default();
    w.observe(0.0, 0);
    w.observe(5.0, 100);
    assert_eq!(w.estimate(5.0, 100, Some(100)).eta, Some(0.0));
    assert_eq!(w.estimate(5.0, 100, Some(200)).eta, None, "a single jump gives no pace");
}

#[test]
fn total_unknown_gives_rate_only() {
    let ts = sequential((0..400).map(|_| 0.25));
    let (w, now) = replay(&ts, 400);
    let e = w.estimate(now, 400, None);
    assert!((e.rate.unwrap() - 4.0).abs() < 0.2);
    assert_eq!(e.eta, None);
}

#[test]
fn total_changed_mid_run_moves_eta() {
    let ts = sequential((0..400).map(|_| 0.1));
    let (w, now) = replay(&ts, 200);
    let a = w.estimate(now, 200, Some(400)).eta.unwrap();
    let b = w.estimate(now, 200, Some(600)).eta.unwrap();
    assert!((b / a - 2.0).abs() < 0.05);
    assert_eq!(w.estimate(now, 200, Some(150)).eta, Some(0.0));
}

#[test]
fn memory_is_bounded_and_thinning_keeps_accuracy() {
    let mut w = RateWindow::default();
    for i in 0..200_000_u32 {
        w.observe(f64::from(i) * 0.05, u64::from(i));
    }
    assert!(w.len() <= CAPACITY);
    let now = 199_999.0 * 0.05;
    let e = w.estimate(now, 199_999, Some(400_000));
    let truth = 200_001.0 * 0.05;
    assert!((e.eta.unwrap() - truth).abs() / truth < 0.02, "{e:?}");
}

#[test]
fn clock_going_backwards_and_nan_are_ignored() {
    let mut w = RateWindow::default();
    w.observe(10.0, 5);
    w.observe(5.0, 9);
    w.observe(f64::NAN, 9);
    assert_eq!(w.len(), 1);
}
