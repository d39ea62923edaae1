//! Resources beside the progress: CPU, memory, I/O and open files of the run's process tree
//! (the run's process, its worker processes and everything below them), each worker process's
//! own CPU and memory, and the free space of the filesystems the run writes to.
//!
//! A thread of its own samples them (`thread`), never the job's threads and never with the
//! GIL, into the run's [`ResourceBoard`], which every snapshot reads. `source` reads the
//! processes (`procfs` on Linux, `portable` through sysinfo elsewhere), `sampler` turns two
//! readings into rates and totals, `disk` watches free space.

mod disk;
mod portable;
#[cfg(target_os = "linux")]
mod procfs;
mod sampler;
mod snapshot;
mod source;
#[cfg(test)]
mod tests;
mod thread;

use std::collections::HashMap;
use std::path::PathBuf;

use parking_lot::Mutex;

use super::error::Error;

pub use disk::DiskWatch;
pub use sampler::{Sample, Sampler};
pub use snapshot::{DiskSpace, ProcessFigures, Resources};
pub use source::{ProcReading, ProcessSource, SystemSource};
pub use thread::ResourceSampler;

/// Seconds between samples unless told otherwise.
pub const DEFAULT_INTERVAL: f64 = 1.0;
/// The free share of a filesystem below which the run warns, unless told otherwise.
pub const DEFAULT_DISK_WARN: f64 = 0.05;
/// The interval's bounds: often enough to follow a job, rarely enough to cost it nothing.
pub const MIN_INTERVAL: f64 = 0.1;
pub const MAX_INTERVAL: f64 = 3600.0;

/// How a run samples its resources (`Run(resources={...})`), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceOptions {
    /// Seconds between samples.
    pub interval: f64,
    /// A filesystem the run writes to warns once its free share is below this (0 to 1).
    pub disk_warn: f64,
    /// The directories the run writes to.
    pub dirs: Vec<PathBuf>,
}

impl ResourceOptions {
    pub fn new(interval: f64, disk_warn: f64, dirs: Vec<PathBuf>) -> Result<Self, Error> {
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(Error::Invalid {
                what: "resources interval",
                expected: "a number of seconds from 0.1 to 3600",
                got: interval.to_string(),
            });
        }
        if !(0.0..1.0).contains(&disk_warn) {
            return Err(Error::Invalid {
                what: "resources disk_warn",
                expected: "a share of the disk from 0 to below 1 (0.05 is 5%)",
                got: disk_warn.to_string(),
            });
        }
        Ok(Self { interval, disk_warn, dirs })
    }
}

/// The latest sample of a run's resources, where the sampler thread leaves it and snapshots
/// read it, with the warnings not yet handed to the run's observers.
#[derive(Debug, Default)]
pub struct ResourceBoard {
    state: Mutex<BoardState>,
}

#[derive(Debug, Default)]
struct BoardState {
    latest: Option<Resources>,
    processes: HashMap<u32, ProcessFigures>,
    warnings: Vec<String>,
}

/// Warnings kept for the observers at most (a run warns once per filesystem, and once if
/// sampling stops: this only bounds a run nobody collects them from).
const MAX_WARNINGS: usize = 64;

impl ResourceBoard {
    /// A new sample replaces the previous one.
    pub fn publish(&self, sample: Sample) {
        let mut state = self.state.lock();
        state.latest = Some(sample.resources);
        state.processes = sample.processes;
    }

    /// The latest sample of the tree, if any.
    pub fn latest(&self) -> Option<Resources> {
        self.state.lock().latest.clone()
    }

    /// The figures of each of `pids` (None for a process not in the latest sample).
    pub fn processes(&self, pids: &[u32]) -> Vec<Option<ProcessFigures>> {
        let state = self.state.lock();
        pids.iter().map(|p| state.processes.get(p).copied()).collect()
    }

    /// A warning for the run's observers (a log line of level "warning").
    pub fn warn(&self, message: String) {
        let mut state = self.state.lock();
        if state.warnings.len() < MAX_WARNINGS {
            state.warnings.push(message);
        }
    }

    /// Sampling stopped before the run ended (`why`): the snapshot says so, figures of
    /// processes are unknown from now on, and the observers get a warning.
    pub fn fail(&self, why: &str) {
        let mut state = self.state.lock();
        let latest = state.latest.get_or_insert_with(Resources::default);
        latest.error = Some(why.to_owned());
        latest.cpu_percent = None;
        latest.machine_cpu_percent = None;
        latest.read_bytes_per_second = None;
        latest.write_bytes_per_second = None;
        state.processes.clear();
        state.warnings.push(format!("resource sampling stopped: {why}"));
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().warnings)
    }
}
