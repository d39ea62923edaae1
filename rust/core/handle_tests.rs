//! One handle, every place: the same calls and the same checks, local or in a worker's slot.

use std::sync::Arc;

use super::{Handle, RowExtra};
use crate::core::clock::Clock;
use crate::core::error::Error;
use crate::core::kinds::{ItemStatus, NodeKind, NodeState};
use crate::core::limits::MAX_COUNT;
use crate::core::node::Tally;
use crate::core::rows::RowBuffer;
use crate::core::run::{ItemEnd, RunCore};
use crate::core::shm::Segment;

fn run() -> Arc<RunCore> {
    Arc::new(RunCore::new("h1", "handles", Clock::manual(), 0.0))
}

/// A run shared with "workers" that attach in this process, and a worker's handle on `name`.
fn shared(tag: &str, name: &str) -> (Arc<RunCore>, Handle, Handle) {
    let run = run();
    let dir = std::env::temp_dir().join(format!("milepost-handle-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = run.enable_sharing(&dir, 30.0).unwrap();
    let local = run.add_child(&run.root_handle(), NodeKind::Phase, name, "it", Some(10)).unwrap();
    let seg = Arc::new(Segment::attach(&path).unwrap());
    let worker = Handle::slot(seg, local.shared_index().unwrap()).unwrap();
    (run, local, worker)
}

fn end(name: &str, status: ItemStatus) -> ItemEnd<'_> {
    ItemEnd { name, status, duration: Some(0.5), error: (status == ItemStatus::Failed).then_some("boom") }
}

#[test]
fn local_counts_totals_and_names() {
    let run = run();
    let p = run.add_child(&run.root_handle(), NodeKind::Phase, "p", "it", None).unwrap();
    p.tally(Tally::Done, 3).unwrap();
    p.tally(Tally::Skipped, 1).unwrap();
    p.fail("x", "boom", None, 0.0).unwrap();
    p.set_total(Some(MAX_COUNT - 1)).unwrap();
    assert!(matches!(p.add_total(2), Err(Error::Overflow { what: "add_total(n)", .. })));
    let c = p.counts();
    assert_eq!((c.done, c.skipped, c.failed), (3, 1, 1));
    assert_eq!(p.rename(""), Err(Error::EmptyName { what: "name" }));
    p.rename("q").unwrap();
    assert_eq!((p.name(), p.path(), p.kind()), ("q".to_owned(), Some("p"), NodeKind::Phase));
    assert_eq!(p.node_of(&run), Some(1));
    assert_eq!(p.node_of(&self::run()), None, "another run's node is no parent here");
}

#[test]
fn an_item_and_its_row_go_in_one_call() {
    let run = run();
    let p = run.add_child(&run.root_handle(), NodeKind::Phase, "p", "it", None).unwrap();
    let rows = RowBuffer::new("h1");
    p.item_started("a", None).unwrap();
    let extra = RowExtra { started_at: 1.0, metrics: Some("{\"t\":1}") };
    assert_eq!(p.item_finished(&end("a", ItemStatus::Done), None, Some(&rows), extra).unwrap(), 1);
    p.item_started("b", None).unwrap();
    assert_eq!(p.item_finished(&end("b", ItemStatus::Cancelled), None, Some(&rows), extra).unwrap(), 0);
    assert_eq!(p.fail("c", "boom", Some(&rows), 2.0).unwrap(), 2);
    let chunks = rows.take().unwrap();
    assert_eq!((chunks.len(), chunks[0].rows, chunks[0].counts.done, chunks[0].counts.failed), (1, 2, 1, 1));
    let json = String::from_utf8(chunks[0].text.to_vec()).unwrap();
    assert!(json.contains("[\"p\",\"a\",\"done\",1.0,0.5,null,\"{\\\"t\\\":1}\"]"), "{json}");
    let c = p.counts();
    assert_eq!((c.item_done, c.failed, c.in_flight), (1, 1, 0));
}

#[test]
fn a_workers_handle_counts_into_its_slot_and_the_parent_sums() {
    let (run, local, worker) = shared("a", "map");
    local.tally(Tally::Done, 2).unwrap();
    worker.tally(Tally::Done, 5).unwrap();
    worker.item_started("doc-1", None).unwrap();
    worker.item_finished(&end("doc-1", ItemStatus::Failed), None, None, RowExtra::default()).unwrap();
    worker.metric("tokens", 7.0, false).unwrap();
    worker.add_total(5).unwrap();
    let rows = RowBuffer::new("h1");
    assert_eq!(worker.fail("doc-2", "boom", Some(&rows), 0.0).unwrap(), 0, "the parent keeps a worker's rows");
    assert_eq!(worker.counts().done, 5, "the worker's own counts");
    assert_eq!((worker.path(), worker.state(), worker.name()), (None, NodeState::Running, "map".to_owned()));
    run.sample(1.0);
    let s = run.snapshot(1.0);
    let map = &s.root.children[0];
    assert_eq!((map.done, map.failed, map.total), (7, 2, Some(15)));
    assert_eq!(map.metrics["tokens"], serde_json::json!(7));
    assert_eq!(local.total(), Some(15), "the parent's handle reads the shared total");
    run.stop_sharing();
}

#[test]
fn every_place_checks_alike() {
    let (run, local, worker) = shared("b", "map");
    for h in [&local, &worker] {
        assert!(matches!(h.metric("", 1.0, false), Err(Error::EmptyName { what: "metric name" })));
        assert!(matches!(h.metric("m", f64::NAN, true), Err(Error::NotFinite { .. })));
        assert!(matches!(h.metric("m", 1e300, false), Err(Error::TooLarge { .. })));
        assert!(matches!(h.tally(Tally::Done, MAX_COUNT + 1), Err(Error::Overflow { .. })));
        assert_eq!(h.rename(""), Err(Error::EmptyName { what: "name" }));
    }
    run.finish();
    for h in [&local, &worker] {
        for e in
            [h.tally(Tally::Done, 1), h.metric("m", 1.0, false), h.set_total(None), h.item_started("x", None).map(drop)]
        {
            assert!(matches!(e, Err(Error::RunEnded { .. })), "{e:?}");
        }
    }
    run.stop_sharing();
}
