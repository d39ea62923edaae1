//! Bounded lists of recent items and failures.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::ItemStatus;

/// A finished item, as shown in "recent" lists.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "record")]
pub struct ItemRecord {
    pub name: String,
    /// Name of the phase or step the item belongs to.
    pub node: String,
    #[schemars(description = "How the item ended.")]
    pub status: ItemStatus,
    pub duration: Option<f64>,
    /// Seconds since the run started.
    pub at: f64,
    pub lane: Option<String>,
    pub error: Option<String>,
}

/// An empty record, whose buffers `Ring::push_with` fills.
impl Default for ItemRecord {
    fn default() -> Self {
        Self {
            name: String::new(),
            node: String::new(),
            status: ItemStatus::Done,
            duration: None,
            at: 0.0,
            lane: None,
            error: None,
        }
    }
}

/// A ring that keeps the newest `cap` entries and counts what it dropped.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Self { items: VecDeque::with_capacity(cap.min(64)), cap }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Adds the entry `fill` writes over the oldest one, once the ring is full (its buffers
    /// reused: no allocation per entry), or over `T::default()` until then.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut T))
    where
        T: Default,
    {
        let mut item =
            if self.items.len() >= self.cap { self.items.pop_front().unwrap_or_default() } else { T::default() };
        fill(&mut item);
        self.items.push_back(item);
    }

    /// The newest entries first.
    pub fn newest_first(&self) -> Vec<T> {
        self.items.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(i);
        }
        assert_eq!(r.newest_first(), vec![9, 8, 7]);
    }
}
