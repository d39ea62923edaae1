//! Time as seconds since the run began. The core never reads a clock on the hot path; the
//! sampler and item bookkeeping ask [`Clock::now`], and tests drive a [`Clock::Manual`] one.

use std::sync::OnceLock;

use super::counter::AtomicF64;

#[derive(Debug)]
pub enum Clock {
    /// Monotonic time since `origin`.
    System(Mono),
    /// Time set from outside (an injected Python clock, or a test).
    Manual(AtomicF64),
}

impl Clock {
    pub fn system() -> Self {
        Self::System(Mono::now())
    }

    pub fn manual() -> Self {
        Self::Manual(AtomicF64::new(0.0))
    }

    pub fn now(&self) -> f64 {
        match self {
            Self::System(origin) => Mono::now().seconds_since(*origin),
            Self::Manual(t) => t.get(),
        }
    }

    /// Sets a manual clock; a system clock ignores it.
    pub fn set(&self, now: f64) {
        if let Self::Manual(t) = self {
            t.set(now);
        }
    }
}

/// Seconds on this process's own monotonic clock: what a worker process times its items by
/// (the run's clock is the parent's). Its zero is the first reading in the process, or in the
/// parent a forked child copied it from; only differences and `now - reading` are used.
pub fn process_now() -> f64 {
    static ORIGIN: OnceLock<Mono> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Mono::now);
    Mono::now().seconds_since(origin)
}

/// A reading of the monotonic clock `Instant` reads (on Unix: `CLOCK_MONOTONIC`; Apple's: `CLOCK_UPTIME_RAW`),
/// taken straight: seconds between two readings are a subtraction, where `Instant::elapsed`
/// makes a checked, normalized `Duration` first (callgrind: about 80 instructions of the
/// bookkeeping of each item of a pool's worker, read twice an item elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct Mono {
    #[cfg(unix)]
    secs: i64,
    #[cfg(unix)]
    nanos: i64,
    #[cfg(not(unix))]
    at: std::time::Instant,
}

impl Mono {
    #[cfg(unix)]
    #[allow(unsafe_code)]
    pub fn now() -> Self {
        // The clock `Instant` reads: on Apple's systems the one that stops while the machine
        // sleeps, in nanoseconds (their CLOCK_MONOTONIC counts microseconds, and sleep).
        #[cfg(target_vendor = "apple")]
        const CLOCK: libc::clockid_t = libc::CLOCK_UPTIME_RAW;
        #[cfg(not(target_vendor = "apple"))]
        const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec to write to; the clock is always there on the Unixes
        // Rust supports (std's `Instant::now` makes the very same call and panics if it fails;
        // this keeps the zero reading instead).
        unsafe { libc::clock_gettime(CLOCK, &raw mut ts) };
        #[allow(clippy::useless_conversion)] // `time_t` and `c_long` are i32 on some targets
        Self { secs: i64::from(ts.tv_sec), nanos: i64::from(ts.tv_nsec) }
    }

    #[cfg(not(unix))]
    pub fn now() -> Self {
        Self { at: std::time::Instant::now() }
    }

    /// Seconds from `origin` to this reading (negative if it came first).
    #[cfg(unix)]
    #[allow(clippy::cast_precision_loss)] // whole seconds and nanoseconds well within 2**53
    pub fn seconds_since(self, origin: Self) -> f64 {
        (self.secs - origin.secs) as f64 + (self.nanos - origin.nanos) as f64 * 1e-9
    }

    #[cfg(not(unix))]
    pub fn seconds_since(self, origin: Self) -> f64 {
        match self.at.checked_duration_since(origin.at) {
            Some(d) => d.as_secs_f64(),
            None => -origin.at.duration_since(self.at).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_reading_is_seconds_on_the_clock_instant_reads() {
        let (origin, since) = (Mono::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (outer, got, inner) = (since.elapsed().as_secs_f64(), Mono::now().seconds_since(origin), Instant::now());
        let after = inner.duration_since(since).as_secs_f64();
        // Taken between the two `Instant` readings, give or take their own cost.
        assert!(got >= 0.02 && got + 1e-3 >= outer && got <= after + 1e-3, "{outer} <= {got} <= {after}");
        assert!(origin.seconds_since(Mono::now()) < 0.0, "an earlier reading is negative seconds since a later one");
        let (a, b) = (process_now(), process_now());
        assert!(b >= a && a >= 0.0, "the process's clock runs forward from its first reading: {a}, {b}");
    }
}
