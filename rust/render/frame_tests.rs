//! The frame's layout against snapshots of real runs: what is drawn, folded, clipped and cleaned.

use super::*;
use crate::core::clock::Clock;
use crate::core::node::NodeKind;
use crate::core::run::{ItemEnd, ItemStatus, RunCore};

fn sample_run(lanes: usize) -> Snapshot {
    let r = RunCore::new("id", "job\u{1b}[2J", Clock::manual(), 0.0);
    let p = r.add_node(0, NodeKind::Phase, "map", "file", Some(100)).unwrap();
    p.start(0.0, 0);
    p.done.add(40);
    for i in 0..lanes {
        let lane = r.add_lane(&format!("w{i}"));
        r.item_started(&p, Some(&lane), &format!("item-{i}\u{1b}]0;pwned\u{7}")).unwrap();
    }
    r.item_finished(
        &p,
        None,
        &ItemEnd { name: "bad\nname", status: ItemStatus::Failed, duration: None, error: Some("Boom\u{1b}[31m!") },
    )
    .unwrap();
    r.snapshot(10.0)
}

fn plain(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| console::strip_ansi_codes(l).into_owned()).collect()
}

#[test]
fn bar_resolution() {
    assert_eq!(bar(0.0, 4), "    ");
    assert_eq!(bar(1.0, 4), "████");
    assert_eq!(bar(0.5, 4), "██  ");
    assert_eq!(bar(0.53, 4), "██▏ ");
}

#[test]
fn lanes_fold_and_text_is_sanitized() {
    let s = sample_run(12);
    let o = FrameOptions { width: 100, height: 40, max_lanes: 5, tick: 0 };
    let lines = plain(&frame(&s, &o));
    let text = lines.join("\n");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("job › map ["), "{text}");
    assert!(text.contains("… 8 more lanes"), "{text}");
    assert_eq!(lines.iter().filter(|l| l.contains('▸')).count(), 4);
    assert!(text.contains("✗ bad name: Boom!"));
    assert!(text.contains(" 41%"), "{text}");
}

#[test]
fn dead_and_stalled_lanes_come_first_and_say_so() {
    let mut s = sample_run(6);
    let dead = &mut s.lanes[4];
    (dead.state, dead.item, dead.done, dead.failed) = ("died".into(), None, 500, 1);
    let stalled = &mut s.lanes[5];
    (stalled.state, stalled.heartbeat_age) = ("stalled".into(), 65.0);
    let o = FrameOptions { width: 100, height: 40, max_lanes: 3, tick: 0 };
    let text = plain(&frame(&s, &o)).join("\n");
    assert!(text.contains("    w4 died (500 done, 1 failed)"), "{text}");
    assert!(text.contains("    w5 stalled 1m05s ▸ item-5"), "{text}");
    assert!(text.contains("    … 4 more lanes"), "{text}");
}

#[test]
fn a_run_without_phases_is_one_bar_line() {
    let r = RunCore::new("id", "loop", Clock::manual(), 0.0);
    r.root().set_total(Some(10));
    r.root().done.add(5);
    let o = FrameOptions { width: 80, height: 10, max_lanes: 4, tick: 0 };
    let lines = plain(&frame(&r.snapshot(1.0), &o));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("loop [██████████          ]  50% 5/10"), "{lines:?}");
}

#[test]
fn a_run_of_one_phase_is_one_bar_line_and_many_phases_fold() {
    let r = RunCore::new("id", "loop", Clock::manual(), 0.0);
    let p = r.add_node(0, NodeKind::Phase, "loop", "it", Some(4)).unwrap();
    p.start(0.0, 0);
    p.done.add(1);
    let o = FrameOptions { width: 80, height: 10, max_lanes: 4, tick: 0 };
    let lines = plain(&frame(&r.snapshot(1.0), &o));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("⠋ loop ["), "{lines:?}");
    for i in 0..30 {
        let q = r.add_node(0, NodeKind::Phase, &format!("epoch-{i}"), "it", Some(1)).unwrap();
        q.start(1.0, 0);
        if i < 29 {
            q.end(crate::core::node::NodeState::Completed, 2.0);
        }
    }
    let lines = plain(&frame(&r.snapshot(3.0), &o));
    assert!(lines.len() <= 9, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("earlier phases and steps finished")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("epoch-29")), "the running phase stays: {lines:?}");
}

#[test]
fn a_completed_node_without_a_total_draws_its_bar_full() {
    let r = RunCore::new("id", "job", Clock::manual(), 0.0);
    let map = r.add_node(0, NodeKind::Phase, "map", "it", Some(4)).unwrap();
    map.start(0.0, 0);
    map.done.add(4);
    map.end(crate::core::node::NodeState::Completed, 1.0);
    let reduce = r.add_node(0, NodeKind::Phase, "reduce", "it", None).unwrap();
    reduce.start(1.0, 0);
    reduce.done.add(8);
    let o = FrameOptions { width: 80, height: 10, max_lanes: 4, tick: 0 };
    let empty = format!("[{}]", " ".repeat(20));
    let full = format!("[{}]", "█".repeat(20));
    let line = |lines: Vec<String>| lines.into_iter().find(|l| l.contains("reduce")).unwrap();
    let running = line(plain(&frame(&r.snapshot(2.0), &o)));
    assert!(running.contains(&empty), "unknown while running: {running}");
    reduce.end(crate::core::node::NodeState::Completed, 3.0);
    let done = line(plain(&frame(&r.snapshot(3.0), &o)));
    assert!(done.contains(&format!("{full} 100% 8 it · completed")), "processed all it had: {done}");
    // A node that failed or was cancelled did not process all it had: its bar stays empty.
    let cut = r.add_node(0, NodeKind::Phase, "cut", "it", None).unwrap();
    cut.start(3.0, 0);
    cut.done.add(2);
    cut.end(crate::core::node::NodeState::Cancelled, 4.0);
    let cut_line = plain(&frame(&r.snapshot(4.0), &o)).into_iter().find(|l| l.contains("cut")).unwrap();
    assert!(cut_line.contains(&empty), "{cut_line}");
    // A bare loop without a total (its run line is its bar) too.
    let r = RunCore::new("id", "loop", Clock::manual(), 0.0);
    let p = r.add_node(0, NodeKind::Phase, "loop", "it", None).unwrap();
    p.start(0.0, 0);
    p.done.add(3);
    p.end(crate::core::node::NodeState::Completed, 1.0);
    let lines = plain(&frame(&r.snapshot(1.0), &o));
    assert!(lines[0].contains(&format!("{full} 100% 3 it")), "{lines:?}");
}

#[test]
fn the_run_line_shows_the_cost_per_item_and_where_the_cost_is_heading() {
    let r = RunCore::new("id", "job", Clock::manual(), 0.0);
    let p = r.add_node(0, NodeKind::Phase, "map", "doc", Some(100)).unwrap();
    r.add_node(0, NodeKind::Phase, "reduce", "it", Some(0)).unwrap();
    for i in 0..10 {
        let cost = if i % 2 == 0 { 0.01 } else { 0.02 };
        r.item_started(&p, None, "doc").unwrap();
        r.add_metric(&p, "cost_usd", cost, true).unwrap();
        let end = ItemEnd { name: "doc", status: ItemStatus::Done, duration: Some(1.0), error: None };
        r.item_finished(&p, None, &end).unwrap();
        p.item_cost(cost);
    }
    let line = run_line(&r.snapshot(1.0));
    // 10 items at 0.015 on average, 90 more: 0.15 + 1.35, ± 1.645 · sqrt(90 s² + 90² s² / 10), s = 0.0053.
    assert!(line.contains("cost_usd $0.1500 · $0.0150/item → $1.50 ($1.24–1.76)"), "{line}");
    r.root().end(crate::core::node::NodeState::Completed, 2.0);
    let line = run_line(&r.snapshot(2.0));
    assert!(line.ends_with("cost_usd $0.1500 · $0.0150/item"), "no projection once it ended: {line}");
}

#[test]
fn streamed_tails_show_their_end_on_one_line() {
    let r = RunCore::new("id", "job", Clock::manual(), 0.0);
    let map = r.add_node(0, NodeKind::Phase, "map", "doc", Some(10)).unwrap();
    r.add_node(0, NodeKind::Phase, "reduce", "it", Some(1)).unwrap();
    let lane = r.add_lane("w0");
    r.item_started(&map, Some(&lane), "doc-1").unwrap();
    lane.stream("The committee's report\r\nfinds that the budget \u{1b}[31mrose\u{1b}[0m by 4% while");
    r.item_started(&map, None, "solo").unwrap();
    map.stream_start("solo");
    map.stream("step 1\nstep 2");
    let o = FrameOptions { width: 60, height: 20, max_lanes: 4, tick: 0 };
    let lines = plain(&frame(&r.snapshot(1.0), &o));
    let lane_line = lines.iter().find(|l| l.contains("w0 ▸")).unwrap();
    assert_eq!(lane_line, "    w0 ▸ doc-1 (0 done) │ … that the budget rose by 4% while", "{lines:#?}");
    let at = lines.iter().position(|l| l.starts_with("  map ")).unwrap();
    assert_eq!(lines[at + 1], "      ▸ solo │ step 1↵step 2", "under its node: {lines:#?}");
    assert!(lines.iter().all(|l| console::measure_text_width(l) <= 60));
    // The item ends: its tail goes with it.
    let end = ItemEnd { name: "doc-1", status: ItemStatus::Done, duration: Some(1.0), error: None };
    r.item_finished(&map, Some(&lane), &end).unwrap();
    map.stream_end("solo");
    let s = r.snapshot(2.0);
    assert_eq!((s.lanes[0].tail.as_deref(), s.root.children[0].tail.as_deref()), (None, None));
    assert!(!plain(&frame(&s, &o)).join("\n").contains('│'));
}

#[test]
fn frame_fits_small_terminals() {
    let s = sample_run(12);
    let o = FrameOptions { width: 30, height: 6, max_lanes: 8, tick: 0 };
    let lines = frame(&s, &o);
    assert!(lines.len() <= 5);
    for l in &lines {
        assert!(console::measure_text_width(l) <= 30, "{l:?}");
    }
}

fn with_resources(mut s: Snapshot) -> Snapshot {
    use crate::core::resources::{DiskSpace, Resources};
    let disk = |path: &str, free: f64, low: bool| DiskSpace {
        path: path.into(),
        free_bytes: Some((free * 1e12) as u64),
        total_bytes: Some(1_000_000_000_000),
        free_fraction: Some(free),
        low,
    };
    s.resources = Some(Resources {
        cpu_percent: Some(340.4),
        rss_bytes: Some(2_147_483_648),
        disks: vec![disk("/data", 0.5, false), disk("/out", 0.031, true)],
        ..Resources::default()
    });
    s
}

#[test]
fn the_run_line_carries_the_tree_s_cpu_and_memory_and_a_disk_low_on_space() {
    let s = with_resources(sample_run(0));
    let line = console::strip_ansi_codes(&run_line(&s)).into_owned();
    assert!(line.ends_with(" · CPU 340% · RSS 2.1 GB · disk 3.1% free"), "{line}");
    // The one-line run (a single loop) says it too.
    let o = FrameOptions { width: 200, height: 40, max_lanes: 5, tick: 0 };
    let head = &plain(&frame(&s, &o))[0];
    assert!(head.contains("CPU 340% · RSS 2.1 GB · disk 3.1% free"), "{head}");

    // The first sample has no CPU yet; nothing sampled, nothing said.
    let mut first = s.clone();
    first.resources.as_mut().unwrap().cpu_percent = None;
    first.resources.as_mut().unwrap().disks.clear();
    assert!(run_line(&first).ends_with(" · RSS 2.1 GB"), "{}", run_line(&first));
    let mut none = s;
    none.resources = None;
    assert!(!run_line(&none).contains("RSS"));
}

#[test]
fn a_worker_process_lane_shows_its_cpu_and_memory() {
    let mut s = sample_run(2);
    (s.lanes[0].name, s.lanes[0].pid, s.lanes[0].cpu_percent, s.lanes[0].rss_bytes) =
        ("pid 4242".into(), Some(4242), Some(97.6), Some(310_000_000));
    s.lanes[1].rss_bytes = Some(35_000_000); // a first sample: memory, no CPU yet
    let lines = lane_lines(&s, 8, 200);
    let plain_lines: Vec<String> = plain(&lines);
    assert!(plain_lines[0].starts_with("    pid 4242 ▸ item-0"), "{plain_lines:?}");
    assert!(plain_lines[0].ends_with(" (0 done) · 98% · 310 MB"), "{plain_lines:?}");
    assert!(plain_lines[1].ends_with(" (0 done) · 35 MB"), "{plain_lines:?}");
}
