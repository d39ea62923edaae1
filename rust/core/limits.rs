//! Every limit of the model, in one place. The Python package reads them from the extension
//! (`milepost._milepost.MAX_COUNT`, ...), never from a copy.

/// The largest count, total or integer metric value: 2**53 - 1. Every reader agrees on it:
/// the core's counters, the snapshot, `SQLite`'s 64-bit integers, and JSON readers that hold
/// numbers as doubles (JavaScript, the I-JSON profile, RFC 7493). A call that would go past
/// it is refused with an error naming the value; sums up the tree stop at it.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Longest node, lane or item name kept; longer ones are clipped (the screen clips further).
pub const MAX_NAME_CHARS: usize = 256;
/// Longest error or log text kept.
pub const MAX_ERROR_CHARS: usize = 2000;
/// Most phases and steps in one run: each has a rate window, so memory stays bounded.
pub const MAX_NODES: usize = 10_000;
/// Most phases and steps a run shares with its worker processes (the segment's node table);
/// a node past it counts in the parent only.
pub use super::shm::segment::MAX_NODES as MAX_SHARED_NODES;
/// Most worker processes counting into one run at once (the segment's slots).
pub use super::shm::segment::MAX_SLOTS as MAX_WORKER_PROCESSES;
/// Longest event (its JSON, in bytes) a worker process can send its parent.
pub use super::shm::segment::RECORD_BYTES;

/// What the Python package reads from the extension (`milepost._milepost.<name>`), by name:
/// every limit it needs, so that it never keeps a copy that could drift.
pub const EXPORTED: [(&str, u64); 9] = [
    ("SCHEMA_VERSION", super::snapshot::SCHEMA_VERSION as u64),
    ("MAX_COUNT", MAX_COUNT),
    ("MAX_NAME_CHARS", MAX_NAME_CHARS as u64),
    ("MAX_ERROR_CHARS", MAX_ERROR_CHARS as u64),
    ("MAX_NODES", MAX_NODES as u64),
    ("MAX_SHARED_NODES", MAX_SHARED_NODES as u64),
    ("MAX_WORKER_PROCESSES", MAX_WORKER_PROCESSES as u64),
    ("MAX_METRICS", super::metrics::MAX_METRICS as u64),
    ("RECORD_BYTES", RECORD_BYTES as u64),
];
