//! Sampling and the snapshot, kept apart: [`RunCore::sample`] is the one step that changes
//! anything (worker-created nodes mirrored, workers' events taken and their deaths
//! accounted, rate windows observed); [`RunCore::snapshot`] only reads, so a display or an
//! observer asking for one never changes what the next one sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{RunCore, MAX_NODES, SHOWN_FINISHED_LANES};
use crate::core::cost::{from_items, per_item, ChildHeadings, CostSums, Heading};
use crate::core::counter::Counts;
use crate::core::eta::Estimate;
use crate::core::lanes::LaneState;
use crate::core::limits::MAX_COUNT;
use crate::core::metrics::{money_slots, MetricSums, MetricValue};
use crate::core::node::{Node, NodeState};
use crate::core::sharing::{SharedExtra, Sharing};
use crate::core::shm::SharedSums;
use crate::core::snapshot::{LaneSnapshot, NodeSnapshot, PassSnapshot, Snapshot, SCHEMA_VERSION};

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
    /// Per-item costs of the items that ended in this process (see `core::cost`).
    costs: CostSums,
    /// The money the node spent itself, and with its descendants.
    own_cost: Option<f64>,
    cost: Option<f64>,
    /// What its children are heading for, and where its own cost is heading.
    child_headings: ChildHeadings,
    heading: Option<Heading>,
}

impl Rolled {
    fn processed(&self) -> u64 {
        self.counts.processed()
    }

    fn add_shared(&mut self, s: &SharedSums, metric_slots: &[Option<usize>]) {
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
    /// Takes in what happened since the last sample: worker-created nodes, their states,
    /// events and deaths; then records the current counts in every running node's rate window.
    /// Cheap (no JSON); the ticker thread calls it a few times a second, and a snapshot taken
    /// for display is preceded by one.
    pub fn sample(&self, now: f64) {
        self.sync_shared(now);
        let extra = self.shared_extra();
        let nodes = self.nodes.read();
        let rolled = roll_up(&nodes, extra.as_ref(), 0);
        for (n, r) in nodes.iter().zip(&rolled) {
            if n.state() == NodeState::Running {
                n.window.lock().observe(now, r.processed());
            }
        }
    }

    /// A consistent view of the whole run at `now`, as of the last [`Self::sample`] for what
    /// only sampling takes in (rate windows, workers' nodes, events and deaths); counts are
    /// read now, the workers' included. Changes nothing.
    pub fn snapshot(&self, now: f64) -> Snapshot {
        let extra = self.shared_extra();
        let nodes = self.nodes.read().clone();
        let names = self.metric_names.names();
        let rolled = roll_up(&nodes, extra.as_ref(), money_slots(&names));
        let mut built: Vec<Option<NodeSnapshot>> =
            nodes.iter().zip(&rolled).map(|(n, r)| Some(node_snapshot(n, r, now, &names))).collect();
        for i in (1..nodes.len()).rev() {
            let child = built[i].take().expect("built once");
            let parent = nodes[i].parent.expect("non-root has a parent");
            built[parent].as_mut().expect("parent precedes child").children.push(child);
        }
        let mut root = built[0].take().expect("root");
        reverse_children(&mut root);
        let sharing = self.sharing.lock();
        let mut lanes: Vec<LaneSnapshot> =
            self.thread_lanes(now).into_iter().chain(sharing.iter().flat_map(|sh| sh.lanes(now))).collect();
        self.add_process_figures(&mut lanes);
        Snapshot {
            schema: SCHEMA_VERSION,
            run_id: self.id.clone(),
            name: self.name.clone(),
            now,
            started_at_unix: self.started_at_unix,
            root,
            lanes,
            worker_events_dropped: sharing.as_ref().map_or(0, Sharing::events_dropped),
            events_dropped: self.events_dropped(),
            recent: self.recent.lock().newest_first(),
            failures: self.failures.lock().newest_first(),
            metric_names: names,
            resources: self.resources.latest(),
        }
    }

    /// Each worker process's lane gets its process's CPU and memory from the latest resource
    /// sample (a lane whose process ended shows none: it left the tree).
    fn add_process_figures(&self, lanes: &mut [LaneSnapshot]) {
        let live = |l: &LaneSnapshot| !matches!(&*l.state, "died" | "finished");
        let pids: Vec<u32> = lanes.iter().filter(|l| live(l)).filter_map(|l| l.pid).collect();
        if pids.is_empty() {
            return;
        }
        let figures = self.resources.processes(&pids);
        let mut figures = pids.iter().zip(figures);
        for lane in lanes.iter_mut().filter(|l| live(l) && l.pid.is_some()) {
            if let Some((_, Some(f))) = figures.next() {
                lane.cpu_percent = f.cpu_percent;
                lane.rss_bytes = f.rss_bytes;
            }
        }
    }

    /// Mirrors worker-created nodes and their states, and watches the worker slots (activity,
    /// deaths, queued events).
    fn sync_shared(&self, now: f64) {
        let mut guard = self.sharing.lock();
        let Some(sh) = guard.as_mut() else { return };
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
        sh.map_metrics(|name| self.metric_names.slot(name).ok());
    }

    /// What the workers add to the roll-up: their sums and totals, read now.
    fn shared_extra(&self) -> Option<SharedExtra> {
        let count = self.nodes.read().len();
        self.sharing.lock().as_ref().map(|sh| sh.extra(count))
    }

    /// Live lanes, and the most recently finished ones up to [`SHOWN_FINISHED_LANES`] (a
    /// shared run adds a lane per worker process).
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
                let (item, tail) = l.now_showing();
                LaneSnapshot {
                    id: l.id,
                    name: l.name.clone(),
                    state: l.state().as_str().into(),
                    item: (!item.is_empty()).then_some(item),
                    tail,
                    done: l.done.get(),
                    failed: l.failed.get(),
                    heartbeat_age: (now - l.heartbeat()).max(0.0),
                    pid: None,
                    cpu_percent: None,
                    rss_bytes: None,
                }
            })
            .collect()
    }
}

/// Counts of every node including its descendants (and, for a shared run, the workers'
/// counts), indexed by node id, with where each node's cost is heading (`money`: the money
/// metrics' slots, see `metrics::money_slots`).
fn roll_up(nodes: &[Arc<Node>], extra: Option<&SharedExtra>, money: u32) -> Vec<Rolled> {
    let mut rolled: Vec<Rolled> = nodes
        .iter()
        .map(|n| {
            let mut r = Rolled { counts: n.counts(), child_total: Some(0), costs: n.cost_sums(), ..Rolled::default() };
            n.metrics.accumulate(&mut r.metrics);
            if let Some(extra) = extra {
                if let Some(sums) = extra.sums.get(n.id).and_then(Option::as_ref) {
                    r.add_shared(sums, &extra.metric_slots);
                }
            }
            r.own_total = extra.and_then(|e| e.totals.get(n.id).copied().flatten()).or(n.own_total());
            r.own_processed = r.processed();
            r.own_explicit = r.counts.explicit();
            r.own_cost = r.metrics.money(money);
            r
        })
        .collect();
    // Children always have larger ids than their parents, so one reverse pass suffices: a
    // node is complete when its turn comes.
    for i in (0..nodes.len()).rev() {
        let child = &mut rolled[i];
        child.cost = child.metrics.money(money);
        child.heading = heading_of(child);
        let Some(parent) = nodes[i].parent else { break };
        let child = rolled[i];
        let total = total_of(&child);
        let p = &mut rolled[parent];
        p.counts += child.counts;
        p.metrics.merge(&child.metrics);
        p.costs += child.costs;
        p.child_headings.add(child.cost, child.heading);
        p.has_children = true;
        p.child_total = match (p.child_total, total) {
            (Some(a), Some(b)) => Some(a.saturating_add(b).min(MAX_COUNT)),
            _ => None,
        };
    }
    rolled
}

/// Where a node's cost is heading (see `core::cost`): from its items when it counts them itself
/// or its own total covers its children, else its own spend plus its children's headings.
fn heading_of(r: &Rolled) -> Option<Heading> {
    if r.has_children && r.own_total.is_none() {
        total_of(r)?; // a child's total is unknown: so is where the node ends
        r.child_headings.heading(r.cost, r.own_cost)
    } else {
        from_items(r.cost, r.processed(), total_of(r), &r.costs)
    }
}

/// The node's total: its own when set; else what its children expect plus the items it
/// counted itself (known once counted), so a node never shows more done than expected.
fn total_of(r: &Rolled) -> Option<u64> {
    r.own_total.or(if r.has_children { r.child_total.map(|t| (t + r.own_processed).min(MAX_COUNT)) } else { None })
}

fn node_snapshot(n: &Node, r: &Rolled, now: f64, names: &[String]) -> NodeSnapshot {
    let total = total_of(r);
    let processed = r.processed();
    let state = n.state();
    let mut est =
        if state == NodeState::Running { n.window.lock().estimate(now, processed, total) } else { Estimate::default() };
    let from_history = eta_from_history(n, &mut est, state, processed, total);
    let mut metrics = BTreeMap::new();
    for (slot, v) in r.metrics.iter() {
        let Some(name) = names.get(slot) else { continue };
        let value = match v {
            MetricValue::Int(i) => serde_json::Value::from(i),
            MetricValue::Float(f) => serde_json::Value::from(f),
        };
        metrics.insert(name.clone(), value);
    }
    let c = r.counts;
    let judged = c.done + c.failed;
    let (tail_item, tail) = n.tail().unzip();
    NodeSnapshot {
        id: n.id,
        name: n.name(),
        path: n.path.clone(),
        explicit: r.own_explicit,
        kind: n.kind,
        unit: n.unit.clone(),
        unit_divisor: n.unit_divisor(),
        leave: n.leave(),
        state,
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
        cost: r.cost,
        cost_per_item: per_item(r.cost, processed, &r.costs),
        projected_cost: r.heading.map(|h| h.projected()),
        tail,
        tail_item,
        current_pass: match n.pass_figures() {
            (number, processed, total) if number > 1 => Some(PassSnapshot { number, processed, total }),
            _ => None,
        },
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

/// Children were pushed newest first while building; put them back in creation order.
fn reverse_children(n: &mut NodeSnapshot) {
    n.children.reverse();
    n.children.iter_mut().for_each(reverse_children);
}
