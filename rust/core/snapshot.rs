//! One consistent view of a run: what every renderer, observer and stream reads.
//! Serialized with serde to the JSON documented as schema version [`SCHEMA_VERSION`]; the
//! published JSON Schema is generated from these types (`core::schema`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::{LaneState, NodeKind, NodeState};
use super::limits::MAX_COUNT;
use super::records::ItemRecord;
use super::resources::Resources;
use super::run::{RECENT_FAILURES, RECENT_ITEMS};

/// Bumped whenever a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "milepost snapshot, schema version 1",
    description = "run.snapshot().data, the .progress.json file, and the 'snapshot' of a JSON-lines record.",
    extend("$id" = "https://milepost.invalid/schema/snapshot-v1.json")
)]
pub struct Snapshot {
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema: u32,
    pub run_id: String,
    pub name: String,
    /// Seconds since the run started, on the run's clock.
    pub now: f64,
    /// Unix time at which the run started.
    pub started_at_unix: f64,
    pub root: NodeSnapshot,
    pub lanes: Vec<LaneSnapshot>,
    /// The newest finished items, newest first.
    #[schemars(length(max = RECENT_ITEMS))]
    pub recent: Vec<ItemRecord>,
    /// The newest failures, newest first.
    #[schemars(length(max = RECENT_FAILURES))]
    pub failures: Vec<ItemRecord>,
    pub metric_names: Vec<String>,
    /// Events from worker processes lost to a full queue (counted, never silently).
    #[serde(default)]
    pub worker_events_dropped: u64,
    /// Lifecycle events lost to the run's full observer queue.
    #[serde(default)]
    pub events_dropped: u64,
    /// CPU, memory, I/O and open files of the run's processes and free space where it writes,
    /// as of the latest sample; null when the run samples none (`Run(resources=False)`), or
    /// before the first sample.
    #[serde(default)]
    pub resources: Option<Resources>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "node")]
pub struct NodeSnapshot {
    pub id: usize,
    pub name: String,
    #[schemars(description = "The node's key in the history: names below the run joined by '/', with '%', '/' \
        and '#' escaped and later siblings of the same name numbered ('#2'); '' for the run itself.")]
    #[serde(default)]
    pub path: String,
    /// The node's own done and skipped counted without an item context, at the moment of the
    /// snapshot: what a resumed run takes over besides the items the history has rows for.
    #[serde(skip)]
    pub explicit: (u64, u64),
    #[schemars(description = "The run itself, a phase, or a step inside a phase.")]
    pub kind: NodeKind,
    pub unit: String,
    #[schemars(description = "Counts and rates are shown with SI prefixes in steps of this (tqdm's unit_scale \
        and unit_divisor): 1000 or 1024; null for plain counts.")]
    #[serde(default)]
    pub unit_divisor: Option<u32>,
    #[schemars(description = "False for a loop made with leave=False (tqdm's) inside a run: live displays \
        stop drawing it once it ended.")]
    #[serde(default = "drawn_when_ended")]
    pub leave: bool,
    #[schemars(description = "Pending until it starts, running, then how it ended.")]
    pub state: NodeState,
    /// Known total, rolled up from children when not set on the node itself.
    #[schemars(range(max = MAX_COUNT))]
    pub total: Option<u64>,
    #[schemars(range(max = MAX_COUNT))]
    pub done: u64,
    #[schemars(range(max = MAX_COUNT))]
    pub failed: u64,
    #[schemars(range(max = MAX_COUNT))]
    pub skipped: u64,
    #[schemars(range(max = MAX_COUNT))]
    pub retried: u64,
    #[schemars(range(min = 0))]
    pub in_flight: i64,
    /// done + failed + skipped.
    #[schemars(range(max = MAX_COUNT))]
    pub processed: u64,
    /// processed / total, in 0..=1.
    #[schemars(range(min = 0, max = 1))]
    pub fraction: Option<f64>,
    /// done / (done + failed).
    #[schemars(range(min = 0, max = 1))]
    pub success_rate: Option<f64>,
    pub rate: Option<f64>,
    pub eta: Option<f64>,
    pub eta_low: Option<f64>,
    pub eta_high: Option<f64>,
    /// Seconds since the last item, when that is long enough to be a stall.
    #[serde(default)]
    pub stalled_for: Option<f64>,
    /// The ETA comes from earlier runs of the same name (this run has no pace of its own yet).
    #[serde(default)]
    pub eta_from_history: bool,
    pub mean_item_seconds: Option<f64>,
    pub elapsed: Option<f64>,
    /// Sums by metric name, rolled up from children; integers while only integers were added.
    #[schemars(with = "BTreeMap<String, f64>")]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The sum of the money metrics (see `metrics::is_money`), null when there are none.
    #[serde(default)]
    pub cost: Option<f64>,
    /// The mean cost of an item so far: over the items that ended in the run's process (one
    /// that recorded no cost counts as 0), else cost / processed; null without a cost or an item.
    #[serde(default)]
    pub cost_per_item: Option<f64>,
    /// The cost the node is heading for once all its items are processed, with a range of
    /// about 90%; null without a cost or a total.
    #[serde(default)]
    pub projected_cost: Option<ProjectedCost>,
    /// The end of what an item of this node without a lane streams (`item.stream`; items in
    /// a lane stream to their lane), sanitized, newlines shown as '↵'; null when none does.
    #[serde(default)]
    pub tail: Option<String>,
    /// The item whose output `tail` is.
    #[serde(default)]
    pub tail_item: Option<String>,
    #[schemars(description = "The pass a loop entered again is on (the inner loop of a nested pair, tqdm's \
        reset): counts and total are the node's over every pass; this is what its displays show. \
        Null until a second pass begins.")]
    #[serde(default)]
    pub current_pass: Option<PassSnapshot>,
    pub children: Vec<NodeSnapshot>,
}

fn drawn_when_ended() -> bool {
    true
}

/// The current pass of a loop entered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "pass")]
pub struct PassSnapshot {
    /// 2 for the second pass, and so on.
    pub number: u32,
    /// Items processed (done, failed or skipped) in this pass.
    pub processed: u64,
    /// Items in this pass, when known.
    pub total: Option<u64>,
}

/// The projected cost at completion and its range (about 90%), as the README explains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "projected_cost")]
pub struct ProjectedCost {
    /// What is spent plus the items left at the mean cost per item (a node whose total is its
    /// children's: what it spent itself plus their projections).
    pub value: f64,
    /// Null when there is no range: the items' own costs are not known (items counted by
    /// worker processes), or one item is all there is to go on.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "lane")]
pub struct LaneSnapshot {
    pub id: usize,
    pub name: String,
    // One of `LaneState`'s names, as text: layouts compare it as they show it.
    #[schemars(
        with = "LaneState",
        description = "A thread lane is idle, busy or finished; a worker \
        process's lane is also stalled (no sign of life for a while) or died."
    )]
    pub state: Cow<'static, str>,
    pub item: Option<String>,
    /// The end of what the lane's current item streams (`item.stream`), at most 400
    /// characters, sanitized, newlines shown as '↵'; null when it streams nothing.
    #[serde(default)]
    pub tail: Option<String>,
    pub done: u64,
    pub failed: u64,
    /// Seconds since the lane last reported.
    #[schemars(range(min = 0))]
    pub heartbeat_age: f64,
    /// The worker process of a process's lane; null for a thread's.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The lane's process's CPU use since the previous resource sample, in percent of one
    /// core; null for a thread's lane, a process that exited, or before two samples.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// The lane's process's resident memory in bytes; null as `cpu_percent` is (one sample is enough).
    #[serde(default)]
    pub rss_bytes: Option<u64>,
}

/// What the history keeps of a snapshot: its tree, its lanes and its resources, as their JSON
/// in the snapshot (`Snapshot::kept_json`).
#[derive(Serialize)]
struct Kept<'a> {
    root: &'a NodeSnapshot,
    lanes: &'a [LaneSnapshot],
    resources: Option<&'a Resources>,
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("snapshot serializes")
    }

    /// `{"root": ..., "lanes": ..., "resources": ...}` as in [`Self::to_json`], without the
    /// recent items and failures: the history reads a snapshot every second and at every
    /// boundary, and decoding the recent list's numbers was most of what that read cost.
    pub fn kept_json(&self) -> String {
        let kept = Kept { root: &self.root, lanes: &self.lanes, resources: self.resources.as_ref() };
        serde_json::to_string(&kept).expect("snapshot serializes")
    }

    /// Reads a snapshot back from its JSON (a saved `.progress.json` or JSON-lines stream).
    pub fn from_json(text: &str) -> Result<Self, super::error::Error> {
        serde_json::from_str(text).map_err(|e| super::error::Error::NotASnapshot(e.to_string()))
    }

    /// `(path, kind, done, skipped)` for the run and every phase and step: the node's own
    /// done and skipped counted without an item context, which the history keeps so that a
    /// resumed run can take them over (the items with rows it takes from their rows).
    pub fn explicit_counts(&self) -> Vec<(String, &'static str, u64, u64)> {
        self.walk().into_iter().map(|(_, n)| (n.path.clone(), n.kind.as_str(), n.explicit.0, n.explicit.1)).collect()
    }

    /// Depth-first walk of the tree with each node's depth (the run is depth 0).
    pub fn walk(&self) -> Vec<(usize, &NodeSnapshot)> {
        fn go<'a>(n: &'a NodeSnapshot, d: usize, out: &mut Vec<(usize, &'a NodeSnapshot)>) {
            out.push((d, n));
            for c in &n.children {
                go(c, d + 1, out);
            }
        }
        let mut out = Vec::new();
        go(&self.root, 0, &mut out);
        out
    }
}
