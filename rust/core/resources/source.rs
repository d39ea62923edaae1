//! Where the figures of the run's processes come from: the process tree below the run's pid
//! and each process's CPU time, memory, I/O and open files, read with `sysinfo`.
//!
//! The sampler asks through [`ProcessSource`], so that its arithmetic (rates, totals, what is
//! unknown) is tested with a fake source and a clock that is a parameter.

use std::collections::HashMap;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// What one process showed at one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcReading {
    /// When the process started (seconds since the epoch): with the pid, its identity, since
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
    /// `root` and every process below it (children, their children...), parents first; just
    /// `root` when its children cannot be listed, nothing when `root` is gone.
    fn tree(&mut self, root: u32) -> Vec<u32>;
    /// Readings of `pids`; a process that is gone (or cannot be read at all) is left out.
    fn read(&mut self, pids: &[u32]) -> HashMap<u32, ProcReading>;
}

/// The real processes, through `sysinfo` (and `/proc/<pid>/task/<tid>/children` on Linux).
pub struct SystemSource {
    sys: System,
    /// Whether each process's `/proc/<pid>/io` can be read (asked once per process: sysinfo
    /// reads a refused file as no I/O at all, which would pass for a true zero).
    io_readable: HashMap<(u32, u64), bool>,
}

impl Default for SystemSource {
    fn default() -> Self {
        // sysinfo keeps each process's stat file open between refreshes unless told not to:
        // those descriptors would be counted among the job's own open files.
        sysinfo::set_open_files_limit(0);
        Self { sys: System::new(), io_readable: HashMap::new() }
    }
}

/// sysinfo's list keeps processes it was never asked about again; past this many beyond the
/// tree it is started afresh, so that a long run's memory stays bounded.
const STALE_PROCESSES: usize = 256;

impl ProcessSource for SystemSource {
    fn tree(&mut self, root: u32) -> Vec<u32> {
        #[cfg(target_os = "linux")]
        if let Some(tree) = linux::tree(root) {
            return tree;
        }
        self.tree_from_parents(root)
    }

    fn read(&mut self, pids: &[u32]) -> HashMap<u32, ProcReading> {
        if self.sys.processes().len() > pids.len() + STALE_PROCESSES {
            self.sys = System::new();
        }
        let wanted: Vec<Pid> = pids.iter().map(|&p| Pid::from_u32(p)).collect();
        let kind = ProcessRefreshKind::nothing().without_tasks().with_cpu().with_memory().with_disk_usage();
        self.sys.refresh_processes_specifics(ProcessesToUpdate::Some(&wanted), true, kind);
        let mut out = HashMap::with_capacity(pids.len());
        for &pid in pids {
            let Some(p) = self.sys.process(Pid::from_u32(pid)).filter(|p| p.exists()) else { continue };
            let start_time = p.start_time();
            let readable = *self.io_readable.entry((pid, start_time)).or_insert_with(|| io_readable(pid));
            let io = p.disk_usage();
            out.insert(
                pid,
                ProcReading {
                    start_time,
                    cpu_ms: p.accumulated_cpu_time(),
                    rss: p.memory(),
                    io: readable.then_some((io.total_read_bytes, io.total_written_bytes)),
                    open_files: p.open_files().map(|n| n as u64),
                },
            );
        }
        self.io_readable.retain(|(pid, start), _| out.get(pid).is_some_and(|r| r.start_time == *start));
        out
    }
}

impl SystemSource {
    /// The tree from every process's parent (where children cannot be listed directly): reads
    /// every process of the machine, so it costs more.
    fn tree_from_parents(&mut self, root: u32) -> Vec<u32> {
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().without_tasks(),
        );
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in self.sys.processes() {
            if let Some(parent) = p.parent() {
                children.entry(parent.as_u32()).or_default().push(pid.as_u32());
            }
        }
        if self.sys.process(Pid::from_u32(root)).is_none() {
            return Vec::new();
        }
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            if let Some(kids) = children.get(&tree[i]) {
                tree.extend(kids.iter().filter(|k| !tree.contains(k)).copied().collect::<Vec<_>>());
            }
            i += 1;
        }
        tree
    }
}

#[cfg(target_os = "linux")]
fn io_readable(pid: u32) -> bool {
    std::fs::File::open(format!("/proc/{pid}/io")).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn io_readable(_pid: u32) -> bool {
    true
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::OnceLock;

    /// The tree below `root` from the kernel's list of each thread's children (one small read
    /// per thread of the tree, instead of one per process of the machine). None when the
    /// kernel does not list children (built without `CONFIG_PROC_CHILDREN`).
    pub fn tree(root: u32) -> Option<Vec<u32>> {
        static LISTED: OnceLock<bool> = OnceLock::new();
        let me = std::process::id();
        if !*LISTED.get_or_init(|| std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()) {
            return None;
        }
        if !std::path::Path::new(&format!("/proc/{root}")).exists() {
            return Some(Vec::new());
        }
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let pid = tree[i];
            i += 1;
            // Gone since its parent listed it: nothing below it either.
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                // A thread that ended since the listing has no children to read: skipped.
                if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                    tree.extend(text.split_ascii_whitespace().filter_map(|c| c.parse::<u32>().ok()));
                }
            }
        }
        Some(tree)
    }
}
