//! Worker lanes: one per worker thread, showing what it is doing now and the tail of what its
//! item streams (`item.stream`).

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

use super::counter::{AtomicF64, Counter};
use super::kinds::ItemStatus;
pub use super::kinds::LaneState;
use super::tail::Tail;
use super::text::{clip, clip_into};

/// Longest current-item name a lane stores (the renderers truncate further to fit).
pub const MAX_ITEM_CHARS: usize = 256;

#[derive(Debug)]
pub struct Lane {
    pub id: usize,
    pub name: String,
    /// The current item's name and the tail of its streamed output: one lock, taken anyway
    /// when an item starts and ends, so that clearing the tail there costs nothing more.
    now: Mutex<(String, Tail)>,
    state: AtomicU8,
    pub done: Counter,
    pub failed: Counter,
    heartbeat: AtomicF64,
}

impl Lane {
    pub fn new(id: usize, name: &str, now: f64) -> Self {
        Self {
            id,
            name: clip(name, MAX_ITEM_CHARS),
            now: Mutex::new((String::new(), Tail::default())),
            state: AtomicU8::new(LaneState::Idle as u8),
            done: Counter::default(),
            failed: Counter::default(),
            heartbeat: AtomicF64::new(now),
        }
    }

    pub fn start_item(&self, name: &str, now: f64) {
        {
            let mut cur = self.now.lock();
            clip_into(&mut cur.0, name, MAX_ITEM_CHARS);
            cur.1.clear();
        }
        self.state.store(LaneState::Busy as u8, Ordering::Relaxed);
        self.heartbeat.set(now);
    }

    pub fn finish_item(&self, status: ItemStatus, now: f64) {
        match status {
            // A lane's "done" means done, as everywhere: a skipped item is neither.
            ItemStatus::Done => self.done.add(1),
            ItemStatus::Failed => self.failed.add(1),
            ItemStatus::Skipped | ItemStatus::Cancelled => {}
        }
        self.clear();
        self.state.store(LaneState::Idle as u8, Ordering::Relaxed);
        self.heartbeat.set(now);
    }

    pub fn finish(&self, now: f64) {
        self.clear();
        self.state.store(LaneState::Finished as u8, Ordering::Relaxed);
        self.heartbeat.set(now);
    }

    pub fn state(&self) -> LaneState {
        LaneState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// The item leaves the lane, and so does the tail of its output.
    fn clear(&self) {
        let mut cur = self.now.lock();
        cur.0.clear();
        cur.1.clear();
    }

    /// Adds to the tail of the current item's streamed output.
    pub fn stream(&self, text: &str) {
        self.now.lock().1.push(text);
    }

    pub fn item(&self) -> String {
        self.now.lock().0.clone()
    }

    /// The current item's name (empty: none) and the tail of its output as shown.
    pub fn now_showing(&self) -> (String, Option<String>) {
        let cur = self.now.lock();
        (cur.0.clone(), cur.1.shown())
    }

    pub fn heartbeat(&self) -> f64 {
        self.heartbeat.get()
    }
}
