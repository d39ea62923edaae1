//! The one error type of the core; `rust/py/errors.rs` maps it to Python exceptions.

use std::borrow::Cow;
use std::fmt;

use super::limits::MAX_COUNT;
use super::shm::WriteError;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A count or total below zero (the value as the caller wrote it).
    Negative { what: &'static str, value: String },
    /// A count, total or integer metric above [`MAX_COUNT`] (the value as the caller wrote it).
    TooLarge { what: String, value: String },
    /// A count or total that an addition would take past [`MAX_COUNT`].
    Overflow { what: &'static str, node: String, at: u64, n: u64 },
    /// A metric value that is NaN or infinite.
    NotFinite { metric: String, value: f64 },
    /// More distinct metric names than a run can hold.
    TooManyMetrics { name: String, limit: usize },
    /// An empty metric name or node name.
    EmptyName { what: &'static str },
    /// A name outside a closed set (a node kind, a state, an item status): `expected` lists it.
    Invalid { what: &'static str, expected: &'static str, got: String },
    /// A node id that does not exist in this run.
    UnknownNode { id: usize },
    /// A parent node that belongs to another run, or to a run owned by another process.
    ForeignNode,
    /// More phases and steps than a run can hold.
    TooManyNodes { limit: usize },
    /// An update (a count, a total, a metric, an item, a log line) after the run ended.
    RunEnded { run: String, call: Cow<'static, str> },
    /// The run was cancelled: a loop hands out no more items.
    Cancelled,
    /// The run could not be shared with worker processes (the segment file could not be made).
    Sharing(String),
    /// A worker could not map the segment its parent named.
    Attach { path: String, reason: String },
    /// A worker process could not write into the run's shared memory.
    Shared(WriteError),
    /// Text that is not a snapshot's JSON.
    NotASnapshot(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negative { what, value } => write!(f, "{what} must be >= 0, got {value}"),
            Self::TooLarge { what, value } => {
                write!(f, "{what} must be at most {MAX_COUNT} (2**53 - 1, the largest count), got {value}")
            }
            Self::Overflow { what, node, at, n } => write!(
                f,
                "{what}: {node:?} is at {at}; adding {n} would pass {MAX_COUNT} (2**53 - 1, the largest count)"
            ),
            Self::NotFinite { metric, value } => write!(f, "metric {metric:?} must be a finite number, got {value}"),
            Self::TooManyMetrics { name, limit } => {
                write!(f, "cannot add metric {name:?}: a run holds at most {limit} metric names")
            }
            Self::EmptyName { what } => write!(f, "{what} must not be empty"),
            Self::Invalid { what, expected, got } => write!(f, "{what} must be {expected}, got {got:?}"),
            Self::UnknownNode { id } => write!(f, "no node with id {id} in this run"),
            Self::ForeignNode => {
                write!(f, "the parent node belongs to another run, or to a worker process's view of one")
            }
            Self::TooManyNodes { limit } => write!(
                f,
                "a run holds at most {limit} phases and steps (a loop re-entered under the same name reuses its phase)"
            ),
            Self::RunEnded { run, call } => {
                let which = if run.is_empty() { "the run".to_owned() } else { format!("run {run:?}") };
                write!(
                    f,
                    "{call} after {which} ended: its counts were final when it ended (end the run after the work it counts)"
                )
            }
            Self::Cancelled => write!(f, "the run was cancelled: no more items are handed out"),
            Self::Sharing(e) => write!(f, "cannot share the run with workers: {e}"),
            Self::Attach { path, reason } => write!(f, "cannot attach to {path}: {reason}"),
            Self::Shared(e) => write!(f, "{e}"),
            Self::NotASnapshot(e) => write!(f, "not a milepost snapshot: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        Self::Shared(e)
    }
}

/// Converts a signed count from the API into a `u64` in `0..=MAX_COUNT`, naming `what` in the
/// error.
pub fn non_negative(what: &'static str, value: i64) -> Result<u64, Error> {
    let v = u64::try_from(value).map_err(|_| Error::Negative { what, value: value.to_string() })?;
    within_range(what, v)
}

/// `value` if it is at most [`MAX_COUNT`].
pub fn within_range(what: &str, value: u64) -> Result<u64, Error> {
    if value > MAX_COUNT {
        return Err(Error::TooLarge { what: what.to_owned(), value: value.to_string() });
    }
    Ok(value)
}
