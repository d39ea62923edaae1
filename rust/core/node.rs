//! One level of the tree (the run itself, a phase or a step) and its own counters.
//! Roll-up to ancestors happens when a snapshot is built, so an update touches one node only.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

use parking_lot::{Mutex, RwLock};

use super::cost::{CostSums, ItemCosts};
use super::counter::{AtomicF64, Counter};
use super::eta::RateWindow;
pub use super::kinds::{NodeKind, NodeState};
use super::metrics::MetricValues;
use super::tail::Tail;
use super::text::clip;

/// How a total is stored in one atomic word, here and in the shared segment: `u64::MAX` is
/// "unknown", so a known total stops one below it.
pub const UNKNOWN_TOTAL: u64 = u64::MAX;

pub fn encode_total(total: Option<u64>) -> u64 {
    total.map_or(UNKNOWN_TOTAL, |t| t.min(UNKNOWN_TOTAL - 1))
}

pub fn decode_total(word: u64) -> Option<u64> {
    (word != UNKNOWN_TOTAL).then_some(word)
}

/// A stored total grown by `n` (an unknown one becomes `n`).
pub fn grow_total(word: u64, n: u64) -> u64 {
    if word == UNKNOWN_TOTAL {
        n.min(UNKNOWN_TOTAL - 1)
    } else {
        word.saturating_add(n).min(UNKNOWN_TOTAL - 1)
    }
}

/// Which count an update adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Done,
    Failed,
    Skipped,
    Retried,
    /// Done inside an item context (the history keeps the item's row).
    ItemDone,
    ItemSkipped,
}

impl Tally {
    /// What the API call is called, for errors.
    pub fn call(self) -> &'static str {
        match self {
            Self::Done | Self::ItemDone => "advance(n)",
            Self::Failed => "fail()",
            Self::Skipped | Self::ItemSkipped => "skip(n)",
            Self::Retried => "retry()",
        }
    }

    /// The other count of the same kind (done counted with or without an item context): the
    /// two add up to the node's done (or skipped), which must stay within the range.
    pub fn partner(self) -> Option<Self> {
        match self {
            Self::Done => Some(Self::ItemDone),
            Self::ItemDone => Some(Self::Done),
            Self::Skipped => Some(Self::ItemSkipped),
            Self::ItemSkipped => Some(Self::Skipped),
            Self::Failed | Self::Retried => None,
        }
    }

    /// What an item's end counts (a cancelled item leaves flight uncounted).
    pub fn of_item(status: super::kinds::ItemStatus) -> Option<Self> {
        use super::kinds::ItemStatus;
        match status {
            ItemStatus::Done => Some(Self::ItemDone),
            ItemStatus::Failed => Some(Self::Failed),
            ItemStatus::Skipped => Some(Self::ItemSkipped),
            ItemStatus::Cancelled => None,
        }
    }

    /// The per-node counter word of a worker slot this tally goes to.
    pub fn shm_field(self) -> usize {
        use super::shm::segment::{C_DONE, C_FAILED, C_ITEM_DONE, C_ITEM_SKIPPED, C_RETRIED, C_SKIPPED};
        match self {
            Self::Done => C_DONE,
            Self::Failed => C_FAILED,
            Self::Skipped => C_SKIPPED,
            Self::Retried => C_RETRIED,
            Self::ItemDone => C_ITEM_DONE,
            Self::ItemSkipped => C_ITEM_SKIPPED,
        }
    }
}

/// A name as a part of a history path: `%`, `/` and `#` escaped, so that a name with a slash
/// is never taken for a step, nor a name ending in `#2` for a second sibling (and NUL, which
/// would cut the text short in `SQLite`).
pub fn path_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '#' => out.push_str("%23"),
            // SQLite's JSON functions read text as C strings: a NUL would cut the path.
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug)]
pub struct Node {
    pub id: usize,
    pub parent: Option<usize>,
    pub kind: NodeKind,
    name: RwLock<String>,
    /// What one item is called on screen ("it", "file", "persona").
    pub unit: String,
    /// Counts shown with SI prefixes in steps of this (1000 or 1024; 0: plain counts), as
    /// tqdm's `unit_scale` and `unit_divisor` show bytes (`12.3MB/s`).
    unit_divisor: AtomicU32,
    /// False for a loop made with tqdm's `leave=False` inside a run: once it ends, live
    /// displays stop drawing it (its counts stay in the snapshot and the history).
    leave: AtomicBool,
    /// A loop entered again starts a new pass (an inner loop of a nested pair, tqdm's
    /// `reset`): its number, and the own processed count and total when it began. Counts and
    /// totals keep growing across passes (the history stays exact); displays show the pass.
    passes: AtomicU32,
    pass_start: AtomicU64,
    pass_start_total: AtomicU64,
    total: AtomicU64,
    /// The node's key in the history: its parent's path, then its name with `%`, `/` and `#`
    /// escaped, and `#2`, `#3`... for a later sibling of the same name. Fixed at creation
    /// (a rename does not move the node's history).
    pub path: String,
    /// Counted by `advance`, `skip`, `fail` and loops.
    pub done: Counter,
    pub failed: Counter,
    pub skipped: Counter,
    pub retried: Counter,
    /// Ended inside an item context (`item()`, pools): the history keeps a row for each.
    pub item_done: Counter,
    pub item_skipped: Counter,
    in_flight: AtomicI64,
    item_seconds: AtomicF64,
    pub items_timed: Counter,
    pub metrics: MetricValues,
    /// The costs of the items that ended here and recorded one (see `core::cost`).
    costs: ItemCosts,
    /// The streamed output of its items that have no lane (a plain `item()` outside a pool):
    /// the item's name and the tail. One for the node: the latest such item to stream owns it.
    tail: Mutex<(Option<String>, Tail)>,
    state: AtomicU8,
    started_at: AtomicF64,
    ended_at: AtomicF64,
    /// Items per second of this node in earlier runs of the same name (NaN: none known).
    prior_rate: AtomicF64,
    /// Index in the run's shared-memory table (`u64::MAX`: not shared). Read without a lock,
    /// so that a forked child can find it.
    shm: AtomicU64,
    pub(crate) window: Mutex<RateWindow>,
}

impl Node {
    pub fn new(
        id: usize, parent: Option<usize>, kind: NodeKind, name: String, unit: String, total: Option<u64>,
    ) -> Self {
        Self::with_path(id, parent, kind, (name, String::new()), unit, total)
    }

    /// A node with its history path (see [`Self::path`]).
    pub fn with_path(
        id: usize, parent: Option<usize>, kind: NodeKind, (name, path): (String, String), unit: String,
        total: Option<u64>,
    ) -> Self {
        Self {
            id,
            parent,
            kind,
            path,
            name: RwLock::new(name),
            unit,
            unit_divisor: AtomicU32::new(0),
            leave: AtomicBool::new(true),
            passes: AtomicU32::new(1),
            pass_start: AtomicU64::new(0),
            pass_start_total: AtomicU64::new(encode_total(Some(0))),
            total: AtomicU64::new(encode_total(total)),
            done: Counter::default(),
            failed: Counter::default(),
            skipped: Counter::default(),
            retried: Counter::default(),
            item_done: Counter::default(),
            item_skipped: Counter::default(),
            in_flight: AtomicI64::new(0),
            item_seconds: AtomicF64::new(0.0),
            items_timed: Counter::default(),
            metrics: MetricValues::default(),
            costs: ItemCosts::default(),
            tail: Mutex::new((None, Tail::default())),
            state: AtomicU8::new(NodeState::Pending as u8),
            started_at: AtomicF64::new(f64::NAN),
            ended_at: AtomicF64::new(f64::NAN),
            prior_rate: AtomicF64::new(f64::NAN),
            shm: AtomicU64::new(u64::MAX),
            window: Mutex::new(RateWindow::default()),
        }
    }

    pub fn name(&self) -> String {
        self.name.read().clone()
    }

    /// The node's name written over `out` (its buffer reused).
    pub fn name_into(&self, out: &mut String) {
        out.clear();
        out.push_str(&self.name.read());
    }

    /// Renames the node (tqdm's `set_description`); `name` is already clipped by the caller.
    pub fn rename(&self, name: String) {
        *self.name.write() = name;
    }

    pub fn set_leave(&self, leave: bool) {
        self.leave.store(leave, Ordering::Relaxed);
    }

    pub fn leave(&self) -> bool {
        self.leave.load(Ordering::Relaxed)
    }

    /// Shows counts with SI prefixes in steps of `divisor` (None: plain counts).
    pub fn set_unit_divisor(&self, divisor: Option<u32>) {
        self.unit_divisor.store(divisor.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn unit_divisor(&self) -> Option<u32> {
        Some(self.unit_divisor.load(Ordering::Relaxed)).filter(|d| *d > 0)
    }

    /// The total set on this node itself, if any.
    pub fn own_total(&self) -> Option<u64> {
        decode_total(self.total.load(Ordering::Relaxed))
    }

    pub fn set_total(&self, total: Option<u64>) {
        self.total.store(encode_total(total), Ordering::Relaxed);
    }

    /// Grows a known total by `n` (a total that was unknown becomes `n`).
    pub fn add_total(&self, n: u64) {
        let _ = self.total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(grow_total(t, n)));
    }

    /// Items processed by this node itself (done + failed + skipped).
    pub fn processed(&self) -> u64 {
        self.counts().processed()
    }

    /// This node's own counts now.
    pub fn counts(&self) -> super::counter::Counts {
        let (item_done, item_skipped) = (self.item_done.get(), self.item_skipped.get());
        super::counter::Counts {
            done: self.done.get() + item_done,
            failed: self.failed.get(),
            skipped: self.skipped.get() + item_skipped,
            retried: self.retried.get(),
            in_flight: self.in_flight(),
            items_timed: self.items_timed.get(),
            item_seconds: self.item_seconds(),
            item_done,
            item_skipped,
        }
    }

    /// The counter a tally goes to.
    pub fn counter(&self, t: Tally) -> &Counter {
        match t {
            Tally::Done => &self.done,
            Tally::Failed => &self.failed,
            Tally::Skipped => &self.skipped,
            Tally::Retried => &self.retried,
            Tally::ItemDone => &self.item_done,
            Tally::ItemSkipped => &self.item_skipped,
        }
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn item_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Bookkeeping for an item leaving flight: its duration feeds the mean item time.
    pub fn item_left(&self, duration: Option<f64>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
            self.item_seconds.add(d);
            self.items_timed.add(1);
        }
    }

    /// The whole cost of one item that ended here (once per item that recorded one).
    pub fn item_cost(&self, cost: f64) {
        self.costs.add(cost);
    }

    /// This node's own per-item cost sums; the sample is every item that ended here (see
    /// `core::cost`).
    pub fn cost_sums(&self) -> CostSums {
        self.costs.sums(self.items_timed.get())
    }

    /// Item `name` (one without a lane) starts streaming: the node's tail is its now.
    pub fn stream_start(&self, name: &str) {
        let mut t = self.tail.lock();
        t.0 = Some(clip(name, super::limits::MAX_NAME_CHARS));
        t.1.clear();
    }

    /// Adds to the tail of the streaming item without a lane.
    pub fn stream(&self, text: &str) {
        self.tail.lock().1.push(text);
    }

    /// The streaming item ended: its tail goes (unless another item took it over since).
    pub fn stream_end(&self, name: &str) {
        let mut t = self.tail.lock();
        if t.0.as_deref() == Some(&*clip(name, super::limits::MAX_NAME_CHARS)) {
            t.0 = None;
            t.1.clear();
        }
    }

    /// The streaming item's name and its tail as shown, when there is one.
    pub fn tail(&self) -> Option<(String, String)> {
        let t = self.tail.lock();
        Some((t.0.clone()?, t.1.shown()?))
    }

    pub fn item_seconds(&self) -> f64 {
        self.item_seconds.get()
    }

    pub fn state(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Marks the node running at `now` (once) and anchors its rate window there.
    pub fn start(&self, now: f64, processed: u64) {
        if self
            .state
            .compare_exchange(NodeState::Pending as u8, NodeState::Running as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.started_at.set(now);
            self.window.lock().observe(now, processed);
        }
    }

    /// Runs an ended node again (a loop that is entered once more), keeping its counts.
    /// A new pass begins now: what was processed and the total so far belong to earlier ones.
    pub fn new_pass(&self) {
        self.pass_start.store(self.processed(), Ordering::Relaxed);
        self.pass_start_total.store(self.total.load(Ordering::Relaxed), Ordering::Relaxed);
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// The current pass: its number (1 until a loop is entered again), items processed in it,
    /// and its total (what the total grew by since it began; unknown if either is).
    pub fn pass_figures(&self) -> (u32, u64, Option<u64>) {
        let processed = self.processed().saturating_sub(self.pass_start.load(Ordering::Relaxed));
        let start_total = decode_total(self.pass_start_total.load(Ordering::Relaxed));
        let total = self.own_total().zip(start_total).map(|(t, s)| t.saturating_sub(s));
        (self.passes.load(Ordering::Relaxed), processed, total)
    }

    /// Enters an ended loop again: a new pass of it.
    pub fn reopen(&self) {
        self.new_pass();
        let ended = [NodeState::Completed, NodeState::Failed, NodeState::Cancelled];
        if ended.contains(&self.state()) {
            self.ended_at.set(f64::NAN);
            self.state.store(NodeState::Running as u8, Ordering::Relaxed);
        }
    }

    pub fn end(&self, state: NodeState, now: f64) {
        self.state.store(state as u8, Ordering::Relaxed);
        if self.ended_at.get().is_nan() {
            self.ended_at.set(now);
        }
    }

    pub fn shm_index(&self) -> Option<usize> {
        match self.shm.load(Ordering::Acquire) {
            u64::MAX => None,
            i => Some(i as usize),
        }
    }

    pub fn set_shm_index(&self, index: usize) {
        self.shm.store(index as u64, Ordering::Release);
    }

    /// What earlier runs achieved, for an ETA before this run has a pace of its own.
    pub fn set_prior_rate(&self, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.prior_rate.set(rate);
        }
    }

    pub fn prior_rate(&self) -> Option<f64> {
        Some(self.prior_rate.get()).filter(|r| r.is_finite())
    }

    pub fn started_at(&self) -> Option<f64> {
        Some(self.started_at.get()).filter(|t| !t.is_nan())
    }

    pub fn ended_at(&self) -> Option<f64> {
        Some(self.ended_at.get()).filter(|t| !t.is_nan())
    }
}
