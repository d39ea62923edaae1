//! The process tree through `sysinfo`: wherever `/proc` cannot be read directly (macOS, Windows,
//! a Linux kernel built without children lists). It finds children through every process's
//! parent, so it reads every process of the machine at each sample.

use std::collections::HashMap;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::source::{ProcReading, ProcessSource};

pub struct Portable {
    sys: System,
}

impl Default for Portable {
    fn default() -> Self {
        // sysinfo keeps each process's stat file open between refreshes unless told not to:
        // those descriptors would be counted among the job's own open files.
        sysinfo::set_open_files_limit(0);
        Self { sys: System::new() }
    }
}

impl ProcessSource for Portable {
    fn sample(&mut self, root: u32) -> Vec<(u32, ProcReading)> {
        // Every process's parent (a process gone since the last sample leaves sysinfo's
        // list), then the figures of the tree's.
        let parents = ProcessRefreshKind::nothing().without_tasks();
        self.sys.refresh_processes_specifics(ProcessesToUpdate::All, true, parents);
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (pid, p) in self.sys.processes() {
            if let Some(parent) = p.parent() {
                children.entry(parent).or_default().push(*pid);
            }
        }
        let root = Pid::from_u32(root);
        if self.sys.process(root).is_none() {
            return Vec::new();
        }
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            if let Some(kids) = children.get(&tree[i]) {
                for kid in kids {
                    if !tree.contains(kid) {
                        tree.push(*kid);
                    }
                }
            }
            i += 1;
        }
        let figures = ProcessRefreshKind::nothing().without_tasks().with_cpu().with_memory().with_disk_usage();
        self.sys.refresh_processes_specifics(ProcessesToUpdate::Some(&tree), true, figures);
        tree.into_iter()
            .filter_map(|pid| {
                let p = self.sys.process(pid).filter(|p| p.exists())?;
                let io = p.disk_usage();
                let open_files = p.open_files().map(|n| n as u64);
                let reading = ProcReading {
                    start_time: p.start_time(),
                    cpu_ms: p.accumulated_cpu_time(),
                    rss: p.memory(),
                    // sysinfo takes I/O it may not read for none at all; the descriptors, refused
                    // to the same processes (both need the right to trace them), tell.
                    io: open_files.map(|_| (io.total_read_bytes, io.total_written_bytes)),
                    open_files,
                };
                Some((pid.as_u32(), reading))
            })
            .collect()
    }
}
