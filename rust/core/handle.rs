//! The counting handle: every counting call on a run, a phase or a step goes through
//! [`Handle`], which alone decides where the count goes.
//!
//! - [`Handle::Local`]: a node of this process's run (its counters, lanes and recent items).
//!   In a child forked after the run was shared, the same handle counts into the child's
//!   slot of the run's segment instead: the child's copy of the tree is never read.
//! - [`Handle::Slot`]: a node of a run another process owns, counted into this process's slot
//!   of that run's segment (a worker process).
//!
//! A third arm is foreseen: a worker counting locally and shipping deltas over a network
//! (Dask). It is one more [`Place`] and one more match arm in the methods below; no caller
//! changes. What every arm shares is checked here once: the run is open, amounts and totals
//! in range, metrics valid, names not empty.

use std::borrow::Cow;
use std::sync::Arc;

use super::clock::process_now;
use super::counter::Counts;
use super::error::{within_range, Error};
use super::kinds::{ItemStatus, NodeKind, NodeState};
use super::lanes::Lane;
use super::limits::{MAX_COUNT, MAX_NAME_CHARS};
use super::metrics;
use super::node::{Node, Tally};
use super::rows::{Row, RowBuffer};
use super::run::{ItemEnd, RunCore};
use super::shm::Segment;
use super::text::clip;

#[derive(Debug, Clone)]
pub enum Handle {
    Local {
        run: Arc<RunCore>,
        node: Arc<Node>,
    },
    /// `path`: the node's history path, when the process keeps rows of its items (a pool's
    /// worker keeps its chunk's, which go back to the parent with the results).
    Slot {
        seg: Arc<Segment>,
        idx: usize,
        path: Option<Arc<str>>,
    },
}

/// Where a handle's counts go now.
enum Place<'a> {
    Node(&'a RunCore, &'a Node),
    Slot(&'a Segment, usize),
}

impl Handle {
    pub fn local(run: Arc<RunCore>, node: Arc<Node>) -> Self {
        Self::Local { run, node }
    }

    /// The node at `idx` of a shared run's table, as this (worker) process counts into it.
    pub fn slot(seg: Arc<Segment>, idx: usize) -> Result<Self, Error> {
        seg.check_node(idx)?;
        Ok(Self::Slot { seg, idx, path: None })
    }

    /// [`Self::slot`] whose items' rows are kept under history path `path`.
    pub fn slot_keeping_rows(seg: Arc<Segment>, idx: usize, path: &str) -> Result<Self, Error> {
        seg.check_node(idx)?;
        Ok(Self::Slot { seg, idx, path: Some(Arc::from(path)) })
    }

    #[inline]
    fn place(&self) -> Place<'_> {
        match self {
            Self::Local { run, node } => match run.forked_slot(node) {
                Some((seg, idx)) => Place::Slot(seg, idx),
                None => Place::Node(run, node),
            },
            Self::Slot { seg, idx, .. } => Place::Slot(seg, *idx),
        }
    }

    /// The run and node counted into directly: a node of this process's run, not in a child
    /// forked after the run was shared (there the handle counts into the child's slot).
    #[inline]
    pub fn here(&self) -> Option<(&RunCore, &Node)> {
        match self.place() {
            Place::Node(run, node) => Some((run, node)),
            Place::Slot(..) => None,
        }
    }

    /// The node itself when this is a handle on a node of `run`.
    pub fn node_of(&self, run: &Arc<RunCore>) -> Option<usize> {
        match self {
            Self::Local { run: r, node } if Arc::ptr_eq(r, run) => Some(node.id),
            _ => None,
        }
    }

    /// An error once the run has ended; `call` names the refused call in it.
    #[inline]
    pub fn check_open(&self, call: impl Into<Cow<'static, str>>) -> Result<(), Error> {
        match self {
            Self::Local { run, .. } => run.check_open(call),
            Self::Slot { seg, .. } => seg.check_open(call),
        }
    }

    /// Adds `n` to a count: the hot path of `advance()` and of a tracked loop, one check (in
    /// the place's own counter function) and one store.
    #[inline]
    pub fn tally(&self, t: Tally, n: u64) -> Result<(), Error> {
        match self.place() {
            Place::Node(run, node) => run.tally(node, t, n),
            Place::Slot(seg, idx) => seg.tally(idx, t, n),
        }
    }

    /// Sets the total (`None`: unknown).
    pub fn set_total(&self, total: Option<u64>) -> Result<(), Error> {
        self.check_open("set_total()")?;
        match self.place() {
            Place::Node(run, node) => run.set_total(node, total),
            Place::Slot(seg, idx) => seg.set_total(idx, total),
        }
        Ok(())
    }

    /// Grows the total by `n`; refused when that would pass [`MAX_COUNT`].
    pub fn add_total(&self, n: u64) -> Result<(), Error> {
        self.check_open("add_total()")?;
        if let Some(at) = self.total().filter(|t| t + n > MAX_COUNT) {
            return Err(Error::Overflow { what: "add_total(n)", node: self.name(), at, n });
        }
        match self.place() {
            Place::Node(run, node) => run.add_total(node, n),
            Place::Slot(seg, idx) => seg.add_total(idx, n),
        }
        Ok(())
    }

    /// Adds `value` to metric `name` (ints stay ints until a float is added).
    pub fn metric(&self, name: &str, value: f64, is_float: bool) -> Result<(), Error> {
        self.check_open("metric()")?;
        metrics::check(name, value, is_float)?;
        match self.place() {
            Place::Node(run, node) => run.add_metric(node, name, value, is_float),
            Place::Slot(seg, idx) => seg.add_metric_named(idx, name, value, is_float),
        }
    }

    /// Item `name` starts (on `lane`: a worker process is its own lane, and ignores it);
    /// returns the clock reading it started at: the run's clock, or in a worker's slot, whose
    /// parent keeps the run's clock, this process's own ([`process_now`]).
    pub fn item_started(&self, name: &str, lane: Option<&Lane>) -> Result<f64, Error> {
        self.item_started_at(name, lane, None)
    }

    /// [`Self::item_started`] at `now` on the clock [`Self::now`] reads when the caller read it
    /// (the reading the item before it ended at), else at the clock's reading now.
    pub fn item_started_at(&self, name: &str, lane: Option<&Lane>, now: Option<f64>) -> Result<f64, Error> {
        self.check_open("item()")?;
        match self.place() {
            Place::Node(run, node) => run.item_started_at(node, lane, name, now.unwrap_or_else(|| run.clock.now())),
            Place::Slot(seg, idx) => seg.item_started(idx, name).map(|()| now.unwrap_or_else(process_now)),
        }
    }

    /// Seconds on the clock [`Self::item_started`] reads.
    pub fn now(&self) -> f64 {
        match self.place() {
            Place::Node(run, _) => run.clock.now(),
            Place::Slot(..) => process_now(),
        }
    }

    /// An item ended. With `rows` (the history's row buffer), the item's row is queued in the
    /// same call as its count, so that no Ctrl-C can fall between the two: the history's
    /// counts and its rows always agree. Returns how many rows are waiting.
    pub fn item_finished(
        &self, end: &ItemEnd<'_>, lane: Option<&Lane>, rows: Option<&RowBuffer>, row: RowExtra<'_>,
    ) -> Result<usize, Error> {
        self.item_finished_at(end, lane, rows, row, None)
    }

    /// [`Self::item_finished`] at `now` on the run's clock when the caller read it (`now`),
    /// else at the clock's reading now.
    pub fn item_finished_at(
        &self, end: &ItemEnd<'_>, lane: Option<&Lane>, rows: Option<&RowBuffer>, row: RowExtra<'_>, now: Option<f64>,
    ) -> Result<usize, Error> {
        self.check_open("item()")?;
        match self.place() {
            Place::Node(run, node) => run.item_finished_at(node, lane, end, now.unwrap_or_else(|| run.clock.now()))?,
            Place::Slot(seg, idx) => seg.item_finished(idx, end.status, end.duration)?,
        }
        Ok(self.push_row(rows, end, row))
    }

    /// The whole cost of an item that ended and recorded one (its money metrics), for the
    /// cost per item and the projected cost (`core::cost`). A worker process keeps no such
    /// sums (its costs reach the parent as metric sums): there it does nothing.
    pub fn item_cost(&self, cost: f64) -> Result<(), Error> {
        if !cost.is_finite() {
            return Err(Error::NotFinite { metric: "an item's cost".to_owned(), value: cost });
        }
        if let Place::Node(_, node) = self.place() {
            node.item_cost(cost);
        }
        Ok(())
    }

    /// Item `name`, which has no lane, starts streaming output: the node's tail is its (see
    /// `Node::stream_start`). Streams stay in the process that shows them: a worker process
    /// keeps none, so there this and [`Self::stream`] do nothing.
    pub fn stream_start(&self, name: &str) {
        if let Place::Node(_, node) = self.place() {
            node.stream_start(name);
        }
    }

    /// Adds to the tail of the node's streaming item (see [`Self::stream_start`]).
    pub fn stream(&self, text: &str) {
        if let Place::Node(_, node) = self.place() {
            node.stream(text);
        }
    }

    /// Item `name` that streamed ended: its tail goes.
    pub fn stream_end(&self, name: &str) {
        if let Place::Node(_, node) = self.place() {
            node.stream_end(name);
        }
    }

    /// Counts one failed item and keeps its error text; with `rows`, its history row is queued
    /// in the same call (see [`Self::item_finished`]). Returns how many rows are waiting.
    pub fn fail(&self, name: &str, error: &str, rows: Option<&RowBuffer>, at: f64) -> Result<usize, Error> {
        match self.place() {
            Place::Node(run, node) => run.fail(node, name, error)?,
            Place::Slot(seg, idx) => seg.fail(idx)?,
        }
        let end = ItemEnd { name, status: ItemStatus::Failed, duration: None, error: Some(error) };
        Ok(self.push_row(rows, &end, RowExtra { started_at: at, metrics: None }))
    }

    /// The row of an item that ended, where the node has a history (a worker's rows go back
    /// to the parent with their results). Cancelled items have none.
    fn push_row(&self, rows: Option<&RowBuffer>, end: &ItemEnd<'_>, extra: RowExtra<'_>) -> usize {
        let (Some(rows), Some(phase)) = (rows, self.path()) else { return 0 };
        if end.status == ItemStatus::Cancelled {
            return 0;
        }
        let RowExtra { started_at, metrics } = extra;
        let (name, status, duration, error) = (end.name, end.status, end.duration, end.error);
        rows.push(&Row { phase, name, status, started_at, duration, error, metrics })
    }

    /// Keeps an item a worker process counted in the recent list (and a failure in the
    /// failures list), without counting it again: `at` is seconds on the run's clock. A
    /// worker keeps no such lists: there it does nothing.
    pub fn record_item(&self, end: &ItemEnd<'_>, at: f64, lane: Option<&str>) {
        if let Place::Node(run, node) = self.place() {
            run.record_item(node, lane, end, at);
        }
    }

    /// Restores what a resumed run takes over: items with history rows (done, skipped) and
    /// explicit counts (done, skipped), each into its own counter.
    pub fn restore(&self, item_done: u64, item_skipped: u64, done: u64, skipped: u64) -> Result<(), Error> {
        for (t, n) in [
            (Tally::ItemDone, item_done),
            (Tally::ItemSkipped, item_skipped),
            (Tally::Done, done),
            (Tally::Skipped, skipped),
        ] {
            self.tally(t, within_range("a resumed count", n)?)?;
        }
        Ok(())
    }

    /// Marks the node running (idempotent). A worker marks it in use: the parent shows a node
    /// a worker created as running while a worker uses it.
    pub fn start(&self) {
        match self.place() {
            Place::Node(run, node) => node.start(run.clock.now(), node.processed()),
            Place::Slot(seg, idx) => seg.open_node(idx),
        }
    }

    /// Ends the node in `state` (a worker's end of a node it created is the parent's to show).
    pub fn end(&self, state: NodeState) {
        match self.place() {
            Place::Node(run, node) => node.end(state, run.clock.now()),
            Place::Slot(seg, idx) => seg.end_node(idx, state),
        }
    }

    /// Runs an ended node again, keeping its counts (a loop entered once more).
    pub fn reopen(&self) {
        if let Place::Node(_, node) = self.place() {
            node.reopen();
        }
    }

    /// Whether live displays keep drawing the node once it ended (tqdm's `leave`).
    pub fn set_leave(&self, leave: bool) {
        if let Place::Node(_, node) = self.place() {
            node.set_leave(leave);
        }
    }

    /// Starts a new pass (tqdm's `reset`; see [`Node::new_pass`]).
    pub fn new_pass(&self) {
        if let Place::Node(_, node) = self.place() {
            node.new_pass();
        }
    }

    /// The current pass (see [`Node::new_pass`]): its number, items processed and total.
    pub fn pass_figures(&self) -> (u32, u64, Option<u64>) {
        match self.place() {
            Place::Node(_, node) => node.pass_figures(),
            Place::Slot(..) => (1, 0, None),
        }
    }

    /// Counts shown with SI prefixes in steps of 1000 or 1024 (None: plain); the run's own
    /// nodes only (a worker's handle leaves the display to the run).
    pub fn set_unit_divisor(&self, divisor: Option<u32>) -> Result<(), Error> {
        if let Some(d) = divisor.filter(|d| *d != 1000 && *d != 1024) {
            return Err(Error::Invalid { what: "unit_divisor", expected: "1000 or 1024", got: d.to_string() });
        }
        if let Place::Node(_, node) = self.place() {
            node.set_unit_divisor(divisor);
        }
        Ok(())
    }

    /// Renames the node (tqdm's `set_description`). Names are fixed once a node is shared, so
    /// in a worker the name is checked and kept as it was.
    pub fn rename(&self, name: &str) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::EmptyName { what: "name" });
        }
        if let Place::Node(_, node) = self.place() {
            node.rename(clip(name, MAX_NAME_CHARS));
        }
        Ok(())
    }

    /// The rate (items per second) earlier runs reached here: the ETA until this run has its
    /// own. The parent's snapshot makes the ETA, so a worker has no use for it.
    pub fn set_prior_rate(&self, rate: f64) {
        if let Place::Node(_, node) = self.place() {
            node.set_prior_rate(rate);
        }
    }

    /// Whether cancel was asked for (the loop hands out no more items).
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        match self {
            Self::Local { run, .. } => run.is_cancelled(),
            Self::Slot { seg, .. } => seg.is_cancelled(),
        }
    }

    /// Whether the parent told pool `pool` to stop handing out items (a Ctrl-C).
    pub fn pool_stopped(&self, pool: usize) -> bool {
        match self {
            Self::Local { run, .. } => run.pool_stopped(pool),
            Self::Slot { seg, .. } => seg.pool_stopped(pool),
        }
    }

    /// The node's id in its run, or its index in the shared table for a worker's handle.
    pub fn id(&self) -> usize {
        match self {
            Self::Local { node, .. } => node.id,
            Self::Slot { idx, .. } => *idx,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Local { node, .. } => node.name(),
            Self::Slot { seg, idx, .. } => seg.node_info(*idx).map(|n| n.name).unwrap_or_default(),
        }
    }

    pub fn kind(&self) -> NodeKind {
        match self {
            Self::Local { node, .. } => node.kind,
            Self::Slot { seg, idx, .. } => seg.node_info(*idx).map_or(NodeKind::Step, |n| NodeKind::from_code(n.kind)),
        }
    }

    /// Inside a worker a shared node is always running: the parent decides how it ends.
    pub fn state(&self) -> NodeState {
        match self {
            Self::Local { node, .. } => node.state(),
            Self::Slot { .. } => NodeState::Running,
        }
    }

    /// The node's own total (a shared node's as the segment has it: workers may grow it).
    pub fn total(&self) -> Option<u64> {
        match self {
            Self::Local { run, node } => run.node_total(node),
            Self::Slot { seg, idx, .. } => seg.node_info(*idx).and_then(|n| n.total),
        }
    }

    /// The node's own counts (children are rolled up in snapshots): in the parent, its own
    /// with every worker process's for it, as its snapshot has them; in a worker, this
    /// process's.
    pub fn counts(&self) -> Counts {
        match self.place() {
            Place::Node(run, node) => run.node_counts(node),
            Place::Slot(seg, idx) => seg.own_counts(idx),
        }
    }

    /// The node's key in the history (see `Node::path`); a worker's slot has none (`None`:
    /// the parent keeps the history) unless it keeps rows to send back (`slot_keeping_rows`).
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Local { node, .. } => Some(&node.path),
            Self::Slot { path, .. } => path.as_deref(),
        }
    }

    /// The node's index in the run's shared table, once the run is shared.
    pub fn shared_index(&self) -> Option<usize> {
        match self {
            Self::Local { node, .. } => node.shm_index(),
            Self::Slot { idx, .. } => Some(*idx),
        }
    }
}

/// What an item's history row has besides its end: when it started (Unix time) and the
/// metrics it added (JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct RowExtra<'a> {
    pub started_at: f64,
    pub metrics: Option<&'a str>,
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;
