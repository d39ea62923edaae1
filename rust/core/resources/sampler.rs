//! The arithmetic of a sample: CPU %, I/O rates and totals of the run's process tree from two
//! readings of each process, what is unknown, and what processes that left used.
//!
//! A process is known by its pid and start time (pids are reused). Rates are differences
//! between two readings of the same process over the time between them: CPU % is CPU time
//! used per second of the run's clock, in percent of one core. A process first seen after the
//! first sample started after it (every process of the tree descends from the run's, and a
//! new process's counters start at zero), so all it used counts towards the interval in the
//! totals; its lane shows its own CPU % from its second reading on.

use std::collections::HashMap;

use super::snapshot::{ProcessFigures, Resources};
use super::source::{ProcReading, ProcessSource};

/// The shortest time between two samples that a CPU % is worked out over: CPU time moves in
/// 10 ms ticks, and one tick over a run of 5 ms read 200% a process. A sample closer to the
/// one before keeps the last figure worked out (none yet: none).
pub const MIN_CPU_WINDOW: f64 = 0.05;

/// A process's reading as kept until the next sample.
#[derive(Debug, Clone, Copy)]
struct Seen {
    reading: ProcReading,
    /// CPU milliseconds it had used before sampling started (counted in nobody's CPU time).
    before_ms: u64,
    /// Its last CPU %.
    percent: Option<f64>,
}

/// Samples the tree below one process (the run's).
pub struct Sampler<S> {
    source: S,
    root: u32,
    cores: u32,
    /// The time of the previous sample, and each process then.
    last: Option<f64>,
    seen: HashMap<u32, Seen>,
    /// CPU milliseconds of processes that left the tree, as last seen.
    gone_ms: u64,
    peak_rss: u64,
    /// The tree's last CPU %.
    cpu: Option<f64>,
}

/// One sample: the tree's figures and each process's own.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub resources: Resources,
    pub processes: HashMap<u32, ProcessFigures>,
}

impl<S: ProcessSource> Sampler<S> {
    /// Samples `root`'s tree through `source`, counting `cores` cores for the machine's share.
    pub fn new(source: S, root: u32, cores: u32) -> Self {
        Self { source, root, cores: cores.max(1), last: None, seen: HashMap::new(), gone_ms: 0, peak_rss: 0, cpu: None }
    }

    /// Reads the tree at `now` (seconds on the run's clock) and compares it with the previous
    /// sample.
    pub fn sample(&mut self, now: f64) -> Sample {
        let readings = self.source.sample(self.root);
        let first = self.last.is_none();
        let dt = self.last.map(|t| now - t).filter(|dt| *dt > 0.0);
        let long = dt.filter(|dt| *dt >= MIN_CPU_WINDOW);
        let mut totals = Totals::default();
        let mut processes = HashMap::with_capacity(readings.len());
        let mut seen = HashMap::with_capacity(readings.len());
        for (pid, r) in readings {
            let known = self.seen.remove(&pid).filter(|s| s.reading.start_time == r.start_time);
            let before_ms = match known {
                Some(s) => s.before_ms,
                None if first => r.cpu_ms,
                None => 0,
            };
            // The counters at the previous sample: a process new since then started from zero.
            let (prev_ms, prev_io) = known.map_or((before_ms, Some((0, 0))), |s| (s.reading.cpu_ms, s.reading.io));
            let used_ms = r.cpu_ms.saturating_sub(prev_ms);
            totals.add(&r, used_ms, prev_io, dt);
            totals.since_start_ms += r.cpu_ms.saturating_sub(before_ms);
            let cpu_percent = match long {
                Some(dt) => known.map(|_| percent(used_ms, dt)),
                None => known.and_then(|s| s.percent),
            };
            processes.insert(pid, ProcessFigures { cpu_percent, rss_bytes: Some(r.rss) });
            seen.insert(pid, Seen { reading: r, before_ms, percent: cpu_percent });
        }
        // Processes that left the tree (or were gone before they could be read) keep what they
        // had used when last seen.
        for s in self.seen.values() {
            self.gone_ms += s.reading.cpu_ms.saturating_sub(s.before_ms);
        }
        self.seen = seen;
        self.last = Some(now);
        self.peak_rss = self.peak_rss.max(totals.rss);
        let any = totals.read > 0;
        let cpu = match long {
            Some(dt) => Some(percent(totals.used_ms, dt)),
            None => self.cpu,
        }
        .filter(|_| any);
        self.cpu = cpu;
        let resources = Resources {
            at: now,
            processes: totals.read,
            unreadable: totals.unreadable,
            cpu_percent: cpu,
            machine_cpu_percent: cpu.map(|c| c / f64::from(self.cores)),
            cores: self.cores,
            rss_bytes: any.then_some(totals.rss),
            read_bytes_per_second: totals.io_rate(dt, |io| io.0),
            write_bytes_per_second: totals.io_rate(dt, |io| io.1),
            open_files: (totals.files_known > 0).then_some(totals.files),
            cpu_seconds: (totals.since_start_ms + self.gone_ms) as f64 / 1000.0,
            peak_rss_bytes: self.peak_rss,
            ..Resources::default()
        };
        Sample { resources, processes }
    }
}

/// CPU milliseconds used over `dt` seconds, in percent of one core.
fn percent(ms: u64, dt: f64) -> f64 {
    ms as f64 / 10.0 / dt
}

/// Sums over the processes of one sample.
#[derive(Debug, Default)]
struct Totals {
    read: u32,
    unreadable: u32,
    rss: u64,
    /// CPU milliseconds used since the previous sample.
    used_ms: u64,
    /// CPU milliseconds used since sampling started, by the processes in the tree now.
    since_start_ms: u64,
    /// Bytes read and written since the previous sample, once a process could tell.
    io: Option<(u64, u64)>,
    files: u64,
    files_known: u32,
}

impl Totals {
    fn add(&mut self, r: &ProcReading, used_ms: u64, prev_io: Option<(u64, u64)>, dt: Option<f64>) {
        self.read += 1;
        self.rss += r.rss;
        if r.io.is_none() || r.open_files.is_none() {
            self.unreadable += 1;
        }
        if let Some(files) = r.open_files {
            self.files += files;
            self.files_known += 1;
        }
        if dt.is_none() {
            return; // the first sample: nothing to compare with
        }
        self.used_ms += used_ms;
        if let (Some(now), Some(prev)) = (r.io, prev_io) {
            let sum = self.io.get_or_insert((0, 0));
            sum.0 += now.0.saturating_sub(prev.0);
            sum.1 += now.1.saturating_sub(prev.1);
        }
    }

    fn io_rate(&self, dt: Option<f64>, pick: impl Fn((u64, u64)) -> u64) -> Option<f64> {
        Some(pick(self.io?) as f64 / dt?)
    }
}
