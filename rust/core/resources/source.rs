//! Where the figures of the run's processes come from: the process tree below the run's pid,
//! and each process's CPU time, memory, I/O and open files.
//!
//! The sampler asks through [`ProcessSource`], so that its arithmetic (rates, totals, what is
//! unknown) is tested with a fake source and a clock that is a parameter. [`SystemSource`] is
//! the real one: on Linux it reads `/proc` itself (`procfs`), elsewhere (or on a kernel that
//! does not list children) it asks `sysinfo` (`portable`); README "Resources" has the
//! measurements that chose this.

use super::portable::Portable;
#[cfg(target_os = "linux")]
use super::procfs::Procfs;

/// What one process showed at one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcReading {
    /// When the process started, in the source's own units: with the pid, its identity, since
    /// pids are reused.
    pub start_time: u64,
    /// CPU time used since it started, user and system, in milliseconds.
    pub cpu_ms: u64,
    /// Resident memory in bytes.
    pub rss: u64,
    /// Bytes read from and written to storage since it started; None when not readable (another
    /// user's process).
    pub io: Option<(u64, u64)>,
    /// Open file descriptors; None when not readable.
    pub open_files: Option<u64>,
}

/// The processes of a run, as the sampler reads them.
pub trait ProcessSource {
    /// `root` and every process below it (children, their children...), parents first, each
    /// with its reading; a process that is gone by the time it is read (or cannot be read at
    /// all) is left out, and so is everything when `root` is gone.
    fn sample(&mut self, root: u32) -> Vec<(u32, ProcReading)>;
}

/// The machine's processes: `/proc` read directly on Linux, `sysinfo` elsewhere.
pub enum SystemSource {
    #[cfg(target_os = "linux")]
    Procfs(Procfs),
    Portable(Box<Portable>),
}

impl Default for SystemSource {
    fn default() -> Self {
        #[cfg(target_os = "linux")]
        if let Some(procfs) = Procfs::new() {
            return Self::Procfs(procfs);
        }
        Self::Portable(Box::default())
    }
}

impl ProcessSource for SystemSource {
    fn sample(&mut self, root: u32) -> Vec<(u32, ProcReading)> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Procfs(p) => p.sample(root),
            Self::Portable(p) => p.sample(root),
        }
    }
}
