//! The one error type of the core; `rust/py/errors.rs` maps it to Python exceptions.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A count or total below zero.
    Negative { what: &'static str, value: i64 },
    /// A metric value that is NaN or infinite.
    NotFinite { metric: String, value: f64 },
    /// More distinct metric names than a run can hold.
    TooManyMetrics { name: String, limit: usize },
    /// An empty metric name or node name.
    EmptyName { what: &'static str },
    /// A node id that does not exist in this run.
    UnknownNode { id: usize },
    /// More phases and steps than a run can hold.
    TooManyNodes { limit: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negative { what, value } => write!(f, "{what} must be >= 0, got {value}"),
            Self::NotFinite { metric, value } => {
                write!(f, "metric {metric:?} must be a finite number, got {value}")
            }
            Self::TooManyMetrics { name, limit } => {
                write!(f, "cannot add metric {name:?}: a run holds at most {limit} metric names")
            }
            Self::EmptyName { what } => write!(f, "{what} must not be empty"),
            Self::UnknownNode { id } => write!(f, "no node with id {id} in this run"),
            Self::TooManyNodes { limit } => write!(
                f,
                "a run holds at most {limit} phases and steps (a loop re-entered under the same name reuses its phase)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Converts a signed count from the API into a `u64`, naming `what` in the error.
pub fn non_negative(what: &'static str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Negative { what, value })
}
