//! A tracked loop's counting (`track()`): an item handed out is counted done when the next one
//! is asked for, as tqdm counts (the loop body finished, so an item whose body raised is not
//! counted), and a cancelled run hands out no more items.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::Error;
use super::handle::Handle;
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
}
