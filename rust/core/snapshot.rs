//! One consistent view of a run: what every renderer, observer and stream reads.
//! Serialized with serde to the JSON documented as schema version [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::records::ItemRecord;

/// Bumped whenever a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema: u32,
    pub run_id: String,
    pub name: String,
    /// Seconds since the run started, on the run's clock.
    pub now: f64,
    /// Unix time at which the run started.
    pub started_at_unix: f64,
    pub root: NodeSnapshot,
    pub lanes: Vec<LaneSnapshot>,
    pub recent: Vec<ItemRecord>,
    pub failures: Vec<ItemRecord>,
    pub metric_names: Vec<String>,
    /// Events from worker processes lost to a full queue (counted, never silently).
    #[serde(default)]
    pub worker_events_dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub id: usize,
    pub name: String,
    /// The node's key in the history: names from below the run, `/`-separated, with `%`,
    /// `/` and `#` in names escaped and `#2`... for a later sibling of the same name.
    #[serde(default)]
    pub path: String,
    /// The node's own done and skipped counted without an item context, at the moment of the
    /// snapshot: what a resumed run takes over besides the items the history has rows for.
    #[serde(skip)]
    pub explicit: (u64, u64),
    pub kind: Cow<'static, str>,
    pub unit: String,
    pub state: Cow<'static, str>,
    /// Known total, rolled up from children when not set on the node itself.
    pub total: Option<u64>,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub retried: u64,
    pub in_flight: i64,
    /// done + failed + skipped.
    pub processed: u64,
    /// processed / total, in 0..=1.
    pub fraction: Option<f64>,
    /// done / (done + failed).
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
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub children: Vec<NodeSnapshot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaneSnapshot {
    pub id: usize,
    pub name: String,
    pub state: Cow<'static, str>,
    pub item: Option<String>,
    pub done: u64,
    pub failed: u64,
    /// Seconds since the lane last reported.
    pub heartbeat_age: f64,
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("snapshot serializes")
    }

    /// Reads a snapshot back from its JSON (a saved `.progress.json` or JSON-lines stream).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
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
