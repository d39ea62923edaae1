//! Worker processes share the run through a memory-mapped segment: each worker counts into a
//! slot of its own at the cost of an in-process update, and the parent sums the slots into
//! the snapshot. `segment` holds the layout, `writer` the worker's side, `reader` the parent's.

mod counting;
pub mod reader;
pub mod segment;
pub mod writer;

#[cfg(test)]
mod tests;

pub use reader::{NodeInfo, SharedSums, SlotView};
pub use segment::{process_alive, remove_stale, Segment, SegmentError};
pub use writer::WriteError;
