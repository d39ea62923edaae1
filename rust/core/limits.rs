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
