//! Tests of the segment within one process (the cross-process behaviour is tested from Python
//! with real worker processes).

use super::segment::{C_DONE, C_IN_FLIGHT, DEAD, EXITED};
use super::*;

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("milepost-{}-test-{tag}", std::process::id()))
}

#[test]
fn create_attach_count_and_sum() {
    let path = temp_path("sum");
    let _ = std::fs::remove_file(&path);
    let parent = Segment::create(&path, std::process::id()).unwrap();
    let root = parent.register_node(0, 0, "run", "it", None, 0).unwrap();
    let phase = parent.register_node(root, 1, "map", "doc", Some(10), 0).unwrap();
    let a = Segment::attach(&path).unwrap();
    let b = Segment::attach(&path).unwrap();
    let (sa, sb) = (a.claim(1).unwrap(), b.claim(2).unwrap());
    assert_ne!(sa, sb);
    a.bump(sa, phase, C_DONE, 3);
    b.bump(sb, phase, C_DONE, 4);
    let m = a.metric_index("tokens").unwrap();
    assert_eq!(b.metric_index("tokens").unwrap(), m);
    a.add_metric(sa, phase, m, 5.0, false);
    b.add_metric(sb, phase, m, 0.5, true);
    let sums = parent.sum_node(phase, &parent.used_slots());
    assert_eq!(sums.counts.done, 7);
    assert_eq!(sums.metrics, vec![(m, 5.5, true)]);
    assert_eq!(parent.node_info(phase).unwrap().name, "map");
    assert_eq!(parent.find_node(root, 1, "map"), Some(phase));
    drop(parent);
    assert!(!path.exists(), "the creating process removes the file");
}

#[test]
fn items_events_and_deaths() {
    let path = temp_path("death");
    let _ = std::fs::remove_file(&path);
    let parent = Segment::create(&path, std::process::id()).unwrap();
    let node = parent.register_node(0, 1, "p", "it", None, 0).unwrap();
    let w = Segment::attach(&path).unwrap();
    let s = w.claim(4242).unwrap();
    w.bump(s, node, C_IN_FLIGHT, 1);
    w.set_item(s, "doc-7.json");
    assert_eq!(parent.slot_view(s).item.as_deref(), Some("doc-7.json"));
    for i in 0..300 {
        w.push_event(s, 1, node, &format!("{{\"i\":{i}}}"));
    }
    let events = parent.drain_events(s);
    assert_eq!(events.len(), 256);
    assert_eq!(parent.slot_view(s).dropped, 44);
    assert_eq!(events[0].2, "{\"i\":0}");
    assert_eq!(parent.account_death(s), vec![(node, 1)]);
    let sums = parent.sum_node(node, &parent.used_slots());
    assert_eq!((sums.counts.failed, sums.counts.in_flight), (1, 0));
    assert_eq!(parent.slot_view(s).state, DEAD);
}

#[test]
fn detach_frees_the_slot_for_reuse_and_fork_resets() {
    let path = temp_path("reuse");
    let _ = std::fs::remove_file(&path);
    let parent = Segment::create(&path, std::process::id()).unwrap();
    let w = Segment::attach(&path).unwrap();
    let s = w.my_slot().unwrap();
    w.detach();
    assert_eq!(parent.slot_view(s).state, EXITED);
    assert_eq!(w.my_slot().unwrap(), s + 1, "free slots are taken before exited ones");
    let before = w.claimed();
    super::segment::after_fork_in_child();
    assert_eq!(w.claimed(), None, "a forked child does not write into its parent's slot");
    assert!(before.is_some());
}

#[test]
fn attach_refuses_other_files_and_versions() {
    let path = temp_path("bad");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    assert!(matches!(Segment::attach(&path), Err(SegmentError::NotASegment(_))));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn stale_segments_of_dead_parents_are_removed() {
    let dir = std::env::temp_dir().join(format!("milepost-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("milepost-999999999-abc"), b"x").unwrap();
    std::fs::write(dir.join(format!("milepost-{}-live", std::process::id())), b"x").unwrap();
    assert_eq!(remove_stale(&dir), 1);
    assert!(dir.join(format!("milepost-{}-live", std::process::id())).exists());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(process_alive(std::process::id()));
    assert!(!process_alive(999_999_999));
}
