//! A run shared with worker processes: the parent's bookkeeping around the segment.
//!
//! Nodes the parent creates are registered in the segment's node table; nodes workers create
//! there are mirrored into the run's tree. Every sample (a few times a second) sums the slots,
//! moves the workers' queued events into a bounded queue for the Python observers (keeping
//! failures in the run's failure list), and checks that every active worker still runs: one
//! that died has its items in flight counted failed, "worker died".

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::kinds::LaneState;
use super::metrics::MAX_METRICS;
use super::node::{Node, NodeKind, NodeState};
use super::shm::segment::{ACTIVE, DEAD, EXITED};
use super::shm::{process_alive, remove_stale, Segment, SegmentError, SharedSums, SlotView};
use super::snapshot::LaneSnapshot;

/// Most worker events waiting for the Python side; past this they are counted, not kept.
const MAX_QUEUED: usize = 10_000;

/// An event a worker sent, with where it happened.
#[derive(Debug, Clone)]
pub struct WorkerEvent {
    /// Names from the run down to the node.
    pub path: Vec<String>,
    /// The event's fields as JSON (`{"event": "item_failed", "item": ..., ...}`).
    pub json: String,
    pub pid: u32,
}

/// What the roll-up adds for shared nodes, indexed by node id.
#[derive(Debug, Default)]
pub struct SharedExtra {
    pub sums: Vec<Option<SharedSums>>,
    /// The node's own total as the segment has it (workers may have changed it).
    pub totals: Vec<Option<u64>>,
    pub metric_slots: [Option<usize>; MAX_METRICS],
}

#[derive(Debug)]
pub struct Sharing {
    pub seg: Arc<Segment>,
    pub(crate) shm_of: Vec<Option<usize>>,
    pub(crate) core_of: Vec<Option<usize>>,
    metric_of: [Option<usize>; MAX_METRICS],
    /// Per slot: the last activity value seen and when it changed.
    watch: Vec<(u64, f64)>,
    events: VecDeque<WorkerEvent>,
    pub dropped: u64,
    pub stall_after: f64,
    views: Vec<SlotView>,
}

/// The segment file for a run: `milepost-<parent pid>-<run id>` in `dir`.
pub fn segment_path(dir: &Path, run_id: &str) -> PathBuf {
    let safe: String = run_id.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
    dir.join(format!("milepost-{}-{safe}", std::process::id()))
}

impl Sharing {
    pub fn create(dir: &Path, run_id: &str, stall_after: f64) -> Result<Self, SegmentError> {
        remove_stale(dir);
        let seg = Arc::new(Segment::create(&segment_path(dir, run_id), std::process::id())?);
        Ok(Self {
            seg,
            shm_of: Vec::new(),
            core_of: vec![None; super::shm::segment::MAX_NODES],
            metric_of: [None; MAX_METRICS],
            watch: Vec::new(),
            events: VecDeque::new(),
            dropped: 0,
            stall_after,
            views: Vec::new(),
        })
    }

    /// Registers a node of the parent's tree; nodes past the segment's table stay local.
    pub fn register(&mut self, node: &Node) {
        let parent = node.parent.and_then(|p| self.shm_of.get(p).copied().flatten()).unwrap_or(0);
        if let Ok(i) = self.seg.register_node(parent, node.kind.code(), &node.name(), &node.unit, node.own_total(), 0) {
            self.mirrored(i, node);
        }
    }

    pub fn shm_index(&self, core_id: usize) -> Option<usize> {
        self.shm_of.get(core_id).copied().flatten()
    }

    /// The next shared node the parent has not mirrored yet: `(shm index, parent core id,
    /// kind, name, unit, total)`. One at a time, so that a node's parent, created in the same
    /// sample, is already mirrored when the node is.
    pub fn next_unmirrored(&self) -> Option<(usize, usize, NodeKind, String, String, Option<u64>)> {
        (0..self.seg.node_count()).filter(|&i| self.core_of[i].is_none()).find_map(|i| {
            let info = self.seg.node_info(i)?;
            let parent = self.core_of.get(info.parent).copied().flatten().unwrap_or(0);
            let kind = NodeKind::from_code(info.kind);
            Some((i, parent, kind, info.name, info.unit, info.total))
        })
    }

    pub fn mirrored(&mut self, shm: usize, node: &Node) {
        let core_id = node.id;
        node.set_shm_index(shm);
        self.core_of[shm] = Some(core_id);
        if self.shm_of.len() <= core_id {
            self.shm_of.resize(core_id + 1, None);
        }
        self.shm_of[core_id] = Some(shm);
    }

    /// State changes of worker-created nodes: `(core id, open, last state)`.
    pub fn worker_node_states(&self) -> Vec<(usize, bool, Option<NodeState>)> {
        (0..self.seg.node_count())
            .filter_map(|i| {
                let info = self.seg.node_info(i).filter(|n| n.creator == 1)?;
                // Workers write an end state's code (NodeState's) when they close the node.
                let state = Some(NodeState::from_u8(info.state as u8)).filter(|s| s.is_end());
                Some((self.core_of[i]?, info.open > 0, state))
            })
            .collect()
    }

    /// Maps the segment's metric names to the run's metric slots (`metric_slot`), for names
    /// not mapped yet (workers add names as they go).
    pub fn map_metrics(&mut self, metric_slot: impl Fn(&str) -> Option<usize>) {
        for m in 0..MAX_METRICS {
            if self.metric_of[m].is_none() {
                self.metric_of[m] = self.seg.metric_name(m).and_then(|n| metric_slot(&n));
            }
        }
    }

    /// Sums, totals and metric slots for the roll-up of a tree of `nodes` nodes, read now.
    pub fn extra(&self, nodes: usize) -> SharedExtra {
        let slots = self.seg.used_slots();
        let mut extra = SharedExtra { metric_slots: self.metric_of, ..SharedExtra::default() };
        extra.sums.resize(nodes, None);
        extra.totals.resize(nodes, None);
        for id in 0..nodes {
            if let Some(shm) = self.shm_index(id) {
                extra.sums[id] = Some(self.seg.sum_node(shm, &slots));
                extra.totals[id] = self.seg.node_info(shm).and_then(|i| i.total);
            }
        }
        extra
    }

    /// Watches the slots: activity, deaths, queued events. `path_of` names a node's path,
    /// `on_failure` keeps a failure `(core id, item, error, lane)` in the run's list.
    pub fn poll(
        &mut self, now: f64, path_of: impl Fn(usize) -> Vec<String>,
        mut on_failure: impl FnMut(usize, &str, &str, &str),
    ) {
        let slots = self.seg.used_slots();
        self.views = slots.iter().map(|&s| self.seg.slot_view(s)).collect();
        for view in &mut self.views {
            let s = view.slot;
            if self.watch.len() <= s {
                self.watch.resize(s + 1, (u64::MAX, now));
            }
            if self.watch[s].0 != view.activity {
                self.watch[s] = (view.activity, now);
            }
            let lane = format!("pid {}", view.pid);
            if view.state == ACTIVE && !process_alive(view.pid) {
                let item = view.item.clone().unwrap_or_else(|| "(item unknown)".to_owned());
                let error = format!("worker died (pid {})", view.pid);
                for (shm, _) in self.seg.account_death(s) {
                    let core = self.core_of[shm].unwrap_or(0);
                    on_failure(core, &item, &error, &lane);
                    let json = serde_json::json!({"event": "item_failed", "item": item, "error": error});
                    push(
                        &mut self.events,
                        &mut self.dropped,
                        WorkerEvent { path: path_of(core), json: json.to_string(), pid: view.pid },
                    );
                }
                view.state = DEAD;
            }
            for (_, shm, text) in self.seg.drain_events(s) {
                let core = self.core_of.get(shm).copied().flatten().unwrap_or(0);
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                    self.dropped += 1; // a record that does not parse is lost: counted, as a drop
                    continue;
                };
                if v["event"] == "item_failed" {
                    let item = v["item"].as_str().unwrap_or("");
                    on_failure(core, item, v["error"].as_str().unwrap_or(""), &lane);
                }
                push(
                    &mut self.events,
                    &mut self.dropped,
                    WorkerEvent { path: path_of(core), json: text, pid: view.pid },
                );
            }
        }
    }

    /// Events the workers dropped because their ring was full, plus those dropped here.
    pub fn events_dropped(&self) -> u64 {
        self.dropped + self.views.iter().map(|v| v.dropped).sum::<u64>()
    }

    pub fn take_events(&mut self) -> Vec<WorkerEvent> {
        self.events.drain(..).collect()
    }

    /// A lane per worker process.
    pub fn lanes(&self, now: f64) -> Vec<LaneSnapshot> {
        self.views
            .iter()
            .map(|v| {
                let since = self.watch.get(v.slot).map_or(now, |w| w.1);
                let quiet = now - since;
                let state = match v.state {
                    DEAD => LaneState::Died,
                    EXITED => LaneState::Finished,
                    _ if v.item.is_some() && quiet > self.stall_after => LaneState::Stalled,
                    _ if v.item.is_some() => LaneState::Busy,
                    _ => LaneState::Idle,
                };
                LaneSnapshot {
                    id: 100_000 + v.slot,
                    name: format!("pid {}", v.pid),
                    state: state.as_str().into(),
                    item: v.item.clone().filter(|_| v.state == ACTIVE),
                    // A worker process's items stream nowhere (yet): the segment has no room.
                    tail: None,
                    done: v.done,
                    failed: v.failed,
                    heartbeat_age: quiet.max(0.0),
                    pid: Some(v.pid),
                    cpu_percent: None,
                    rss_bytes: None,
                }
            })
            .collect()
    }
}

fn push(queue: &mut VecDeque<WorkerEvent>, dropped: &mut u64, ev: WorkerEvent) {
    if queue.len() >= MAX_QUEUED {
        *dropped += 1;
    } else {
        queue.push_back(ev);
    }
}

#[cfg(test)]
#[path = "sharing_tests.rs"]
mod tests;
