use super::*;
use crate::core::clock::Clock;
use crate::core::shm::Segment;
use crate::core::snapshot::{NodeSnapshot, Snapshot};

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
fn metrics_roll_up_reject_nan_and_sum_money_as_cost() {
    let run = Arc::new(run());
    let phase = run.add_child(&run.root_handle(), NodeKind::Phase, "a", "it", None).unwrap();
    let step = run.add_child(&phase, NodeKind::Step, "b", "it", None).unwrap();
    phase.metric("tokens", 10.0, false).unwrap();
    step.metric("tokens", 5.0, false).unwrap();
    step.metric("cost", 0.25, true).unwrap();
    step.metric("llm_usd", 2.0, false).unwrap();
    assert!(matches!(step.metric("cost", f64::NAN, true), Err(Error::NotFinite { .. })));
    let s = run.snapshot(0.0);
    assert_eq!(s.root.metrics["tokens"], serde_json::json!(15));
    assert_eq!(s.root.metrics["cost"], serde_json::json!(0.25));
    assert_eq!(s.root.cost, Some(2.25), "every money metric, rolled up");
    let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(v["root"]["children"][0]["cost"], serde_json::json!(2.25));
    run.add_node(0, NodeKind::Phase, "free", "it", None).unwrap();
    assert_eq!(run.snapshot(0.0).root.children[1].cost, None, "no money metric: no cost");
}

#[test]
fn a_snapshot_changes_nothing_and_sampling_feeds_the_rates() {
    let r = run();
    let p = r.add_node(0, NodeKind::Phase, "p", "it", Some(100)).unwrap();
    p.start(0.0, 0);
    for t in 1..=10 {
        p.done.add(5);
        r.sample(f64::from(t));
    }
    p.done.add(5);
    let first = r.snapshot(10.5).to_json();
    assert_eq!(r.snapshot(10.5).to_json(), first, "reading twice reads the same");
    assert_eq!(p.window.lock().len(), 11, "only sampling observes");
    assert!(r.snapshot(10.5).root.children[0].rate.is_some());
    r.note_events_dropped(3);
    r.note_events_dropped(2); // a thread reporting an older total never lowers it
    let v: serde_json::Value = serde_json::from_str(&r.snapshot(11.0).to_json()).unwrap();
    assert_eq!(v["events_dropped"], 3);
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
    r.item_finished(
        &p,
        Some(&lane),
        &ItemEnd { name: "a.json", status: ItemStatus::Done, duration: Some(1.0), error: None },
    )
    .unwrap();
    r.item_started(&p, Some(&lane), "b.json").unwrap();
    r.item_finished(
        &p,
        Some(&lane),
        &ItemEnd { name: "b.json", status: ItemStatus::Failed, duration: Some(3.0), error: Some("bad") },
    )
    .unwrap();
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

#[test]
fn each_phase_projects_its_own_cost_and_the_run_adds_them_up() {
    let r = run();
    let item = |node: &Node, cost: Option<f64>| {
        r.item_started(node, None, "x").unwrap();
        if let Some(c) = cost {
            r.add_metric(node, "cost_usd", c, true).unwrap();
        }
        let end = ItemEnd { name: "x", status: ItemStatus::Done, duration: Some(0.1), error: None };
        r.item_finished(node, None, &end).unwrap();
        if let Some(c) = cost {
            node.item_cost(c);
        }
    };
    // A free fetch of 100 pages (items that record no cost), then 20 of 100 summaries at 0.01.
    let fetch = r.add_node(0, NodeKind::Phase, "fetch", "page", Some(100)).unwrap();
    (0..100).for_each(|_| item(&fetch, None));
    let summarize = r.add_node(0, NodeKind::Phase, "summarize", "doc", Some(100)).unwrap();
    (0..20).for_each(|_| item(&summarize, Some(0.01)));
    let s = r.snapshot(1.0);
    let (root, sum) = (&s.root, &s.root.children[1]);
    let at = |n: &NodeSnapshot| n.projected_cost.unwrap();
    assert!((at(sum).value - 1.0).abs() < 1e-9, "{:?}", sum.projected_cost);
    assert!((root.projected_cost.unwrap().value - 1.0).abs() < 1e-9, "not 0.2 + 80 × 0.2/120: {root:?}");
    assert_eq!(at(sum).low, at(sum).high, "items that all cost the same leave no spread");
    assert!((root.cost_per_item.unwrap() - 0.2 / 120.0).abs() < 1e-12, "the run's own mean so far");
    assert!((sum.cost_per_item.unwrap() - 0.01).abs() < 1e-12);
    assert_eq!(s.root.children[0].projected_cost, None, "a free phase has no cost to project");
    // A phase with no total leaves the run without one, so without a projection.
    r.add_node(0, NodeKind::Phase, "extra", "it", None).unwrap();
    assert_eq!(r.snapshot(2.0).root.projected_cost, None);
}

#[test]
fn workers_have_left_once_each_marked_its_slot_and_not_before() {
    // Three workers in this process, each with its own attachment and pid: one still holds its
    // slot, one marked it on its way out, and one never counted (no slot: perhaps a process
    // still starting, about to attach): a pool can tell only of the first two.
    let core = run();
    assert_eq!(core.workers_left(&[7]), None, "a run not shared has no slots to tell by");
    let dir = std::env::temp_dir().join(format!("milepost-left-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = core.enable_sharing(&dir, 60.0).unwrap();
    let (busy, leaving) = (Segment::attach(&path).unwrap(), Segment::attach(&path).unwrap());
    busy.claim(101).unwrap();
    leaving.claim(102).unwrap();
    assert_eq!(core.workers_left(&[101, 102]), Some(false), "both hold their slots");
    leaving.detach();
    assert_eq!(core.workers_left(&[102]), Some(true), "marked on its way out");
    assert_eq!(core.workers_left(&[101, 102]), Some(false), "one still holds its slot");
    assert_eq!(core.workers_left(&[102, 103]), None, "one never took a slot");
    busy.detach();
    assert_eq!(core.workers_left(&[101, 102]), Some(true));
    core.stop_sharing();
    let _ = std::fs::remove_dir_all(&dir);
}
