//! Worker lanes: one per worker thread, showing what it is doing now.

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

use super::counter::{AtomicF64, Counter};
use super::kinds::ItemStatus;
pub use super::kinds::LaneState;
use super::text::clip;

/// Longest current-item name a lane stores (the renderers truncate further to fit).
pub const MAX_ITEM_CHARS: usize = 256;

#[derive(Debug)]
pub struct Lane {
    pub id: usize,
    pub name: String,
    item: Mutex<String>,
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
            item: Mutex::new(String::new()),
            state: AtomicU8::new(LaneState::Idle as u8),
            done: Counter::default(),
            failed: Counter::default(),
            heartbeat: AtomicF64::new(now),
        }
    }

    pub fn start_item(&self, name: &str, now: f64) {
        *self.item.lock() = clip(name, MAX_ITEM_CHARS);
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
        self.item.lock().clear();
        self.state.store(LaneState::Idle as u8, Ordering::Relaxed);
        self.heartbeat.set(now);
    }

    pub fn finish(&self, now: f64) {
        self.item.lock().clear();
        self.state.store(LaneState::Finished as u8, Ordering::Relaxed);
        self.heartbeat.set(now);
    }

    pub fn state(&self) -> LaneState {
        LaneState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn item(&self) -> String {
        self.item.lock().clone()
    }

    pub fn heartbeat(&self) -> f64 {
        self.heartbeat.get()
    }
}
