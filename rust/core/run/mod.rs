//! The run: its node tree, lanes, metric names, recent items and failures, and the worker
//! processes it shares itself with. Counting into a node is in `counting` (reached through
//! the counting handle, `core::handle`); sampling and the snapshot are in `build`.

mod build;
mod counting;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::clock::Clock;
use super::error::Error;
use super::handle::Handle;
use super::lanes::{Lane, LaneState};
use super::metrics::MetricRegistry;
use super::node::{path_part, Node, NodeKind, NodeState};
use super::records::{ItemRecord, Ring};
use super::resources::ResourceBoard;
use super::sharing::{Sharing, WorkerEvent};
use super::shm::Segment;
use super::text::clip;

pub use super::kinds::ItemStatus;
pub use super::limits::{MAX_ERROR_CHARS, MAX_NAME_CHARS, MAX_NODES};
/// Newest finished items a snapshot lists (`recent`).
pub const RECENT_ITEMS: usize = 32;
/// Newest failures a snapshot lists (`failures`).
pub const RECENT_FAILURES: usize = 64;
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
    segment: OnceLock<Arc<Segment>>,
    /// The fork generation this run was created in: a different one means this copy is in a
    /// forked child, where counts go to the child's slot of the segment.
    fork_generation: u64,
    /// Cancel was asked for (dashboard, `run.cancel()`): loops stop handing out items.
    cancelled: AtomicBool,
    /// The run has ended: its counts are final, and later updates are refused.
    finished: AtomicBool,
    /// Lifecycle events the observers' queues dropped (reported by the Python dispatcher).
    events_dropped: AtomicU64,
    /// How many nodes have each history path so far (a later sibling of the same name gets
    /// `#2`, `#3`...).
    paths: Mutex<HashMap<String, usize>>,
    /// The latest sample of the run's processes and disks (`core::resources`), when sampled.
    pub resources: ResourceBoard,
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
            segment: OnceLock::new(),
            fork_generation: super::shm::segment::fork_generation(),
            cancelled: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            events_dropped: AtomicU64::new(0),
            paths: Mutex::new(HashMap::new()),
            resources: ResourceBoard::default(),
        }
    }

    /// As [`Self::new`], for names from users: an empty name is refused.
    pub fn try_new(id: &str, name: &str, clock: Clock, started_at_unix: f64) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::EmptyName { what: "run name" });
        }
        Ok(Self::new(id, name, clock, started_at_unix))
    }

    /// The counting handle of the run's own node.
    pub fn root_handle(self: &Arc<Self>) -> Handle {
        Handle::local(Arc::clone(self), self.root())
    }

    /// Adds a phase or step under `parent` (a handle on a node of this run): its handle.
    pub fn add_child(
        self: &Arc<Self>, parent: &Handle, kind: NodeKind, name: &str, unit: &str, total: Option<u64>,
    ) -> Result<Handle, Error> {
        let parent = parent.node_of(self).ok_or(Error::ForeignNode)?;
        let node = self.add_node(parent, kind, name, unit, total)?;
        Ok(Handle::local(Arc::clone(self), node))
    }

    /// Ends the run's counting: from now on every update is refused with
    /// [`Error::RunEnded`] (in worker processes too), so what the final snapshot shows is all
    /// there ever was.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        if let Some(seg) = self.segment.get() {
            seg.set_ended();
        }
    }

    /// An error unless the run is still going (`call` names the refused call).
    #[inline]
    pub fn check_open(&self, call: impl Into<std::borrow::Cow<'static, str>>) -> Result<(), Error> {
        let ended = self.finished.load(Ordering::Relaxed)
            || (self.in_forked_child() && self.segment.get().is_some_and(|s| s.is_ended()));
        if ended {
            return Err(Error::RunEnded { run: self.name.clone(), call: call.into() });
        }
        Ok(())
    }

    /// In a child forked from this run's process after the run was shared: the segment and
    /// `node`'s index in it, where the child's counts go (its copy of the tree is never read).
    #[inline]
    pub(crate) fn forked_slot(&self, node: &Node) -> Option<(&Segment, usize)> {
        if !self.in_forked_child() {
            return None;
        }
        Some((self.segment.get()?, node.shm_index()?))
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
        if *n == 1 {
            base
        } else {
            format!("{base}#{n}")
        }
    }

    /// Asks the job to stop taking new items (workers too, through the segment).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(seg) = self.segment.get() {
            seg.set_cancelled();
        }
    }

    /// Whether the run has ended (its counts are final).
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// Whether cancel was asked of this process's run (what `is_cancelled` says outside a
    /// forked child, with one load).
    #[inline]
    pub fn cancelled_here(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Whether cancel was asked for: here, or (in a worker's copy) through the segment.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || (self.in_forked_child() && self.segment.get().is_some_and(|s| s.is_cancelled()))
    }

    /// Whether pool `pool` was told to stop handing out items (through the segment: false
    /// for a run not shared).
    pub fn pool_stopped(&self, pool: usize) -> bool {
        self.segment.get().is_some_and(|s| s.pool_stopped(pool))
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
                seg.state_word(slot).store(super::shm::segment::STOPPING, Ordering::Release);
            }
        }
    }

    /// Whether the worker processes `pids` have all left the run: each marks its slot exited on
    /// its way out (`Segment::detach`, among its interpreter's first exit handlers), before the
    /// rest of its teardown and the kernel's; a slot found dead, or stopped and accounted, is
    /// left too. None when one of them holds no slot: it never counted, and may be a process
    /// still starting, which attaches to the segment yet (a pool then waits for the processes).
    pub fn workers_left(&self, pids: &[u32]) -> Option<bool> {
        use super::shm::segment::{ACTIVE, STOPPING};
        let seg = self.segment.get()?;
        let held: Vec<(u64, u64)> = seg
            .used_slots()
            .into_iter()
            .map(|slot| (seg.pid_word(slot).load(Ordering::Acquire), seg.state_word(slot).load(Ordering::Acquire)))
            .collect();
        let mut left = true;
        for &pid in pids {
            let mut slots = held.iter().filter(|(p, _)| *p == u64::from(pid)).peekable();
            slots.peek()?;
            left &= slots.all(|(_, state)| !matches!(*state, ACTIVE | STOPPING));
        }
        Some(left)
    }

    /// Worker processes the parent stopped, now gone: their items in flight leave flight
    /// uncounted, as an item interrupted by Ctrl-C does (not failed, as a death's are).
    pub fn stopped_workers(&self) {
        let Some(seg) = self.segment.get() else { return };
        for slot in seg.used_slots() {
            if seg.state_word(slot).load(Ordering::Acquire) == super::shm::segment::STOPPING {
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
    pub fn enable_sharing(&self, dir: &Path, stall_after: f64) -> Result<PathBuf, Error> {
        let mut sharing = self.sharing.lock();
        if let Some(sh) = sharing.as_ref() {
            return Ok(sh.seg.path().to_owned());
        }
        let mut sh = Sharing::create(dir, &self.id, stall_after).map_err(|e| Error::Sharing(e.to_string()))?;
        for node in self.nodes.read().iter() {
            sh.register(node);
        }
        // The parent's metric names take their places in the shared table first: a worker
        // that would go past the limit gets the error instead of losing its metric.
        for name in self.metric_names.names() {
            let _ = sh.seg.metric_index(&name);
        }
        let path = sh.seg.path().to_owned();
        if self.cancelled.load(Ordering::Relaxed) {
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

    /// Events sent by workers since the last sample took them (item failures, log lines).
    pub fn take_worker_events(&self) -> Vec<WorkerEvent> {
        self.sharing.lock().as_mut().map(Sharing::take_events).unwrap_or_default()
    }

    /// Lifecycle events lost to a full observer queue so far, `total` of them: the
    /// snapshot's `events_dropped` (the queues are the Python dispatcher's, the count is the
    /// run's). It only grows: threads reporting at once, each with the total it read, leave
    /// the largest.
    pub fn note_events_dropped(&self, total: u64) {
        self.events_dropped.fetch_max(total, Ordering::Relaxed);
    }

    pub fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    pub fn root(&self) -> Arc<Node> {
        Arc::clone(&self.nodes.read()[0])
    }

    pub fn node(&self, id: usize) -> Result<Arc<Node>, Error> {
        self.nodes.read().get(id).cloned().ok_or(Error::UnknownNode { id })
    }

    /// Adds a phase or step under `parent`.
    pub fn add_node(
        &self, parent: usize, kind: NodeKind, name: &str, unit: &str, total: Option<u64>,
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
}
