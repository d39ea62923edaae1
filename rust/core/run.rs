//! The run: its node tree, lanes, metric names, recent items and failures, and the snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::clock::Clock;
use super::counter::Counts;
use super::error::Error;
use super::eta::Estimate;
use super::lanes::{Lane, LaneState};
use super::metrics::{MetricRegistry, MetricSums, MetricValue};
use super::limits::MAX_COUNT;
use super::node::{path_part, Node, NodeKind, NodeState, Tally};
use super::records::{ItemRecord, Ring};
use super::sharing::{SharedExtra, Sharing, WorkerEvent};
use super::shm::{Segment, SegmentError};
use super::snapshot::{LaneSnapshot, NodeSnapshot, Snapshot, SCHEMA_VERSION};
use super::text::clip;

pub use super::limits::{MAX_ERROR_CHARS, MAX_NAME_CHARS, MAX_NODES};
const RECENT_ITEMS: usize = 32;
const RECENT_FAILURES: usize = 64;
const MAX_LANES: usize = 4096;
const SHOWN_FINISHED_LANES: usize = 16;

/// How an item ended, as reported by the item's context.
#[derive(Debug, Clone, Copy)]
pub struct ItemEnd<'a> {
    pub name: &'a str,
    pub status: ItemStatus,
    pub duration: Option<f64>,
    pub error: Option<&'a str>,
}

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    Done,
    Failed,
    Skipped,
    /// Interrupted (Ctrl-C): left flight without being counted.
    Cancelled,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug)]
pub struct RunCore {
    pub id: String,
    pub name: String,
    pub clock: Clock,
    started_at_unix: f64,
    nodes: RwLock<Vec<Arc<Node>>>,
    pub metric_names: MetricRegistry,
    lanes: RwLock<Vec<Arc<Lane>>>,
    recent: Mutex<Ring<ItemRecord>>,
    failures: Mutex<Ring<ItemRecord>>,
    /// The segment shared with worker processes, once the run has one. Lock order: never
    /// take this while holding `nodes`.
    sharing: Mutex<Option<Sharing>>,
    /// The same segment, readable without a lock (a forked child must take no lock).
    segment: std::sync::OnceLock<Arc<Segment>>,
    /// The fork generation this run was created in: a different one means this copy is in a
    /// forked child, where counts go to the child's slot of the segment.
    fork_generation: u64,
    /// Cancel was asked for (dashboard, `run.cancel()`): loops stop handing out items.
    cancelled: std::sync::atomic::AtomicBool,
    /// The run has ended: its counts are final, and later updates are refused.
    finished: std::sync::atomic::AtomicBool,
    /// How many nodes have each history path so far (a later sibling of the same name gets
    /// `#2`, `#3`...).
    paths: Mutex<std::collections::HashMap<String, usize>>,
}

/// Counts of one node plus all its descendants.
#[derive(Debug, Clone, Copy, Default)]
struct Rolled {
    counts: Counts,
    child_total: Option<u64>,
    has_children: bool,
    metrics: MetricSums,
    own_total: Option<u64>,
    /// Items counted on the node itself (its own and its workers'), before roll-up.
    own_processed: u64,
    /// The node's own done and skipped counted without an item context (see `Counts`).
    own_explicit: (u64, u64),
}

impl Rolled {
    fn processed(&self) -> u64 {
        self.counts.processed()
    }

    fn add_shared(&mut self, s: &super::shm::SharedSums, metric_slots: &[Option<usize>]) {
        self.counts += s.counts;
        for &(m, v, is_float) in &s.metrics {
            if let Some(slot) = metric_slots.get(m).copied().flatten() {
                self.metrics.values[slot] += v;
                self.metrics.used |= 1 << slot;
                if is_float {
                    self.metrics.floats |= 1 << slot;
                }
            }
        }
    }
}

impl RunCore {
    /// Creates a run whose root node (kind `run`) is started at once.
    pub fn new(id: &str, name: &str, clock: Clock, started_at_unix: f64) -> Self {
        let name = clip(name, MAX_NAME_CHARS);
        let root = Arc::new(Node::new(0, None, NodeKind::Run, name.clone(), "it".to_owned(), None));
        root.start(clock.now(), 0);
        Self {
            id: clip(id, 64),
            name,
            clock,
            started_at_unix,
            nodes: RwLock::new(vec![root]),
            metric_names: MetricRegistry::default(),
            lanes: RwLock::new(Vec::new()),
            recent: Mutex::new(Ring::new(RECENT_ITEMS)),
            failures: Mutex::new(Ring::new(RECENT_FAILURES)),
            sharing: Mutex::new(None),
            segment: std::sync::OnceLock::new(),
            fork_generation: super::shm::segment::fork_generation(),
            cancelled: std::sync::atomic::AtomicBool::new(false),
            finished: std::sync::atomic::AtomicBool::new(false),
            paths: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Ends the run's counting: from now on every update is refused with
    /// [`Error::RunEnded`] (in worker processes too), so what the final snapshot shows is all
    /// there ever was.
    pub fn finish(&self) {
        self.finished.store(true, std::sync::atomic::Ordering::Release);
        if let Some(seg) = self.segment.get() {
            seg.set_ended();
        }
    }

    /// An error unless the run is still going.
    #[inline]
    pub fn check_open(&self, call: &'static str) -> Result<(), Error> {
        if self.finished.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::RunEnded { run: self.name.clone(), call });
        }
        if self.in_forked_child() && self.segment.get().is_some_and(|s| s.is_ended()) {
            return Err(Error::RunEnded { run: self.name.clone(), call });
        }
        Ok(())
    }

    /// Adds `n` to a count of `node`: the hot path of `advance()` (one check, one store). In
    /// a forked child the count goes to this process's slot of the shared segment.
    #[inline]
    pub fn tally(&self, node: &Node, t: Tally, n: u64) -> Result<(), Error> {
        if self.finished.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::RunEnded { run: self.name.clone(), call: t.call() });
        }
        if self.in_forked_child() {
            if let (Some(seg), Some(idx)) = (self.segment.get(), node.shm_index()) {
                return seg.tally(idx, t, n);
            }
        }
        let c = node.counter(t);
        // Done (or skipped) counts both ways; their sum is what stays within the range.
        let base = t.partner().map_or(0, |p| node.counter(p).get());
        // abi3 wheels cannot load on free-threaded CPython: the GIL serializes every caller,
        // so the hottest count can use a plain store.
        let added = if t == Tally::Done { c.try_add_serialized(n, base) } else { c.try_add(n, base) };
        added.map_err(|at| Error::Overflow { what: t.call(), node: node.name(), at, n })
    }

    /// The history path of a new node named `name` under `parent` (see [`Node::path`]).
    fn path_for(&self, nodes: &[Arc<Node>], parent: usize, name: &str) -> String {
        let part = path_part(name);
        let base = match nodes.get(parent) {
            Some(p) if p.kind != NodeKind::Run => format!("{}/{part}", p.path),
            _ => part,
        };
        let mut seen = self.paths.lock();
        let n = seen.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { base } else { format!("{base}#{n}") }
    }
    /// Asks the job to stop taking new items (workers too, through the segment).
    pub fn cancel(&self) {
        self.cancelled.store(true, std::sync::atomic::Ordering::Release);
        if let Some(seg) = self.segment.get() {
            seg.set_cancelled();
        }
    }

    /// Whether cancel was asked for: here, or (in a worker's copy) through the segment.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
            || (self.in_forked_child() && self.segment.get().is_some_and(|s| s.is_cancelled()))
    }

    /// Whether this copy of the run lives in a child forked after it was created.
    #[inline]
    pub fn in_forked_child(&self) -> bool {
        super::shm::segment::fork_generation() != self.fork_generation
    }

    /// Worker processes the parent is about to stop (`pids`, a second Ctrl-C): marked so that
    /// the sampler does not take their end for a death. Call `stopped_workers` once they are
    /// gone.
    pub fn stopping_workers(&self, pids: &[u32]) {
        let Some(seg) = self.segment.get() else { return };
        for slot in seg.used_slots() {
            let view = seg.slot_view(slot);
            if view.state == super::shm::segment::ACTIVE && pids.contains(&view.pid) {
                seg.state_word(slot).store(super::shm::segment::STOPPING, std::sync::atomic::Ordering::Release);
            }
        }
    }

    /// Worker processes the parent stopped, now gone: their items in flight leave flight
    /// uncounted, as an item interrupted by Ctrl-C does (not failed, as a death's are).
    pub fn stopped_workers(&self) {
        let Some(seg) = self.segment.get() else { return };
        for slot in seg.used_slots() {
            if seg.state_word(slot).load(std::sync::atomic::Ordering::Acquire) == super::shm::segment::STOPPING {
                seg.account_stop(slot);
            }
        }
    }

    /// Tells pool `pool`'s workers to stop handing out items (a Ctrl-C), or, with `false`,
    /// frees its bit when the pool is over. Nothing happens for a run not shared.
    pub fn stop_pool(&self, pool: usize, stop: bool) {
        if let Some(seg) = self.segment.get() {
            seg.set_pool_stop(pool, stop);
        }
    }

    /// The state of every phase and step (not the run itself).
    pub fn node_states(&self) -> Vec<NodeState> {
        self.nodes.read().iter().skip(1).map(|n| n.state()).collect()
    }

    /// Ends every node still running (at the end of the run: nodes created by workers too).
    pub fn end_running(&self, state: NodeState) {
        let now = self.clock.now();
        for node in self.nodes.read().iter() {
            if node.state() == NodeState::Running {
                node.end(state, now);
            }
        }
    }

    /// Shares the run with worker processes through a segment file in `dir` (once; later
    /// calls return the same path). Every node so far, and every later one, is registered.
    pub fn enable_sharing(&self, dir: &std::path::Path, stall_after: f64) -> Result<std::path::PathBuf, SegmentError> {
        let mut sharing = self.sharing.lock();
        if let Some(sh) = sharing.as_ref() {
            return Ok(sh.seg.path().to_owned());
        }
        let mut sh = Sharing::create(dir, &self.id, stall_after)?;
        for node in self.nodes.read().iter() {
            sh.register(node);
        }
        // The parent's metric names take their places in the shared table first: a worker
        // that would go past the limit gets the error instead of losing its metric.
        for name in self.metric_names.names() {
            let _ = sh.seg.metric_index(&name);
        }
        let path = sh.seg.path().to_owned();
        if self.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            sh.seg.set_cancelled();
        }
        let _ = self.segment.set(Arc::clone(&sh.seg));
        *sharing = Some(sh);
        Ok(path)
    }

    /// The shared segment (without a lock: safe in a forked child).
    pub fn segment(&self) -> Option<Arc<Segment>> {
        self.segment.get().cloned()
    }

    /// Removes the segment file (workers that still have it mapped keep their mapping).
    pub fn stop_sharing(&self) {
        if let Some(sh) = self.sharing.lock().as_ref() {
            sh.seg.unlink();
        }
    }

    /// Events sent by workers since the last call (item failures, log lines, their phases).
    pub fn take_worker_events(&self) -> Vec<WorkerEvent> {
        self.sharing.lock().as_mut().map(Sharing::take_events).unwrap_or_default()
    }

    // Totals reach the segment without the `sharing` lock: a forked child calls these too.
    pub fn set_total(&self, node: &Node, total: Option<u64>) -> Result<(), Error> {
        self.check_open("set_total()")?;
        node.set_total(total);
        if let (Some(seg), Some(i)) = (self.segment.get(), node.shm_index()) {
            seg.set_total(i, total);
        }
        Ok(())
    }

    /// Grows the total by `n`; refused when that would pass [`MAX_COUNT`].
    pub fn add_total(&self, node: &Node, n: u64) -> Result<(), Error> {
        self.check_open("add_total()")?;
        let shared = self.segment.get().zip(node.shm_index());
        let at = match shared {
            Some((seg, i)) => seg.node_info(i).and_then(|info| info.total),
            None => node.own_total(),
        };
        if let Some(at) = at.filter(|t| t + n > MAX_COUNT) {
            return Err(Error::Overflow { what: "add_total(n)", node: node.name(), at, n });
        }
        node.add_total(n);
        if let Some((seg, i)) = shared {
            seg.add_total(i, n);
        }
        Ok(())
    }

    pub fn root(&self) -> Arc<Node> {
        Arc::clone(&self.nodes.read()[0])
    }

    pub fn node(&self, id: usize) -> Result<Arc<Node>, Error> {
        self.nodes.read().get(id).cloned().ok_or(Error::UnknownNode { id })
    }

    /// Adds a phase or step under `parent`.
    pub fn add_node(
        &self,
        parent: usize,
        kind: NodeKind,
        name: &str,
        unit: &str,
        total: Option<u64>,
    ) -> Result<Arc<Node>, Error> {
        if name.is_empty() {
            return Err(Error::EmptyName { what: "name" });
        }
        self.check_open(if kind == NodeKind::Step { "step()" } else { "phase()" })?;
        let mut nodes = self.nodes.write();
        if parent >= nodes.len() {
            return Err(Error::UnknownNode { id: parent });
        }
        if nodes.len() >= MAX_NODES {
            return Err(Error::TooManyNodes { limit: MAX_NODES });
        }
        let name = clip(name, MAX_NAME_CHARS);
        let path = self.path_for(&nodes, parent, &name);
        let node = Arc::new(Node::with_path(nodes.len(), Some(parent), kind, (name, path), clip(unit, 16), total));
        nodes.push(Arc::clone(&node));
        drop(nodes);
        if let Some(sh) = self.sharing.lock().as_mut() {
            sh.register(&node);
        }
        Ok(node)
    }

    /// Keeps a failure reported by a worker in the failure list (its count is the worker's).
    fn record_worker_failure(&self, node_id: usize, item: &str, error: &str, lane: &str) {
        let Ok(node) = self.node(node_id) else { return };
        let end = ItemEnd { name: item, status: ItemStatus::Failed, duration: None, error: Some(error) };
        self.record(&node, Some(lane), &end, self.clock.now());
    }

    fn path_of(&self, id: usize) -> Vec<String> {
        let nodes = self.nodes.read();
        let mut path = Vec::new();
        let mut cur = nodes.get(id).map(Arc::clone);
        while let Some(n) = cur {
            path.push(n.name());
            cur = n.parent.and_then(|p| nodes.get(p).map(Arc::clone));
        }
        path.reverse();
        path
    }

    /// Mirrors worker-created nodes, watches worker slots, and returns what the roll-up adds.
    fn sync_shared(&self, now: f64) -> Option<SharedExtra> {
        let mut guard = self.sharing.lock();
        let sh = guard.as_mut()?;
        while let Some((shm, parent, kind, name, unit, total)) = sh.next_unmirrored() {
            let mut nodes = self.nodes.write();
            if nodes.len() >= MAX_NODES {
                break;
            }
            let parent = parent.min(nodes.len() - 1);
            let path = self.path_for(&nodes, parent, &name);
            let node = Arc::new(Node::with_path(nodes.len(), Some(parent), kind, (name, path), unit, total));
            nodes.push(Arc::clone(&node));
            drop(nodes);
            sh.mirrored(shm, &node);
        }
        let run_over = self.root().state() != NodeState::Running;
        for (id, open, ended) in sh.worker_node_states() {
            let Ok(node) = self.node(id) else { continue };
            if open && !run_over {
                node.reopen();
                node.start(now, 0);
            } else if let Some(state) = ended {
                node.end(state, now);
            }
        }
        sh.poll(now, |id| self.path_of(id), |id, item, error, lane| self.record_worker_failure(id, item, error, lane));
        let count = self.nodes.read().len();
        Some(sh.extra(count, |name| self.metric_names.slot(name).ok()))
    }

    /// Adds a worker lane, recycling the slot of a finished one. Past [`MAX_LANES`] live
    /// lanes the last is shared, keeping memory bounded.
    pub fn add_lane(&self, name: &str) -> Arc<Lane> {
        let now = self.clock.now();
        let mut lanes = self.lanes.write();
        let slot = lanes.iter().position(|l| l.state() == LaneState::Finished);
        let id = match slot {
            Some(i) => i,
            None if lanes.len() < MAX_LANES => lanes.len(),
            None => return Arc::clone(lanes.last().expect("non-empty")),
        };
        let lane = Arc::new(Lane::new(id, name, now));
        if id == lanes.len() {
            lanes.push(Arc::clone(&lane));
        } else {
            lanes[id] = Arc::clone(&lane);
        }
        lane
    }

    pub fn metric(&self, node: &Node, name: &str, value: f64, is_float: bool) -> Result<(), Error> {
        self.check_open("metric()")?;
        if !value.is_finite() {
            return Err(Error::NotFinite { metric: name.to_owned(), value });
        }
        if !is_float && value.abs() > MAX_COUNT as f64 {
            return Err(Error::TooLarge { what: format!("metric {name:?}"), value: format!("{value:.0}") });
        }
        let slot = self.metric_names.slot(name)?;
        if let Some(seg) = self.segment.get() {
            let _ = seg.metric_index(name); // see enable_sharing
        }
        node.metrics.add(slot, value, is_float);
        Ok(())
    }

    pub fn item_started(&self, node: &Node, lane: Option<&Lane>, name: &str) -> Result<(), Error> {
        self.check_open("item()")?;
        let now = self.clock.now();
        node.start(now, node.processed());
        node.item_started();
        if let Some(lane) = lane {
            lane.start_item(name, now);
        }
        Ok(())
    }

    /// Records the end of an item started with [`Self::item_started`]. Its count goes apart
    /// from explicit counts (see `Counts`): the history keeps the item's row.
    pub fn item_finished(&self, node: &Node, lane: Option<&Lane>, end: &ItemEnd<'_>) -> Result<(), Error> {
        self.check_open("item()")?;
        node.item_left(end.duration);
        match end.status {
            ItemStatus::Done => self.tally(node, Tally::ItemDone, 1)?,
            ItemStatus::Skipped => self.tally(node, Tally::ItemSkipped, 1)?,
            ItemStatus::Failed => self.tally(node, Tally::Failed, 1)?,
            ItemStatus::Cancelled => {}
        }
        let now = self.clock.now();
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

    fn record(&self, node: &Node, lane: Option<&str>, end: &ItemEnd<'_>, now: f64) {
        let rec = ItemRecord {
            name: clip(end.name, MAX_NAME_CHARS),
            node: node.name(),
            status: end.status.as_str().into(),
            duration: end.duration,
            at: now,
            lane: lane.map(str::to_owned),
            error: end.error.map(|e| clip(e, MAX_ERROR_CHARS)),
        };
        if end.status == ItemStatus::Failed {
            self.failures.lock().push(rec.clone());
        }
        self.recent.lock().push(rec);
    }

    /// Counts of every node including its descendants (and, for a shared run, the workers'
    /// counts), indexed by node id.
    fn roll_up(nodes: &[Arc<Node>], extra: Option<&SharedExtra>) -> Vec<Rolled> {
        let mut rolled: Vec<Rolled> = nodes
            .iter()
            .map(|n| {
                let mut r = Rolled {
                    counts: n.counts(),
                    child_total: Some(0),
                    ..Rolled::default()
                };
                n.metrics.accumulate(&mut r.metrics);
                if let Some(sums) = extra.and_then(|e| e.sums.get(n.id)).and_then(Option::as_ref) {
                    r.add_shared(sums, &extra.expect("present").metric_slots);
                }
                r.own_total = extra.and_then(|e| e.totals.get(n.id).copied().flatten()).or(n.own_total());
                r.own_processed = r.processed();
                r.own_explicit = r.counts.explicit();
                r
            })
            .collect();
        // Children always have larger ids than their parents, so one reverse pass suffices.
        for i in (1..nodes.len()).rev() {
            let child = rolled[i];
            let total = Self::total_of(&child);
            let p = &mut rolled[nodes[i].parent.expect("non-root has a parent")];
            p.counts += child.counts;
            p.metrics.merge(&child.metrics);
            p.has_children = true;
            p.child_total = match (p.child_total, total) {
                (Some(a), Some(b)) => Some(a.saturating_add(b).min(MAX_COUNT)),
                _ => None,
            };
        }
        rolled
    }

    /// The node's total: its own when set; else what its children expect plus the items it
    /// counted itself (known once counted), so a node never shows more done than expected.
    fn total_of(r: &Rolled) -> Option<u64> {
        r.own_total.or(if r.has_children { r.child_total.map(|t| (t + r.own_processed).min(MAX_COUNT)) } else { None })
    }

    /// Records the current counts in every running node's rate window. Cheap: no allocation
    /// beyond the roll-up vector, no JSON. Called by the sampler between snapshots.
    pub fn sample(&self, now: f64) {
        let extra = self.sync_shared(now);
        let nodes = self.nodes.read();
        let rolled = Self::roll_up(&nodes, extra.as_ref());
        for (n, r) in nodes.iter().zip(&rolled) {
            if n.state() == NodeState::Running {
                n.window.lock().observe(now, r.processed());
            }
        }
    }

    /// A consistent view of the whole run at `now`; also records a rate observation.
    pub fn snapshot(&self, now: f64) -> Snapshot {
        let extra = self.sync_shared(now);
        let nodes = self.nodes.read().clone();
        let rolled = Self::roll_up(&nodes, extra.as_ref());
        let names = self.metric_names.names();
        let mut built: Vec<Option<NodeSnapshot>> = nodes
            .iter()
            .zip(&rolled)
            .map(|(n, r)| Some(Self::node_snapshot(n, r, now, &names)))
            .collect();
        for i in (1..nodes.len()).rev() {
            let child = built[i].take().expect("built once");
            let parent = nodes[i].parent.expect("non-root has a parent");
            built[parent].as_mut().expect("parent precedes child").children.push(child);
        }
        let mut root = built[0].take().expect("root");
        reverse_children(&mut root);
        Snapshot {
            schema: SCHEMA_VERSION,
            run_id: self.id.clone(),
            name: self.name.clone(),
            now,
            started_at_unix: self.started_at_unix,
            root,
            lanes: self.lane_snapshots(now),
            worker_events_dropped: self.sharing.lock().as_ref().map_or(0, Sharing::events_dropped),
            recent: self.recent.lock().newest_first(),
            failures: self.failures.lock().newest_first(),
            metric_names: names,
        }
    }

    fn node_snapshot(n: &Node, r: &Rolled, now: f64, names: &[String]) -> NodeSnapshot {
        let total = Self::total_of(r);
        let processed = r.processed();
        let state = n.state();
        let mut est = if state == NodeState::Running {
            let mut w = n.window.lock();
            w.observe(now, processed);
            w.estimate(now, processed, total)
        } else {
            Estimate::default()
        };
        let from_history = Self::eta_from_history(n, &mut est, state, processed, total);
        let metrics: BTreeMap<String, serde_json::Value> = r
            .metrics
            .iter()
            .filter_map(|(slot, v)| {
                let value = match v {
                    MetricValue::Int(i) => serde_json::Value::from(i),
                    MetricValue::Float(f) => serde_json::Value::from(f),
                };
                names.get(slot).map(|name| (name.clone(), value))
            })
            .collect();
        let c = r.counts;
        let judged = c.done + c.failed;
        NodeSnapshot {
            id: n.id,
            name: n.name(),
            path: n.path.clone(),
            explicit: r.own_explicit,
            kind: n.kind.as_str().into(),
            unit: n.unit.clone(),
            state: state.as_str().into(),
            total,
            done: c.done,
            failed: c.failed,
            skipped: c.skipped,
            retried: c.retried,
            in_flight: c.in_flight.max(0),
            processed,
            fraction: total.map(|t| if t == 0 { 1.0 } else { (processed as f64 / t as f64).min(1.0) }),
            success_rate: (judged > 0).then(|| c.done as f64 / judged as f64),
            rate: est.rate,
            eta: est.eta,
            eta_low: est.eta_low,
            eta_high: est.eta_high,
            stalled_for: est.stalled,
            eta_from_history: from_history,
            mean_item_seconds: (c.items_timed > 0).then(|| c.item_seconds / c.items_timed as f64),
            elapsed: n.started_at().map(|s| n.ended_at().unwrap_or(now) - s),
            metrics,
            children: Vec::new(),
        }
    }

    /// Until a running node has a pace of its own, its ETA comes from the rate earlier runs of
    /// the same name reached (range: two thirds to one and a half times, as runs differ).
    fn eta_from_history(n: &Node, est: &mut Estimate, state: NodeState, processed: u64, total: Option<u64>) -> bool {
        let (Some(total), Some(prior)) = (total, n.prior_rate()) else { return false };
        if state != NodeState::Running || est.eta.is_some() || est.stalled.is_some() || processed >= total {
            return false;
        }
        let eta = (total - processed) as f64 / prior;
        est.eta = Some(eta);
        est.eta_low = Some(eta / 1.5);
        est.eta_high = Some(eta * 1.5);
        true
    }

    /// Live lanes, and the most recently finished ones up to [`SHOWN_FINISHED_LANES`]; then a
    /// lane per worker process of a shared run.
    fn lane_snapshots(&self, now: f64) -> Vec<LaneSnapshot> {
        let mut lanes = self.thread_lanes(now);
        if let Some(sh) = self.sharing.lock().as_ref() {
            lanes.extend(sh.lanes(now));
        }
        lanes
    }

    fn thread_lanes(&self, now: f64) -> Vec<LaneSnapshot> {
        let lanes = self.lanes.read();
        let mut finished: Vec<f64> =
            lanes.iter().filter(|l| l.state() == LaneState::Finished).map(|l| l.heartbeat()).collect();
        finished.sort_by(|a, b| b.total_cmp(a));
        let cutoff = finished.get(SHOWN_FINISHED_LANES.saturating_sub(1)).copied().unwrap_or(f64::NEG_INFINITY);
        lanes
            .iter()
            .filter(|l| l.state() != LaneState::Finished || l.heartbeat() >= cutoff)
            .map(|l| {
                let item = l.item();
                LaneSnapshot {
                    id: l.id,
                    name: l.name.clone(),
                    state: l.state().as_str().into(),
                    item: (!item.is_empty()).then_some(item),
                    done: l.done.get(),
                    failed: l.failed.get(),
                    heartbeat_age: (now - l.heartbeat()).max(0.0),
                }
            })
            .collect()
    }
}

/// Children were pushed newest first while building; put them back in creation order.
fn reverse_children(n: &mut NodeSnapshot) {
    n.children.reverse();
    n.children.iter_mut().for_each(reverse_children);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunCore {
        RunCore::new("r1", "test", Clock::manual(), 0.0)
    }

    #[test]
    fn counts_roll_up_to_every_ancestor() {
        let r = run();
        let phase = r.add_node(0, NodeKind::Phase, "map", "it", Some(10)).unwrap();
        let step = r.add_node(phase.id, NodeKind::Step, "inner", "it", Some(4)).unwrap();
        phase.done.add(3);
        step.done.add(2);
        step.failed.add(1);
        r.fail(&phase, "item-9", "boom").unwrap();
        let s = r.snapshot(1.0);
        let p = &s.root.children[0];
        assert_eq!((p.done, p.failed, p.processed, p.total), (5, 2, 7, Some(10)));
        assert_eq!(p.children[0].total, Some(4));
        assert_eq!((s.root.done, s.root.failed), (5, 2));
        assert_eq!(s.root.total, Some(10), "root total rolls up from its phase");
        assert_eq!(s.failures[0].error.as_deref(), Some("boom"));
    }

    #[test]
    fn own_items_count_toward_an_implied_total() {
        let r = run();
        let q = r.add_node(0, NodeKind::Phase, "q", "it", None).unwrap();
        r.add_node(q.id, NodeKind::Step, "s", "it", Some(5)).unwrap();
        q.done.add(6);
        let n = &r.snapshot(1.0).root.children[0];
        assert_eq!((n.processed, n.total), (6, Some(11)));
        assert!(n.fraction.unwrap() <= 1.0);
    }

    #[test]
    fn unknown_child_total_makes_parent_total_unknown() {
        let r = run();
        r.add_node(0, NodeKind::Phase, "a", "it", Some(5)).unwrap();
        r.add_node(0, NodeKind::Phase, "b", "it", None).unwrap();
        assert_eq!(r.snapshot(0.0).root.total, None);
    }

    #[test]
    fn metrics_roll_up_and_reject_nan() {
        let r = run();
        let a = r.add_node(0, NodeKind::Phase, "a", "it", None).unwrap();
        let b = r.add_node(a.id, NodeKind::Step, "b", "it", None).unwrap();
        r.metric(&a, "tokens", 10.0, false).unwrap();
        r.metric(&b, "tokens", 5.0, false).unwrap();
        r.metric(&b, "cost", 0.25, true).unwrap();
        assert!(matches!(r.metric(&b, "cost", f64::NAN, true), Err(Error::NotFinite { .. })));
        let s = r.snapshot(0.0);
        assert_eq!(s.root.metrics["tokens"], serde_json::json!(15));
        assert_eq!(s.root.metrics["cost"], serde_json::json!(0.25));
    }

    #[test]
    fn items_track_lanes_durations_and_in_flight() {
        let r = run();
        let p = r.add_node(0, NodeKind::Phase, "p", "it", Some(2)).unwrap();
        let lane = r.add_lane("w0");
        r.item_started(&p, Some(&lane), "a.json").unwrap();
        let s = r.snapshot(0.5);
        assert_eq!(s.lanes[0].item.as_deref(), Some("a.json"));
        assert_eq!(s.root.children[0].in_flight, 1);
        r.clock.set(1.0);
        r.item_finished(&p, Some(&lane), &ItemEnd { name: "a.json", status: ItemStatus::Done, duration: Some(1.0), error: None }).unwrap();
        r.item_started(&p, Some(&lane), "b.json").unwrap();
        r.item_finished(&p, Some(&lane), &ItemEnd { name: "b.json", status: ItemStatus::Failed, duration: Some(3.0), error: Some("bad") }).unwrap();
        let s = r.snapshot(2.0);
        let ph = &s.root.children[0];
        assert_eq!((ph.done, ph.failed, ph.in_flight), (1, 1, 0));
        assert_eq!(ph.mean_item_seconds, Some(2.0));
        assert_eq!(ph.success_rate, Some(0.5));
        assert_eq!((s.lanes[0].done, s.lanes[0].failed), (1, 1));
        assert_eq!(s.lanes[0].state, "idle");
        assert_eq!(s.recent[0].name, "b.json");
        assert_eq!(s.failures.len(), 1);
    }

    #[test]
    fn finished_lanes_are_recycled_and_few_are_shown() {
        let r = run();
        for i in 0..5000 {
            let lane = r.add_lane(&format!("w{i}"));
            r.clock.set(f64::from(i));
            lane.finish(f64::from(i));
        }
        let live = r.add_lane("live");
        assert_eq!(live.id, 0, "the first finished slot is reused");
        assert_eq!(r.lanes.read().len(), 1);
        let s = r.snapshot(6000.0);
        assert_eq!(s.lanes.len(), 1);
        let many: Vec<_> = (0..40).map(|i| r.add_lane(&format!("x{i}"))).collect();
        for (i, lane) in many.iter().enumerate() {
            lane.finish(7000.0 + i as f64);
        }
        let shown = r.snapshot(8000.0).lanes;
        assert_eq!(shown.len(), 1 + SHOWN_FINISHED_LANES);
        assert!(shown.iter().any(|l| l.name == "x39"));
    }

    #[test]
    fn memory_stays_bounded_for_many_items() {
        let r = run();
        let p = r.add_node(0, NodeKind::Phase, "p", "it", None).unwrap();
        for i in 0..10_000 {
            r.fail(&p, &format!("item-{i}"), &"x".repeat(5000)).unwrap();
        }
        let s = r.snapshot(1.0);
        assert_eq!(s.failures.len(), RECENT_FAILURES);
        assert_eq!(s.failures[0].name, "item-9999");
        assert!(s.failures[0].error.as_ref().unwrap().chars().count() <= MAX_ERROR_CHARS + 1);
        assert_eq!(s.root.failed, 10_000);
    }

    #[test]
    fn history_gives_an_eta_until_the_run_has_its_own_pace() {
        let r = run();
        let p = r.add_node(0, NodeKind::Phase, "p", "it", Some(100)).unwrap();
        p.start(0.0, 0);
        p.set_prior_rate(10.0);
        let s = r.snapshot(1.0);
        let n = &s.root.children[0];
        assert_eq!((n.eta, n.eta_from_history), (Some(10.0), true));
        for t in 1..=40 {
            p.done.add(2);
            r.sample(1.0 + f64::from(t) * 0.25);
        }
        let n = r.snapshot(11.0).root.children[0].clone();
        assert!(!n.eta_from_history, "its own pace takes over");
        assert!(n.eta.unwrap() > 0.0);
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let r = run();
        r.add_node(0, NodeKind::Phase, "p", "doc", Some(3)).unwrap();
        r.fail(&r.node(1).unwrap(), "x", "boom").unwrap();
        let s = r.snapshot(2.0);
        let back = Snapshot::from_json(&s.to_json()).unwrap();
        assert_eq!(back.to_json(), s.to_json());
    }

    #[test]
    fn snapshot_serializes_with_schema() {
        let r = run();
        r.add_node(0, NodeKind::Phase, "p", "it", Some(1)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.snapshot(0.0).to_json()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["root"]["children"][0]["name"], "p");
    }
}
