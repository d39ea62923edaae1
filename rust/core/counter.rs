//! Atomic cells used on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count that only grows.
///
/// Readers (the sampler, the render thread) use relaxed loads: a snapshot may be a few
/// updates behind, but never reports a value that was not reached.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` with a locked read-modify-write: exact with any number of concurrent writers.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` with a plain load and store (one cycle instead of the ~18 of a locked add).
    ///
    /// Exact only while the caller serializes all writers of this counter. The Python binding
    /// does: in a GIL build every call into it holds the GIL, so no two writers overlap.
    #[inline]
    pub fn add_serialized(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An `f64` stored as bits in an `AtomicU64`; `add` is a compare-and-swap loop.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(v: f64) -> Self {
        Self(AtomicU64::new(v.to_bits()))
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_adds_are_exact() {
        let c = Arc::new(Counter::default());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        c.add(1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.get(), 800_000);
    }

    #[test]
    fn float_add_accumulates() {
        let f = AtomicF64::new(0.5);
        f.add(0.25);
        f.add(-1.0);
        assert!((f.get() + 0.25).abs() < 1e-12);
    }
}

/// A node's item counts as read at one moment: its own, a worker slot's, or rolled up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub retried: u64,
    pub in_flight: i64,
    pub items_timed: u64,
    pub item_seconds: f64,
}

impl Counts {
    pub fn processed(&self) -> u64 {
        self.done + self.failed + self.skipped
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.done += o.done;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.retried += o.retried;
        self.in_flight += o.in_flight;
        self.items_timed += o.items_timed;
        self.item_seconds += o.item_seconds;
    }
}
