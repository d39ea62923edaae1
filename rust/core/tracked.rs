//! A tracked loop's counting (`track()`): an item handed out is counted done when the next one
//! is asked for, as tqdm counts (the loop body finished, so an item whose body raised is not
//! counted), and a cancelled run hands out no more items.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::Error;
use super::handle::Handle;
#[cfg(test)]
use super::limits::MAX_COUNT;
use super::node::Tally;

#[derive(Debug)]
pub struct TrackedLoop {
    pub handle: Handle,
    /// An item was handed out and is not counted yet.
    pending: AtomicBool,
}

impl TrackedLoop {
    pub fn new(handle: Handle) -> Self {
        Self { handle, pending: AtomicBool::new(false) }
    }

    /// Before the next item is asked for: counts the one handed out last (one store); then
    /// [`Error::Cancelled`] if cancel was asked for, with nothing left pending.
    #[inline]
    pub fn before_next(&self) -> Result<(), Error> {
        if self.pending.load(Ordering::Relaxed) {
            self.handle.tally(Tally::Done, 1)?;
        }
        if self.handle.is_cancelled() {
            self.over();
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// [`Self::before_next`] when it has nothing to say, in fewer steps: a node of this
    /// process's run, open and not cancelled, counted within its limit. False, with nothing
    /// done, when the caller must call `before_next`.
    #[inline]
    pub fn before_next_if_clear(&self) -> bool {
        let Some((run, node)) = self.handle.here() else { return false };
        if self.pending.load(Ordering::Relaxed) {
            run.one_done_if_clear(node)
        } else {
            !run.cancelled_here() && !run.is_finished()
        }
    }

    /// An item was handed out (a store only on the first: the flag then stays set).
    #[inline]
    pub fn handed_out(&self) {
        if !self.pending.load(Ordering::Relaxed) {
            self.pending.store(true, Ordering::Relaxed);
        }
    }

    /// The loop is over (exhausted, or the iterable raised): nothing is pending.
    pub fn over(&self) {
        self.pending.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::clock::Clock;
    use crate::core::run::RunCore;

    #[test]
    fn an_item_counts_when_the_next_is_asked_for_and_cancel_stops() {
        let run = Arc::new(RunCore::new("t", "loop", Clock::manual(), 0.0));
        let tracked = TrackedLoop::new(run.root_handle());
        for _ in 0..3 {
            tracked.before_next().unwrap();
            tracked.handed_out();
        }
        assert_eq!(tracked.handle.counts().done, 2, "the third item's body has not finished");
        run.cancel();
        assert_eq!(tracked.before_next(), Err(Error::Cancelled));
        assert_eq!(tracked.handle.counts().done, 3);
        assert_eq!(tracked.before_next(), Err(Error::Cancelled), "nothing was pending: nothing counted twice");
        assert_eq!(tracked.handle.counts().done, 3);
    }

    /// The step as the tracker takes it: the quiet check, and `before_next` when it declines.
    fn step(tracked: &TrackedLoop) -> Result<(), Error> {
        if tracked.before_next_if_clear() {
            return Ok(());
        }
        tracked.before_next()
    }

    #[test]
    fn the_quiet_step_counts_the_same_and_declines_whatever_it_cannot_say() {
        let run = Arc::new(RunCore::new("t", "loop", Clock::manual(), 0.0));
        let tracked = TrackedLoop::new(run.root_handle());
        for _ in 0..3 {
            step(&tracked).unwrap();
            tracked.handed_out();
        }
        assert_eq!(tracked.handle.counts().done, 2);
        // At the limit: declined with nothing counted, and `before_next` names the overflow.
        tracked.handle.restore(0, 0, MAX_COUNT - 2, 0).unwrap();
        assert!(!tracked.before_next_if_clear());
        assert_eq!(tracked.handle.counts().done, MAX_COUNT - 2 + 2);
        assert!(matches!(step(&tracked), Err(Error::Overflow { .. })));
        // Cancelled: declined, and `before_next` says so.
        let run = Arc::new(RunCore::new("t", "loop", Clock::manual(), 0.0));
        let tracked = TrackedLoop::new(run.root_handle());
        step(&tracked).unwrap();
        tracked.handed_out();
        run.cancel();
        assert!(!tracked.before_next_if_clear());
        assert_eq!(step(&tracked), Err(Error::Cancelled));
        assert_eq!(tracked.handle.counts().done, 1, "the item handed out is counted once");
        // Ended: declined, and `before_next` says the run ended.
        let run = Arc::new(RunCore::new("t", "loop", Clock::manual(), 0.0));
        let tracked = TrackedLoop::new(run.root_handle());
        run.finish();
        assert!(!tracked.before_next_if_clear());
        tracked.handed_out();
        assert!(matches!(step(&tracked), Err(Error::RunEnded { .. })));
    }
}
