//! The worker's side: claim a slot, count into it, name the current item, send events.
//! Every write goes to this process's own slot, so plain stores are exact.

use std::sync::atomic::Ordering;

use super::segment::{
    clip_bytes, Segment, ACTIVE, CLAIMING, COUNTER_WORDS, C_FLOATS, C_METRICS, C_USED, DEAD, EXITED, FREE,
    H_NODE_COUNT, MAX_METRICS, MAX_NODES, MAX_SLOTS, METRICS_AT, METRIC_ENTRY, M_NAME, M_STATE, N_CREATOR, N_KIND,
    N_NAME, N_OPEN, N_PARENT, N_READY, N_STATE, N_TOTAL, N_UNIT, RECORD_TEXT_WORDS, RECORD_WORDS, RING, SLOT_HEADER,
    S_BEAT, S_DONE, S_DROPPED, S_FAILED, S_HEAD, S_ITEM, S_TAIL,
};
use crate::core::error::Error;
use crate::core::node::{encode_total, grow_total};

/// What can go wrong on the worker's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    NoFreeSlot,
    NoSpace(String),
    TooManyNodes,
    TooManyMetrics(String),
    UnknownNode(usize),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFreeSlot => write!(f, "no free worker slot: a run serves at most {MAX_SLOTS} worker processes at once"),
            Self::NoSpace(e) => write!(f, "no room for this worker in the shared-memory segment ({e}); free space in /dev/shm or set MILEPOST_SHM_DIR"),
            Self::TooManyNodes => write!(f, "a run shares at most {MAX_NODES} phases and steps with its workers"),
            Self::TooManyMetrics(n) => write!(f, "cannot add metric {n:?}: a run holds at most {MAX_METRICS} metric names"),
            Self::UnknownNode(n) => write!(f, "no shared node {n} in this run"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Event kinds carried by the ring (the text is the event's fields as JSON).
pub const EVENT_JSON: u64 = 1;

impl Segment {
    /// This process's slot, claimed on first use. The hot path is one load: the process id is
    /// read (a system call) only when claiming.
    #[inline]
    pub fn my_slot(&self) -> Result<usize, WriteError> {
        match self.claimed() {
            Some(s) => Ok(s),
            None => self.claim(std::process::id()),
        }
    }

    #[cold]
    pub(crate) fn claim(&self, pid: u32) -> Result<usize, WriteError> {
        // Free slots first; then slots whose worker exited or died (their counts are already
        // part of the run, and keep adding up).
        for wanted in [FREE, EXITED, DEAD] {
            for slot in 0..MAX_SLOTS {
                let state = self.state_word(slot);
                if state.compare_exchange(wanted, CLAIMING, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                    continue;
                }
                if let Err(e) = self.reserve_slot(slot) {
                    state.store(wanted, Ordering::Release);
                    return Err(WriteError::NoSpace(e.to_string()));
                }
                // The pid first, then ACTIVE: the parent never checks a slot with a stale pid.
                self.pid_word(slot).store(u64::from(pid), Ordering::Release);
                state.store(ACTIVE, Ordering::Release);
                self.set_claimed(Some(slot));
                return Ok(slot);
            }
        }
        Err(WriteError::NoFreeSlot)
    }

    /// Marks the run cancelled, for every worker to see.
    pub fn set_cancelled(&self) {
        self.word(super::segment::H_CANCELLED).store(1, Ordering::Release);
    }

    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.word(super::segment::H_CANCELLED).load(Ordering::Relaxed) == 1
    }

    /// Tells pool `pool`'s workers to stop handing out items (or lets the bit go, `false`,
    /// when the pool is over and its bit may serve another).
    pub fn set_pool_stop(&self, pool: usize, stop: bool) {
        let pool = pool % super::segment::MAX_POOLS;
        let w = self.word(super::segment::H_POOL_STOP + pool / 64);
        let bit = 1_u64 << (pool % 64);
        if stop {
            w.fetch_or(bit, Ordering::AcqRel);
        } else {
            w.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Whether pool `pool` was told to stop (one load: checked before every item).
    #[inline]
    pub fn pool_stopped(&self, pool: usize) -> bool {
        let pool = pool % super::segment::MAX_POOLS;
        self.word(super::segment::H_POOL_STOP + pool / 64).load(Ordering::Relaxed) & (1 << (pool % 64)) != 0
    }

    /// An error once the run has ended (as in the parent). `call` names the refused call.
    #[inline]
    pub fn check_open(&self, call: impl Into<std::borrow::Cow<'static, str>>) -> Result<(), Error> {
        if self.is_ended() {
            return Err(Error::RunEnded { run: String::new(), call: call.into() });
        }
        Ok(())
    }

    /// Marks the run ended: workers' later updates are refused.
    pub fn set_ended(&self) {
        self.word(super::segment::H_ENDED).store(1, Ordering::Release);
    }

    #[inline]
    pub fn is_ended(&self) -> bool {
        self.word(super::segment::H_ENDED).load(Ordering::Relaxed) == 1
    }

    /// Marks this process's slot as cleanly exited (so the parent does not report a death).
    pub fn detach(&self) {
        if let Some(slot) = self.claimed() {
            self.set_claimed(None);
            let _ = self.state_word(slot).compare_exchange(ACTIVE, EXITED, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Adds `n` to a per-node counter of `slot` (single writer: a plain store).
    #[inline]
    pub fn bump(&self, slot: usize, node: usize, field: usize, n: u64) {
        self.add_quietly(slot, node, field, n);
        self.beat(slot);
    }

    /// [`Self::bump`] without the sign of life, for a change that makes one of its own.
    #[inline]
    pub fn add_quietly(&self, slot: usize, node: usize, field: usize, n: u64) {
        let w = self.word(Self::counter(slot, node, field));
        w.store(w.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// A sign of life for the parent's stall detection (one store).
    #[inline]
    pub fn beat(&self, slot: usize) {
        let b = self.word(Self::slot_base(slot) + S_BEAT);
        b.store(b.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// Adds to a float counter (item seconds, metrics) of `slot`.
    pub fn bump_f64(&self, slot: usize, node: usize, field: usize, v: f64) {
        let w = self.word(Self::counter(slot, node, field));
        w.store((f64::from_bits(w.load(Ordering::Relaxed)) + v).to_bits(), Ordering::Relaxed);
    }

    pub fn add_metric(&self, slot: usize, node: usize, metric: usize, v: f64, is_float: bool) {
        self.bump_f64(slot, node, C_METRICS + metric, v);
        self.beat(slot);
        let used = self.word(Self::counter(slot, node, C_USED));
        used.store(used.load(Ordering::Relaxed) | (1 << metric), Ordering::Relaxed);
        if is_float {
            let floats = self.word(Self::counter(slot, node, C_FLOATS));
            floats.store(floats.load(Ordering::Relaxed) | (1 << metric), Ordering::Relaxed);
        }
    }

    /// Counts a finished item on the slot itself (the lane's "done" and "failed").
    pub fn bump_lane(&self, slot: usize, failed: bool) {
        let w = self.word(Self::slot_base(slot) + if failed { S_FAILED } else { S_DONE });
        w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Sets the lane's current item under a seqlock (odd while writing).
    pub fn set_item(&self, slot: usize, name: &str) {
        let at = Self::slot_base(slot) + S_ITEM;
        let seq = self.word(at);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s + 1, Ordering::Release);
        std::sync::atomic::fence(Ordering::Release);
        self.write_text(at + 1, 16, name);
        seq.store(s + 2, Ordering::Release);
    }

    /// Queues an event for the parent; false (and counted) when the ring is full.
    pub fn push_event(&self, slot: usize, kind: u64, node: usize, text: &str) -> bool {
        let base = Self::slot_base(slot);
        let head = self.word(base + S_HEAD).load(Ordering::Relaxed);
        let tail = self.word(base + S_TAIL).load(Ordering::Acquire);
        if head - tail >= RING as u64 {
            let d = self.word(base + S_DROPPED);
            d.store(d.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return false;
        }
        let rec = Self::record(slot, head as usize % RING);
        self.word(rec).store(kind | ((node as u64) << 8), Ordering::Relaxed);
        self.write_text(rec + 1, RECORD_TEXT_WORDS, text);
        self.word(base + S_HEAD).store(head + 1, Ordering::Release);
        self.beat(slot);
        true
    }

    pub fn record(slot: usize, index: usize) -> usize {
        Self::slot_base(slot) + SLOT_HEADER + MAX_NODES * COUNTER_WORDS + index * RECORD_WORDS
    }

    /// Registers a node in the shared table; `creator` 0 is the parent, 1 a worker.
    pub fn register_node(
        &self, parent: usize, kind: u64, name: &str, unit: &str, total: Option<u64>, creator: u64,
    ) -> Result<usize, WriteError> {
        let idx = self.word(H_NODE_COUNT).fetch_add(1, Ordering::AcqRel) as usize;
        if idx >= MAX_NODES {
            self.word(H_NODE_COUNT).fetch_sub(1, Ordering::AcqRel);
            return Err(WriteError::TooManyNodes);
        }
        self.word(Self::node_entry(idx, N_PARENT)).store(parent as u64, Ordering::Relaxed);
        self.word(Self::node_entry(idx, N_KIND)).store(kind, Ordering::Relaxed);
        self.word(Self::node_entry(idx, N_TOTAL)).store(encode_total(total), Ordering::Relaxed);
        self.word(Self::node_entry(idx, N_CREATOR)).store(creator, Ordering::Relaxed);
        self.write_text(Self::node_entry(idx, N_NAME), 16, name);
        self.write_text(Self::node_entry(idx, N_UNIT), 3, unit);
        self.word(Self::node_entry(idx, N_READY)).store(1, Ordering::Release);
        Ok(idx)
    }

    /// The node with this parent, kind and name, registering it if there is none, as one step
    /// for all processes (a lock word in the header; a lock whose holder died is taken over).
    pub fn find_or_register(
        &self, parent: usize, kind: u64, name: &str, unit: &str, total: Option<u64>,
    ) -> Result<(usize, bool), WriteError> {
        let lock = self.word(super::segment::H_REGISTER_LOCK);
        let me = u64::from(std::process::id());
        let mut spins = 0_u32;
        loop {
            match lock.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(holder) => {
                    spins += 1;
                    if spins % 10_000 == 0 && !super::segment::process_alive(holder as u32) {
                        let _ = lock.compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
                    }
                    std::hint::spin_loop();
                    if spins % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            }
        }
        let found = self.find_node(parent, kind, name);
        let out = match found {
            Some(i) => Ok((i, false)),
            None => self.register_node(parent, kind, name, unit, total, 1).map(|i| (i, true)),
        };
        lock.store(0, Ordering::Release);
        out
    }

    /// A ready node with this parent, kind and name (loops entered again reuse their node).
    pub fn find_node(&self, parent: usize, kind: u64, name: &str) -> Option<usize> {
        let count = (self.word(H_NODE_COUNT).load(Ordering::Acquire) as usize).min(MAX_NODES);
        (0..count).find(|&i| {
            self.word(Self::node_entry(i, N_READY)).load(Ordering::Acquire) == 1
                && self.word(Self::node_entry(i, N_PARENT)).load(Ordering::Relaxed) == parent as u64
                && self.word(Self::node_entry(i, N_KIND)).load(Ordering::Relaxed) == kind
                && self.read_text(Self::node_entry(i, N_NAME), 16) == clip_bytes(name, 16)
        })
    }

    pub fn check_node(&self, node: usize) -> Result<(), WriteError> {
        let ready = node < MAX_NODES && self.word(Self::node_entry(node, N_READY)).load(Ordering::Acquire) == 1;
        if ready {
            Ok(())
        } else {
            Err(WriteError::UnknownNode(node))
        }
    }

    /// Sets (None: unknown) or grows a shared node's total.
    pub fn set_total(&self, node: usize, total: Option<u64>) {
        self.word(Self::node_entry(node, N_TOTAL)).store(encode_total(total), Ordering::Relaxed);
    }

    pub fn add_total(&self, node: usize, n: u64) {
        let _ = self
            .word(Self::node_entry(node, N_TOTAL))
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |t| Some(grow_total(t, n)));
    }

    /// A worker opens (starts) or closes (ends, in `state`) a node it uses.
    pub fn open_node(&self, node: usize) {
        self.word(Self::node_entry(node, N_OPEN)).fetch_add(1, Ordering::AcqRel);
    }

    pub fn close_node(&self, node: usize, state: u64) {
        self.word(Self::node_entry(node, N_STATE)).store(state, Ordering::Relaxed);
        let _ = self
            .word(Self::node_entry(node, N_OPEN))
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |o| Some(o.saturating_sub(1)));
    }

    /// The shared index of metric `name`, registering it on first use (remembered by this
    /// process: a worker adds metrics per item, and the table holds the names as text).
    pub fn metric_index(&self, name: &str) -> Result<usize, WriteError> {
        if let Some(i) = self.metric_cache.try_lock().and_then(|c| c.iter().find(|(n, _)| n == name).map(|e| e.1)) {
            return Ok(i);
        }
        let i = self.find_or_add_metric(name)?;
        if let Some(mut cache) = self.metric_cache.try_lock() {
            cache.push((name.to_owned(), i));
        }
        Ok(i)
    }

    fn find_or_add_metric(&self, name: &str) -> Result<usize, WriteError> {
        let wanted = clip_bytes(name, 7);
        for i in 0..MAX_METRICS {
            let at = METRICS_AT + i * METRIC_ENTRY;
            let state = self.word(at + M_STATE);
            // Another process may be writing this entry's name; a process killed while doing
            // so would hold it forever, so the wait is bounded (then the entry is passed over).
            for _ in 0..1_000_000 {
                match state.load(Ordering::Acquire) {
                    2 if self.read_text(at + M_NAME, 7) == wanted => return Ok(i),
                    2 => break,
                    0 => {
                        if state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                            self.write_text(at + M_NAME, 7, name);
                            state.store(2, Ordering::Release);
                            return Ok(i);
                        }
                    }
                    _ => std::hint::spin_loop(),
                }
            }
        }
        Err(WriteError::TooManyMetrics(name.to_owned()))
    }
}
