//! Atomic cells used on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

use super::limits::MAX_COUNT;

/// A count that only grows.
///
/// Readers (the sampler, the render thread) use relaxed loads: a snapshot may be a few
/// updates behind, but never reports a value that was not reached.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` with a locked read-modify-write: exact with any number of concurrent writers.
    /// For counts whose callers already checked the range (see [`Self::try_add`]).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` with a plain load and store (one cycle instead of the ~18 of a locked add),
    /// unless the sum would pass [`MAX_COUNT`]: then nothing is added and the current value is
    /// the error.
    ///
    /// Exact only while the caller serializes all writers of this counter. The Python binding
    /// does: in a GIL build every call into it holds the GIL, so no two writers overlap.
    /// `base` is what counts beside this counter towards the same limit (done counted in an
    /// item context beside done counted without one); the error is `base` plus the value.
    #[inline]
    pub fn try_add_serialized(&self, n: u64, base: u64) -> Result<(), u64> {
        let v = self.0.load(Ordering::Relaxed);
        // All three are at most MAX_COUNT (2**53 - 1), so the sum cannot wrap.
        if base + v + n > MAX_COUNT {
            return Err(base + v);
        }
        self.0.store(v + n, Ordering::Relaxed);
        Ok(())
    }

    /// Adds `n` atomically unless `base` plus the sum would pass [`MAX_COUNT`] (`base` plus
    /// the current value is the error): exact with any number of concurrent writers.
    pub fn try_add(&self, n: u64, base: u64) -> Result<(), u64> {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                v.checked_add(n).filter(|s| base.saturating_add(*s) <= MAX_COUNT)
            })
            .map(|_| ())
            .map_err(|v| base.saturating_add(v))
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
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
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
///
/// `done` and `skipped` include the items that ended inside an `item()` context, which are
/// also counted apart (`item_done`, `item_skipped`): those are the items the history keeps a
/// row for, so a resumed run takes them from the rows and the rest from its counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub retried: u64,
    pub in_flight: i64,
    pub items_timed: u64,
    pub item_seconds: f64,
    pub item_done: u64,
    pub item_skipped: u64,
}

impl Counts {
    pub fn processed(&self) -> u64 {
        (self.done + self.failed + self.skipped).min(MAX_COUNT)
    }

    /// Done and skipped counted without an item context (`advance`, `skip`, loops).
    pub fn explicit(&self) -> (u64, u64) {
        (self.done.saturating_sub(self.item_done), self.skipped.saturating_sub(self.item_skipped))
    }
}

/// A sum of counts stops at [`MAX_COUNT`]: every single count is within it (checked where it
/// is added), and a roll-up of many never shows a number readers cannot hold.
fn sum(a: u64, b: u64) -> u64 {
    a.saturating_add(b).min(MAX_COUNT)
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.done = sum(self.done, o.done);
        self.failed = sum(self.failed, o.failed);
        self.skipped = sum(self.skipped, o.skipped);
        self.retried = sum(self.retried, o.retried);
        self.in_flight += o.in_flight;
        self.items_timed = sum(self.items_timed, o.items_timed);
        self.item_seconds += o.item_seconds;
        self.item_done = sum(self.item_done, o.item_done);
        self.item_skipped = sum(self.item_skipped, o.item_skipped);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn adds_stop_at_the_largest_count() {
        let c = Counter::default();
        c.try_add_serialized(MAX_COUNT - 1, 0).unwrap();
        assert_eq!(c.try_add_serialized(2, 0), Err(MAX_COUNT - 1), "refused, nothing added");
        c.try_add_serialized(1, 0).unwrap();
        assert_eq!(c.get(), MAX_COUNT);
        assert_eq!(c.try_add(1, 0), Err(MAX_COUNT));
        let d = Counter::default();
        assert_eq!(d.try_add(2, MAX_COUNT - 1), Err(MAX_COUNT - 1), "the partner counts too");
        let mut a = Counts { done: MAX_COUNT, ..Counts::default() };
        a += Counts { done: MAX_COUNT, ..Counts::default() };
        assert_eq!(a.done, MAX_COUNT, "a roll-up saturates");
    }
}
