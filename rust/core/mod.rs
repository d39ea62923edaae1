//! The progress model, free of any Python: counters, the rate/ETA window, the run tree, the
//! counting handle and the snapshot. Everything here is testable with
//! `cargo test --no-default-features`.

pub mod chunk_text;
pub mod clock;
pub mod cost;
pub mod counter;
pub mod error;
pub mod eta;
pub mod handle;
pub mod kinds;
pub mod lanes;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod records;
pub mod resources;
pub mod rows;
pub mod run;
pub mod schema;
pub mod sharing;
pub mod shm;
pub mod snapshot;
pub mod tail;
pub mod text;
pub mod tracked;
