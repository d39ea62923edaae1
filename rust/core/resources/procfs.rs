//! The process tree from Linux's `/proc`, read directly: each process's `stat` (CPU time,
//! resident memory, start time, threads), the kernel's list of each thread's children, `io`
//! and the size of the `fd` directory: three small reads and a `stat` a process, against
//! `sysinfo`'s six reads and a listing of the descriptors, plus a listing of every process of
//! the machine at each refresh (README, "Resources": measured).

use std::fs;
use std::io::Read;

use super::source::{ProcReading, ProcessSource};

/// Reads `/proc`; made once the kernel is seen to list children.
pub struct Procfs {
    /// Clock ticks a second (`stat`'s CPU times), and bytes a page (its resident set).
    ticks: u64,
    page: u64,
    buf: Vec<u8>,
}

impl Procfs {
    /// None when the kernel does not list children (built without `CONFIG_PROC_CHILDREN`) or
    /// `/proc` cannot be read.
    pub fn new() -> Option<Self> {
        let me = std::process::id();
        if !std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists() {
            return None;
        }
        let (ticks, page) = system_units()?;
        Some(Self { ticks, page, buf: Vec::with_capacity(1024) })
    }

    /// The text of a small `/proc` file, or None if it cannot be read (gone, or refused).
    fn read(&mut self, path: &str) -> Option<&str> {
        self.buf.clear();
        fs::File::open(path).ok()?.read_to_end(&mut self.buf).ok()?;
        std::str::from_utf8(&self.buf).ok()
    }

    /// A process's reading and its thread count, from its `stat` (the fields after the
    /// command, whose name may hold spaces and parentheses: everything after the last ')').
    fn stat(&mut self, pid: u32) -> Option<(ProcReading, u64)> {
        let (ticks, page) = (self.ticks, self.page);
        let text = self.read(&format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_ascii_whitespace().collect();
        // Numbered as in proc(5) minus 3: utime 14, stime 15, num_threads 20, starttime 22, rss 24.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let reading = ProcReading {
            start_time: field(22)?,
            cpu_ms: (field(14)? + field(15)?) * 1000 / ticks,
            rss: field(24)? * page,
            io: None,
            open_files: None,
        };
        Some((reading, field(20)?))
    }

    /// Bytes read from and written to storage; None for another user's process.
    fn io(&mut self, pid: u32) -> Option<(u64, u64)> {
        let text = self.read(&format!("/proc/{pid}/io"))?;
        let value = |key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim_start_matches(':').trim().parse().ok())
        };
        Some((value("read_bytes")?, value("write_bytes")?))
    }

    /// The children of every thread of `pid` (`threads` of them), appended to `tree`.
    fn children(&mut self, pid: u32, threads: u64, tree: &mut Vec<u32>) {
        let mut add = |text: &str| tree.extend(text.split_ascii_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        if threads == 1 {
            // One thread: its id is the process's, no listing needed.
            if let Some(text) = self.read(&format!("/proc/{pid}/task/{pid}/children")) {
                add(text);
            }
            return;
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return };
        for task in tasks.flatten() {
            // A thread that ended since the listing has no children to read: skipped.
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                add(&text);
            }
        }
    }
}

impl ProcessSource for Procfs {
    fn sample(&mut self, root: u32) -> Vec<(u32, ProcReading)> {
        let mut tree = vec![root];
        let mut out = Vec::new();
        let mut i = 0;
        while i < tree.len() {
            let pid = tree[i];
            i += 1;
            // Gone since its parent listed it: nothing below it either.
            let Some((mut reading, threads)) = self.stat(pid) else { continue };
            self.children(pid, threads, &mut tree);
            reading.io = self.io(pid);
            reading.open_files = open_files(pid);
            out.push((pid, reading));
        }
        out
    }
}

/// The descriptors `pid` has open: the size Linux (6.2 and later) gives its `fd` directory, one
/// `stat` instead of a listing; a listing where the size says nothing (0: older kernels). None
/// when refused (another user's process) or gone.
fn open_files(pid: u32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    match fs::metadata(&dir).ok()?.len() {
        0 => fs::read_dir(&dir).ok().map(|d| d.count() as u64),
        n => Some(n),
    }
}

/// Clock ticks a second and bytes a page, as this system counts them in `/proc`.
#[allow(unsafe_code)]
fn system_units() -> Option<(u64, u64)> {
    // SAFETY: sysconf takes no pointer and only reads the system's configuration.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    Some((u64::try_from(ticks).ok().filter(|t| *t > 0)?, u64::try_from(page).ok().filter(|p| *p > 0)?))
}
