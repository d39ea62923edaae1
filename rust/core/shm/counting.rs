//! A worker's counts in its own slot: what the counting handle does for a node whose run
//! another process owns (`Handle::Slot`, and a forked child's copy of a local node).
//!
//! The checks (an open run, amounts and metrics in range) are the handle's; what is here is
//! where each count lands. One slot has one writer (this process; the GIL serializes its
//! threads), so every counter is a plain load and store.

use std::sync::atomic::Ordering;

use super::segment::{Segment, C_FAILED, C_IN_FLIGHT, C_RETRIED, C_SECONDS, C_SKIPPED, C_TIMED};
use crate::core::counter::Counts;
use crate::core::error::Error;
use crate::core::kinds::{ItemStatus, NodeKind, NodeState};
use crate::core::limits::MAX_COUNT;
use crate::core::node::Tally;

impl Segment {
    /// Adds `n` to `tally` of shared node `node` in this process's slot: a worker's count,
    /// checked as the parent checks its own (the run goes on, the count stays within
    /// [`MAX_COUNT`]). The hot path of `advance()` in a worker: one check, one store.
    #[inline]
    pub fn tally(&self, node: usize, t: Tally, n: u64) -> Result<(), Error> {
        if self.is_ended() {
            return Err(Error::RunEnded { run: String::new(), call: t.call().into() });
        }
        let slot = self.my_slot()?;
        let w = self.word(Self::counter(slot, node, t.shm_field()));
        let own = w.load(Ordering::Relaxed);
        // Done (or skipped) counts both ways; their sum is what stays within the range.
        let partner =
            t.partner().map_or(0, |p| self.word(Self::counter(slot, node, p.shm_field())).load(Ordering::Relaxed));
        // Both are at most MAX_COUNT (2**53 - 1): the sum cannot wrap.
        let at = own + partner;
        if at + n > MAX_COUNT {
            let name = self.node_info(node).map(|i| i.name).unwrap_or_default();
            return Err(Error::Overflow { what: t.call(), node: name, at, n });
        }
        w.store(own + n, Ordering::Relaxed);
        self.beat(slot);
        Ok(())
    }

    /// An item of `node` started in this process: in flight, and the lane's current item.
    pub fn item_started(&self, node: usize, name: &str) -> Result<(), Error> {
        let slot = self.my_slot()?;
        self.bump(slot, node, C_IN_FLIGHT, 1);
        self.set_item(slot, name);
        Ok(())
    }

    /// An item of `node` ended: counted by its status, out of flight, its time kept.
    pub fn item_finished(&self, node: usize, status: ItemStatus, duration: Option<f64>) -> Result<(), Error> {
        let slot = self.my_slot()?;
        // Counted before it leaves flight: a kill between the two stores may count the item
        // twice (done, and failed as the dead worker's), but never loses it.
        let counted = Tally::of_item(status);
        if let Some(t) = counted {
            self.tally(node, t, 1)?;
            // A lane's "done" means done, as everywhere: a skipped item is neither.
            if t != Tally::ItemSkipped {
                self.bump_lane(slot, t == Tally::Failed);
            }
        }
        self.add_quietly(slot, node, C_IN_FLIGHT, u64::MAX); // wrapping: minus one
        if counted.is_none() {
            self.beat(slot); // one sign of life for the item's end: the count's, or this one
        }
        if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
            self.add_quietly(slot, node, C_TIMED, 1);
            self.bump_f64(slot, node, C_SECONDS, d);
        }
        self.set_item(slot, "");
        Ok(())
    }

    /// One failed item of `node` (its name and error reach the parent as an event).
    pub fn fail(&self, node: usize) -> Result<(), Error> {
        self.tally(node, Tally::Failed, 1)?;
        self.bump_lane(self.my_slot()?, true);
        Ok(())
    }

    /// Adds to metric `name` of `node` (checked by the caller), naming it in the table first.
    pub fn add_metric_named(&self, node: usize, name: &str, value: f64, is_float: bool) -> Result<(), Error> {
        let index = self.metric_index(name)?;
        self.add_metric(self.my_slot()?, node, index, value, is_float);
        Ok(())
    }

    /// This process's own counts of `node` (the parent's snapshot sums every process).
    pub fn own_counts(&self, node: usize) -> Counts {
        self.claimed().map_or_else(Counts::default, |slot| self.slot_counts(slot, node))
    }

    /// The counts of `node` in worker slot `slot`: done and skipped with and without an item
    /// context added up, as a node's own counts are.
    pub fn slot_counts(&self, slot: usize, node: usize) -> Counts {
        let word = |f: usize| self.word(Self::counter(slot, node, f)).load(Ordering::Relaxed);
        let (item_done, item_skipped) = (word(Tally::ItemDone.shm_field()), word(Tally::ItemSkipped.shm_field()));
        Counts {
            done: word(Tally::Done.shm_field()).saturating_add(item_done),
            failed: word(C_FAILED),
            skipped: word(C_SKIPPED).saturating_add(item_skipped),
            retried: word(C_RETRIED),
            in_flight: word(C_IN_FLIGHT) as i64,
            items_timed: word(C_TIMED),
            item_seconds: f64::from_bits(word(C_SECONDS)),
            item_done,
            item_skipped,
        }
    }

    /// A worker ends a node it used, in `state` (the parent reads the state back).
    pub fn end_node(&self, node: usize, state: NodeState) {
        self.close_node(node, state as u64);
    }

    /// The phase or step of that name under `parent`, registered by this worker if no process
    /// did yet (loops entered again reuse their node, and grow its total): its index.
    pub fn child(
        &self, parent: usize, kind: NodeKind, name: &str, unit: &str, total: Option<u64>,
    ) -> Result<usize, Error> {
        self.check_open(if kind == NodeKind::Step { "step()" } else { "phase()" })?;
        if name.is_empty() {
            return Err(Error::EmptyName { what: "name" });
        }
        let (i, created) = self.find_or_register(parent, kind.code(), name, unit, total)?;
        if let (false, Some(t)) = (created, total) {
            self.add_total(i, t);
        }
        Ok(i)
    }

    /// Queues an event (its fields as JSON) for the parent; false when the ring was full
    /// (the parent counts and shows what was dropped).
    pub fn emit(&self, node: usize, json: &str) -> Result<bool, Error> {
        self.check_open("log()")?;
        let slot = self.my_slot()?;
        Ok(self.push_event(slot, super::writer::EVENT_JSON, node, json))
    }
}
