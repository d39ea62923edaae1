//! Counting into a node of this process's run: the local arm of the counting handle
//! (`core::handle`), which checks what is common to every arm (an open run, values in range)
//! before it calls these.

use std::sync::atomic::Ordering;

use super::{ItemEnd, ItemStatus, RunCore, MAX_ERROR_CHARS, MAX_NAME_CHARS};
use crate::core::counter::Counts;
use crate::core::error::Error;
use crate::core::lanes::Lane;
use crate::core::node::{Node, Tally};
use crate::core::records::ItemRecord;
use crate::core::text::{clip, clip_into};

impl RunCore {
    /// Adds `n` to a count of `node`: the hot path of `advance()`, one check and one store.
    #[inline]
    pub fn tally(&self, node: &Node, t: Tally, n: u64) -> Result<(), Error> {
        if self.finished.load(Ordering::Relaxed) {
            return Err(self.ended_error(t));
        }
        let c = node.counter(t);
        // Done (or skipped) counts both ways; their sum is what stays within the range.
        let base = t.partner().map_or(0, |p| node.counter(p).get());
        // abi3 wheels cannot load on free-threaded CPython: the GIL serializes every caller,
        // so the hottest count can use a plain store.
        let added = if t == Tally::Done { c.try_add_serialized(n, base) } else { c.try_add(n, base) };
        added.map_err(|at| overflow_error(node, t, at, n))
    }

    /// One more item done for `node` when nothing stands in the way (the run open, not
    /// cancelled, the count below its limit); false, with nothing counted, otherwise (the
    /// caller then asks [`Self::tally`] what). A tracked loop's step, with one check of each.
    #[inline]
    pub fn one_done_if_clear(&self, node: &Node) -> bool {
        if self.finished.load(Ordering::Relaxed) || self.cancelled_here() {
            return false;
        }
        // Serialized by the GIL, as in `tally`.
        node.counter(Tally::Done).try_add_serialized(1, node.counter(Tally::ItemDone).get()).is_ok()
    }

    // The errors are made out of line: inlined, their allocations made every caller of
    // `tally` save and restore registers on the path that counts (callgrind: 11 instructions
    // a `track()` step, 245 against 256).
    #[cold]
    #[inline(never)]
    fn ended_error(&self, t: Tally) -> Error {
        Error::RunEnded { run: self.name.clone(), call: t.call().into() }
    }

    /// `node`'s own counts with what worker processes counted for it, as a snapshot has them
    /// (`task.done` after a process pool is the pool's items). Read from the segment without
    /// the `sharing` lock, which a sample holds while it takes the workers' events (the reader
    /// holds the interpreter's lock) and a child forked meanwhile would find held for good.
    pub fn node_counts(&self, node: &Node) -> Counts {
        let mut counts = node.counts();
        if let (Some(seg), Some(shm)) = (self.segment.get(), node.shm_index()) {
            counts += seg.node_counts(shm);
        }
        counts
    }

    /// `node`'s own total; for a shared node the segment's, which workers may have grown.
    pub fn node_total(&self, node: &Node) -> Option<u64> {
        match self.segment.get().zip(node.shm_index()) {
            Some((seg, i)) => seg.node_info(i).and_then(|info| info.total),
            None => node.own_total(),
        }
    }

    // Totals reach the segment without the `sharing` lock: a forked child calls these too.
    pub(crate) fn set_total(&self, node: &Node, total: Option<u64>) {
        node.set_total(total);
        if let (Some(seg), Some(i)) = (self.segment.get(), node.shm_index()) {
            seg.set_total(i, total);
        }
    }

    /// Grows the total by `n` (the handle checked that it stays in range).
    pub(crate) fn add_total(&self, node: &Node, n: u64) {
        node.add_total(n);
        if let (Some(seg), Some(i)) = (self.segment.get(), node.shm_index()) {
            seg.add_total(i, n);
        }
    }

    /// Adds to metric `name` of `node` (the handle checked the value).
    pub(crate) fn add_metric(&self, node: &Node, name: &str, value: f64, is_float: bool) -> Result<(), Error> {
        let slot = self.metric_names.slot(name)?;
        if let Some(seg) = self.segment.get() {
            let _ = seg.metric_index(name); // see enable_sharing
        }
        node.metrics.add(slot, value, is_float);
        Ok(())
    }

    pub fn item_started(&self, node: &Node, lane: Option<&Lane>, name: &str) -> Result<f64, Error> {
        self.item_started_at(node, lane, name, self.clock.now())
    }

    /// [`Self::item_started`] at `now` on the run's clock, read by the caller (who ended the
    /// item before with the same reading).
    pub fn item_started_at(&self, node: &Node, lane: Option<&Lane>, name: &str, now: f64) -> Result<f64, Error> {
        self.check_open("item()")?;
        node.start(now, node.processed());
        node.item_started();
        if let Some(lane) = lane {
            lane.start_item(name, now);
        }
        Ok(now)
    }

    /// Records the end of an item started with [`Self::item_started`]. Its count goes apart
    /// from explicit counts (see `Counts`): the history keeps the item's row.
    pub fn item_finished(&self, node: &Node, lane: Option<&Lane>, end: &ItemEnd<'_>) -> Result<(), Error> {
        self.item_finished_at(node, lane, end, self.clock.now())
    }

    /// [`Self::item_finished`] at `now` on the run's clock, read by the caller (who timed the
    /// item with the same reading).
    pub fn item_finished_at(&self, node: &Node, lane: Option<&Lane>, end: &ItemEnd<'_>, now: f64) -> Result<(), Error> {
        self.check_open("item()")?;
        node.item_left(end.duration);
        if let Some(t) = Tally::of_item(end.status) {
            self.tally(node, t, 1)?;
        }
        if let Some(lane) = lane {
            lane.finish_item(end.status, now);
        }
        self.record(node, lane.map(|l| l.name.as_str()), end, now);
        Ok(())
    }

    /// Counts one failed item and keeps its error text in the failures list.
    pub fn fail(&self, node: &Node, name: &str, error: &str) -> Result<(), Error> {
        self.tally(node, Tally::Failed, 1)?;
        let end = ItemEnd { name, status: ItemStatus::Failed, duration: None, error: Some(error) };
        self.record(node, None, &end, self.clock.now());
        Ok(())
    }

    /// Keeps a finished item in the recent list (and a failure in the failures list) without
    /// counting it: for items a worker process counted, whose results came back later.
    pub fn record_item(&self, node: &Node, lane: Option<&str>, end: &ItemEnd<'_>, at: f64) {
        self.record(node, lane, end, at);
    }

    /// Keeps a failure reported by a worker in the failure list (its count is the worker's).
    pub(super) fn record_worker_failure(&self, node_id: usize, item: &str, error: &str, lane: &str) {
        let Ok(node) = self.node(node_id) else { return };
        let end = ItemEnd { name: item, status: ItemStatus::Failed, duration: None, error: Some(error) };
        self.record(&node, Some(lane), &end, self.clock.now());
    }

    fn record(&self, node: &Node, lane: Option<&str>, end: &ItemEnd<'_>, now: f64) {
        // Written over the oldest record once the list is full: no allocation per item.
        let fill = |rec: &mut ItemRecord| {
            clip_into(&mut rec.name, end.name, MAX_NAME_CHARS);
            node.name_into(&mut rec.node);
            rec.status = end.status;
            rec.duration = end.duration;
            rec.at = now;
            match (lane, &mut rec.lane) {
                (Some(name), Some(kept)) => {
                    kept.clear();
                    kept.push_str(name);
                }
                (lane, kept) => *kept = lane.map(str::to_owned),
            }
            rec.error = end.error.map(|e| clip(e, MAX_ERROR_CHARS));
        };
        if end.status == ItemStatus::Failed {
            let mut rec = ItemRecord::default();
            fill(&mut rec);
            self.failures.lock().push(rec.clone());
            self.recent.lock().push(rec);
            return;
        }
        self.recent.lock().push_with(fill);
    }
}

#[cold]
#[inline(never)]
fn overflow_error(node: &Node, t: Tally, at: u64, n: u64) -> Error {
    Error::Overflow { what: t.call(), node: node.name(), at, n }
}
