//! The parent's side: sum the slots, read the lanes, take the events, account for the dead.

use std::sync::atomic::Ordering;

use super::segment::{
    Segment, CLAIMING, C_FAILED, C_FLOATS, C_IN_FLIGHT, C_METRICS, C_USED, DEAD, FREE, H_NODE_COUNT, MAX_METRICS,
    MAX_NODES, MAX_SLOTS, METRICS_AT, METRIC_ENTRY, M_NAME, M_STATE, N_CREATOR, N_KIND, N_NAME, N_OPEN, N_PARENT,
    N_READY, N_STATE, N_TOTAL, N_UNIT, RECORD_TEXT_WORDS, RING, S_BEAT, S_DONE, S_DROPPED, S_FAILED, S_HEAD, S_ITEM,
    S_TAIL,
};
use crate::core::node::decode_total;

/// A node of the shared table, as the parent mirrors it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub parent: usize,
    pub kind: u64,
    pub name: String,
    pub unit: String,
    pub total: Option<u64>,
    /// Workers that have the node open now.
    pub open: u64,
    pub state: u64,
    /// 0: created by the parent, 1: by a worker.
    pub creator: u64,
}

/// Counts of one node summed over every worker slot.
#[derive(Debug, Clone, Default)]
pub struct SharedSums {
    pub counts: crate::core::counter::Counts,
    /// `(shared metric index, sum, any float)`.
    pub metrics: Vec<(usize, f64, bool)>,
}

/// One worker slot: the lane of a worker process.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotView {
    pub slot: usize,
    pub pid: u32,
    pub state: u64,
    pub item: Option<String>,
    pub done: u64,
    pub failed: u64,
    pub dropped: u64,
    /// A value that changes whenever the worker does anything (for stall detection).
    pub activity: u64,
}

impl Segment {
    pub fn node_count(&self) -> usize {
        (self.word(H_NODE_COUNT).load(Ordering::Acquire) as usize).min(MAX_NODES)
    }

    pub fn node_info(&self, node: usize) -> Option<NodeInfo> {
        if self.word(Self::node_entry(node, N_READY)).load(Ordering::Acquire) != 1 {
            return None;
        }
        let total = self.word(Self::node_entry(node, N_TOTAL)).load(Ordering::Relaxed);
        Some(NodeInfo {
            parent: self.word(Self::node_entry(node, N_PARENT)).load(Ordering::Relaxed) as usize,
            kind: self.word(Self::node_entry(node, N_KIND)).load(Ordering::Relaxed),
            name: self.read_text(Self::node_entry(node, N_NAME), 16),
            unit: self.read_text(Self::node_entry(node, N_UNIT), 3),
            total: decode_total(total),
            open: self.word(Self::node_entry(node, N_OPEN)).load(Ordering::Relaxed),
            state: self.word(Self::node_entry(node, N_STATE)).load(Ordering::Relaxed),
            creator: self.word(Self::node_entry(node, N_CREATOR)).load(Ordering::Relaxed),
        })
    }

    /// Slots that a worker has used (their counts are part of the run).
    pub fn used_slots(&self) -> Vec<usize> {
        self.used().collect()
    }

    fn used(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_SLOTS).filter(|&s| !matches!(self.state_word(s).load(Ordering::Acquire), FREE | CLAIMING))
    }

    /// `node`'s counts summed over the slots workers have used (no metrics, nothing allocated:
    /// what a task's counts read in the parent add to its own).
    pub fn node_counts(&self, node: usize) -> crate::core::counter::Counts {
        let mut counts = crate::core::counter::Counts::default();
        for s in self.used() {
            counts += self.slot_counts(s, node);
        }
        counts
    }

    /// `node`'s counts summed over `slots`.
    pub fn sum_node(&self, node: usize, slots: &[usize]) -> SharedSums {
        let mut sums = SharedSums::default();
        let mut metric = [0.0_f64; MAX_METRICS];
        let (mut used, mut floats) = (0_u64, 0_u64);
        for &s in slots {
            let get = |f: usize| self.word(Self::counter(s, node, f)).load(Ordering::Relaxed);
            sums.counts += self.slot_counts(s, node);
            let u = get(C_USED);
            if u != 0 {
                for (m, v) in metric.iter_mut().enumerate().filter(|(m, _)| u & (1 << m) != 0) {
                    *v += f64::from_bits(get(C_METRICS + m));
                }
                used |= u;
                floats |= get(C_FLOATS);
            }
        }
        sums.metrics =
            (0..MAX_METRICS).filter(|m| used & (1 << m) != 0).map(|m| (m, metric[m], floats & (1 << m) != 0)).collect();
        sums
    }

    pub fn metric_name(&self, index: usize) -> Option<String> {
        let at = METRICS_AT + index * METRIC_ENTRY;
        (self.word(at + M_STATE).load(Ordering::Acquire) == 2).then(|| self.read_text(at + M_NAME, 7))
    }

    /// The lane's current item (read under its seqlock; `None` when idle).
    pub fn read_item(&self, slot: usize) -> Option<String> {
        let at = Self::slot_base(slot) + S_ITEM;
        for _ in 0..100 {
            let before = self.word(at).load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let text = self.read_text(at + 1, 16);
            std::sync::atomic::fence(Ordering::Acquire);
            if self.word(at).load(Ordering::Relaxed) == before {
                return (!text.is_empty()).then_some(text);
            }
        }
        None
    }

    pub fn slot_view(&self, slot: usize) -> SlotView {
        let base = Self::slot_base(slot);
        let get = |f: usize| self.word(base + f).load(Ordering::Acquire);
        SlotView {
            slot,
            pid: self.pid_word(slot).load(Ordering::Acquire) as u32,
            state: self.state_word(slot).load(Ordering::Acquire),
            item: self.read_item(slot),
            done: get(S_DONE),
            failed: get(S_FAILED),
            dropped: get(S_DROPPED),
            activity: get(S_BEAT).wrapping_add(get(S_ITEM)),
        }
    }

    /// Takes the slot's queued events, oldest first: `(kind, shared node, text)`.
    pub fn drain_events(&self, slot: usize) -> Vec<(u64, usize, String)> {
        let base = Self::slot_base(slot);
        let head = self.word(base + S_HEAD).load(Ordering::Acquire);
        let mut tail = self.word(base + S_TAIL).load(Ordering::Relaxed);
        let mut out = Vec::new();
        while tail < head {
            let rec = Self::record(slot, tail as usize % RING);
            let header = self.word(rec).load(Ordering::Relaxed);
            out.push((header & 0xff, (header >> 8) as usize, self.read_text(rec + 1, RECORD_TEXT_WORDS)));
            tail += 1;
        }
        self.word(base + S_TAIL).store(tail, Ordering::Release);
        out
    }

    /// A worker the parent stops on purpose (a second Ctrl-C): its items in flight leave
    /// flight uncounted, as an item interrupted by Ctrl-C does, and its slot is exited.
    pub fn account_stop(&self, slot: usize) {
        for node in 0..self.node_count() {
            self.word(Self::counter(slot, node, C_IN_FLIGHT)).store(0, Ordering::Release);
        }
        self.state_word(slot).store(super::segment::EXITED, Ordering::Release);
    }

    /// A worker died: its items in flight become failed (written by the parent into the dead
    /// worker's slot, which nobody else writes). Returns `(node, how many)` per node.
    pub fn account_death(&self, slot: usize) -> Vec<(usize, u64)> {
        let mut lost = Vec::new();
        for node in 0..self.node_count() {
            let in_flight = self.word(Self::counter(slot, node, C_IN_FLIGHT));
            let n = in_flight.swap(0, Ordering::AcqRel);
            if n > 0 && n < u64::MAX / 2 {
                self.bump(slot, node, C_FAILED, n);
                lost.push((node, n));
            }
        }
        let failed = self.word(Self::slot_base(slot) + S_FAILED);
        failed.store(failed.load(Ordering::Relaxed) + lost.iter().map(|(_, n)| n).sum::<u64>(), Ordering::Relaxed);
        self.state_word(slot).store(DEAD, Ordering::Release);
        lost
    }
}
