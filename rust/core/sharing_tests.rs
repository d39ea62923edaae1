//! The parent's view of a shared run, with "workers" attached in this process.

use crate::core::clock::Clock;
use crate::core::node::NodeKind;
use crate::core::run::RunCore;
use crate::core::shm::segment::{C_DONE, C_IN_FLIGHT};
use crate::core::shm::Segment;

fn shared_run(tag: &str) -> (RunCore, std::path::PathBuf) {
    let run = RunCore::new(&format!("t{tag}"), "shared", Clock::manual(), 0.0);
    let dir = std::env::temp_dir().join(format!("milepost-sharing-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = run.enable_sharing(&dir, 30.0).unwrap();
    (run, path)
}

#[test]
fn workers_counts_nodes_and_events_reach_the_snapshot() {
    let (run, path) = shared_run("a");
    let phase = run.add_node(0, NodeKind::Phase, "map", "doc", Some(10)).unwrap();
    phase.done.add(2);
    let shm_phase = phase.shm_index().unwrap();
    let w = Segment::attach(&path).unwrap();
    let slot = w.claim(std::process::id()).unwrap();
    w.bump(slot, shm_phase, C_DONE, 5);
    let m = w.metric_index("tokens").unwrap();
    w.add_metric(slot, shm_phase, m, 42.0, false);
    let step = w.register_node(shm_phase, 2, "inner", "it", Some(3), 1).unwrap();
    w.open_node(step);
    w.bump(slot, step, C_DONE, 1);
    w.push_event(slot, 1, step, r#"{"event":"item_failed","item":"doc-3","error":"ValueError: x"}"#);
    w.add_total(shm_phase, 5);
    run.sample(1.0);
    let s = run.snapshot(1.0);
    let map = &s.root.children[0];
    assert_eq!(map.done, 2 + 5 + 1, "parent, worker and the worker's step");
    assert_eq!(map.total, Some(15), "a worker grew the total");
    assert_eq!(map.metrics["tokens"], serde_json::json!(42));
    assert_eq!(map.children[0].name, "inner");
    assert_eq!(map.children[0].state, "running");
    assert_eq!(s.failures[0].name, "doc-3");
    let events = run.take_worker_events();
    assert_eq!(events[0].path, vec!["shared", "map", "inner"]);
    assert!(events[0].json.contains("doc-3"));
    assert_eq!(s.lanes.iter().filter(|l| l.name.starts_with("pid ")).count(), 1);
    run.stop_sharing();
    assert!(!path.exists());
}

#[test]
fn a_dead_worker_has_its_items_counted_failed() {
    let (run, path) = shared_run("b");
    let phase = run.add_node(0, NodeKind::Phase, "map", "it", Some(4)).unwrap();
    let shm_phase = phase.shm_index().unwrap();
    let w = Segment::attach(&path).unwrap();
    // A pid that does not exist: the parent sees this worker as dead at its next sample.
    let slot = w.claim(999_999_999).unwrap();
    w.bump(slot, shm_phase, C_DONE, 2);
    w.bump(slot, shm_phase, C_IN_FLIGHT, 1);
    w.set_item(slot, "doc-9");
    run.sample(1.0);
    let s = run.snapshot(1.5);
    let map = &s.root.children[0];
    assert_eq!((map.done, map.failed, map.in_flight), (2, 1, 0));
    assert_eq!(s.failures[0].name, "doc-9");
    assert_eq!(s.failures[0].error.as_deref(), Some("worker died (pid 999999999)"));
    let lane = s.lanes.iter().find(|l| l.name == "pid 999999999").unwrap();
    assert_eq!(lane.state, "died");
    assert!(run.take_worker_events()[0].json.contains("worker died"));
    run.stop_sharing();
}
