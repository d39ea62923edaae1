//! Time as seconds since the run began. The core never reads a clock on the hot path; the
//! sampler and item bookkeeping ask [`Clock::now`], and tests drive a [`Clock::Manual`] one.

use std::sync::OnceLock;
use std::time::Instant;

use super::counter::AtomicF64;

#[derive(Debug)]
pub enum Clock {
    /// Monotonic time since `origin`.
    System(Instant),
    /// Time set from outside (an injected Python clock, or a test).
    Manual(AtomicF64),
}

impl Clock {
    pub fn system() -> Self {
        Self::System(Instant::now())
    }

    pub fn manual() -> Self {
        Self::Manual(AtomicF64::new(0.0))
    }

    pub fn now(&self) -> f64 {
        match self {
            Self::System(origin) => origin.elapsed().as_secs_f64(),
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
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
}
