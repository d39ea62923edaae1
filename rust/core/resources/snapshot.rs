//! What a snapshot says of the run's resources (its `resources` object and each worker
//! lane's `pid`, `cpu_percent` and `rss_bytes`): serde types, part of the published schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The run's process tree and the filesystems it writes to, as of the latest sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "resources")]
pub struct Resources {
    /// Seconds between two samples.
    pub interval: f64,
    /// When the sample was taken, in seconds on the run's clock (the snapshot's `now` is later).
    pub at: f64,
    /// Processes of the run's tree that were read: the run's own, its worker processes and
    /// every process below them.
    pub processes: u32,
    /// Processes of the tree whose I/O or open files could not be read (another user's): those
    /// totals leave them out.
    pub unreadable: u32,
    /// CPU use of the tree since the previous sample, in percent of one core (250 is two and a
    /// half cores busy); null until two samples were taken.
    pub cpu_percent: Option<f64>,
    /// The same in percent of the machine's cores (`cores` of them), 0 to 100.
    pub machine_cpu_percent: Option<f64>,
    /// The cores the run may use (the machine's, or fewer when its affinity or quota says so).
    pub cores: u32,
    /// Resident memory of the tree, in bytes (shared pages are counted in each process).
    pub rss_bytes: Option<u64>,
    /// Bytes the tree read from storage per second since the previous sample.
    pub read_bytes_per_second: Option<f64>,
    /// Bytes the tree wrote to storage per second since the previous sample.
    pub write_bytes_per_second: Option<f64>,
    /// Open file descriptors of the tree.
    pub open_files: Option<u64>,
    /// CPU seconds the tree used since sampling started (a process that exited counts with what
    /// it had used when last sampled).
    pub cpu_seconds: f64,
    /// The largest `rss_bytes` sampled so far.
    pub peak_rss_bytes: u64,
    /// Free space of each filesystem the run writes to (its history, its output files).
    pub disks: Vec<DiskSpace>,
    /// Why sampling stopped, when it did before the run ended; null while it goes on.
    pub error: Option<String>,
}

/// Free space of the filesystem holding a directory the run writes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "disk_space")]
pub struct DiskSpace {
    /// The directory.
    pub path: String,
    /// Bytes free for the run's user; null when the filesystem cannot be read (gone).
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    /// `free_bytes / total_bytes`, 0 to 1.
    #[schemars(range(min = 0, max = 1))]
    pub free_fraction: Option<f64>,
    /// Below the run's warning threshold (`Run(resources={"disk_warn": ...})`).
    pub low: bool,
}

/// A worker process's own figures, shown on its lane.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
}
