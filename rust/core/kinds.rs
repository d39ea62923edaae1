//! The closed sets of names of the model: node kinds and states, item statuses, lane states.
//!
//! Each is an enum in Rust and its lowercase name everywhere else (the snapshot JSON and its
//! schema, the history, the Python API), so that a misspelt state is a compile error here and
//! an `InvalidValueError` naming the allowed values at the boundary, never a silent mismatch.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::Error;

/// `as_str`, `Display`, and parsing by name (`what` and `expected` name the value in errors).
/// The names must be serde's (`rename_all = "lowercase"`); `names_match_serde` checks it.
macro_rules! named {
    ($ty:ident, $what:literal, $expected:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name the snapshot, the history and the Python API use.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }

            /// The value called `name`, or an error naming the allowed names.
            pub fn parse(name: &str) -> Result<Self, Error> {
                match name {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(Error::Invalid { what: $what, expected: $expected, got: name.to_owned() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What a node of the tree is: the run itself, a phase, or a step inside a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum NodeKind {
    Run,
    Phase,
    Step,
}

named!(NodeKind, "node kind", "'run', 'phase' or 'step'", { Run => "run", Phase => "phase", Step => "step" });

impl NodeKind {
    /// A kind a caller may add under a node: a phase or a step (the run is made with the run).
    pub fn parse_child(name: &str) -> Result<Self, Error> {
        match Self::parse(name) {
            Ok(Self::Run) | Err(_) => {
                Err(Error::Invalid { what: "node kind", expected: "'phase' or 'step'", got: name.to_owned() })
            }
            Ok(kind) => Ok(kind),
        }
    }

    /// The kind's code in the shared segment's node table.
    pub fn code(self) -> u64 {
        match self {
            Self::Run => 0,
            Self::Phase => 1,
            Self::Step => 2,
        }
    }

    pub fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Run,
            1 => Self::Phase,
            _ => Self::Step,
        }
    }
}

/// Where a node is in its life. The discriminants are stored in atomics and in the shared
/// segment (a worker writes the end state of a node it closes), so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
#[repr(u8)]
pub enum NodeState {
    Pending = 0,
    Running = 1,
    Completed = 2,
    Failed = 3,
    Cancelled = 4,
}

named!(NodeState, "state", "'pending', 'running', 'completed', 'failed' or 'cancelled'", {
    Pending => "pending", Running => "running", Completed => "completed", Failed => "failed",
    Cancelled => "cancelled",
});

impl NodeState {
    /// A state a node can end in (`end()`): not pending, not running.
    pub fn parse_end(name: &str) -> Result<Self, Error> {
        match Self::parse(name) {
            Ok(s) if s.is_end() => Ok(s),
            _ => Err(Error::Invalid {
                what: "end state",
                expected: "'completed', 'failed' or 'cancelled'",
                got: name.to_owned(),
            }),
        }
    }

    pub fn is_end(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Running,
            2 => Self::Completed,
            3 => Self::Failed,
            4 => Self::Cancelled,
            _ => Self::Pending,
        }
    }
}

// Text code (the frame layout) reads a state as the name it is shown by: `state == "running"`,
// `match &*state { "running" => ... }`.
impl PartialEq<&str> for NodeState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::ops::Deref for NodeState {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum ItemStatus {
    Done,
    Failed,
    Skipped,
    // Interrupted (Ctrl-C): left flight without being counted.
    Cancelled,
}

named!(ItemStatus, "item status", "'done', 'failed', 'skipped' or 'cancelled'", {
    Done => "done", Failed => "failed", Skipped => "skipped", Cancelled => "cancelled",
});

/// What a worker lane is doing. Thread lanes are idle, busy or finished; a worker process's
/// lane is also stalled (no sign of life for a while) or died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
#[repr(u8)]
pub enum LaneState {
    Idle = 0,
    Busy = 1,
    Finished = 2,
    Stalled = 3,
    Died = 4,
}

named!(LaneState, "lane state", "'idle', 'busy', 'finished', 'stalled' or 'died'", {
    Idle => "idle", Busy => "busy", Finished => "finished", Stalled => "stalled", Died => "died",
});

impl LaneState {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Busy,
            2 => Self::Finished,
            3 => Self::Stalled,
            4 => Self::Died,
            _ => Self::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Serialize + fmt::Display + Copy>(all: &[T]) {
        for v in all {
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
        }
    }

    #[test]
    fn names_match_serde() {
        check(NodeKind::ALL);
        check(NodeState::ALL);
        check(ItemStatus::ALL);
        check(LaneState::ALL);
        for s in NodeState::ALL {
            assert_eq!(NodeState::from_u8(*s as u8), *s);
        }
        for s in LaneState::ALL {
            assert_eq!(LaneState::from_u8(*s as u8), *s);
        }
    }

    #[test]
    fn parsing_names_the_allowed_values() {
        assert_eq!(NodeKind::parse_child("phase"), Ok(NodeKind::Phase));
        let e = NodeKind::parse_child("run").unwrap_err().to_string();
        assert_eq!(e, "node kind must be 'phase' or 'step', got \"run\"");
        let e = NodeState::parse_end("running").unwrap_err().to_string();
        assert_eq!(e, "end state must be 'completed', 'failed' or 'cancelled', got \"running\"");
        assert!(ItemStatus::parse("ok").is_err());
        assert!(NodeState::Running == "running");
    }
}
