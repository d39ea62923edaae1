use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::core::clock::Clock;
use crate::core::run::RunCore;

/// A process tree set by the test: `tree` is listed, `readings` are what can be read.
#[derive(Default, Clone)]
struct Fake {
    tree: Vec<u32>,
    readings: HashMap<u32, ProcReading>,
    panic: bool,
}

impl ProcessSource for Fake {
    fn sample(&mut self, _root: u32) -> Vec<(u32, ProcReading)> {
        assert!(!self.panic, "the fake source broke");
        self.tree.iter().filter_map(|p| self.readings.get(p).map(|r| (*p, *r))).collect()
    }
}

/// Equal up to rounding (the figures here are exact, but floats are compared this way).
fn close(a: f64, b: f64, why: &str) {
    assert!((a - b).abs() < 1e-9, "{a} != {b} {why}");
}

fn proc(cpu_ms: u64, rss: u64) -> ProcReading {
    ProcReading { start_time: 100, cpu_ms, rss, io: Some((0, 0)), open_files: Some(5) }
}

/// A sampler over a fake whose readings the test changes between samples.
struct Rig {
    sampler: Sampler<Shared>,
    fake: Arc<parking_lot::Mutex<Fake>>,
}

#[derive(Clone)]
struct Shared(Arc<parking_lot::Mutex<Fake>>);

impl ProcessSource for Shared {
    fn sample(&mut self, root: u32) -> Vec<(u32, ProcReading)> {
        self.0.lock().sample(root)
    }
}

impl Rig {
    fn new(cores: u32) -> Self {
        let fake = Arc::new(parking_lot::Mutex::new(Fake::default()));
        Self { sampler: Sampler::new(Shared(Arc::clone(&fake)), 1, cores), fake }
    }
    fn set(&self, procs: &[(u32, ProcReading)]) {
        let mut f = self.fake.lock();
        f.tree = procs.iter().map(|p| p.0).collect();
        f.readings = procs.iter().copied().collect();
    }
}

#[test]
fn cpu_is_time_used_per_second_of_the_clock_and_the_first_sample_has_none() {
    let mut rig = Rig::new(4);
    rig.set(&[(1, proc(5_000, 100)), (2, proc(0, 300))]);
    let first = rig.sampler.sample(10.0);
    assert_eq!(first.resources.cpu_percent, None, "nothing to compare with yet");
    assert_eq!(first.resources.rss_bytes, Some(400));
    assert_eq!(first.resources.open_files, Some(10));
    close(first.resources.cpu_seconds, 0.0, "CPU used before sampling is nobody's");
    assert_eq!(first.processes[&2].cpu_percent, None);
    assert_eq!(first.processes[&2].rss_bytes, Some(300));

    // Two seconds later: the run's process used 0.5 s, the worker 2 s (one core, busy).
    let mut w = proc(2_000, 310);
    w.io = Some((4_000, 1_000));
    rig.set(&[(1, proc(5_500, 100)), (2, w)]);
    let s = rig.sampler.sample(12.0);
    assert_eq!(s.resources.cpu_percent, Some(125.0));
    assert_eq!(s.resources.machine_cpu_percent, Some(125.0 / 4.0));
    assert_eq!(s.processes[&2].cpu_percent, Some(100.0));
    assert_eq!(s.processes[&1].cpu_percent, Some(25.0));
    assert_eq!(s.resources.read_bytes_per_second, Some(2_000.0));
    assert_eq!(s.resources.write_bytes_per_second, Some(500.0));
    close(s.resources.cpu_seconds, 2.5, "");
    assert_eq!(s.resources.peak_rss_bytes, 410);
    assert_eq!(s.resources.processes, 2);
}

#[test]
fn cpu_over_a_window_shorter_than_the_counters_tick_is_not_a_figure() {
    // CPU time moves in 10 ms ticks: one tick over a run of 5 ms read 200% a process (a short
    // run's end showed `CPU 1794%` on two cores).
    let mut rig = Rig::new(2);
    rig.set(&[(1, proc(1_000, 100))]);
    rig.sampler.sample(0.0);
    rig.set(&[(1, proc(1_010, 100))]);
    let s = rig.sampler.sample(0.005);
    assert_eq!(s.resources.cpu_percent, None, "a run of 5 ms has no CPU % to give");
    assert_eq!(s.processes[&1].cpu_percent, None);
    close(s.resources.cpu_seconds, 0.01, "its CPU time is still counted");
    // A second on, then a sample just after: that one keeps the second's figure.
    rig.set(&[(1, proc(1_510, 100))]);
    let s = rig.sampler.sample(1.005);
    let second = s.resources.cpu_percent.expect("a second is a window");
    close(second, 50.0, "");
    rig.set(&[(1, proc(1_520, 100))]);
    let s = rig.sampler.sample(1.008);
    assert_eq!(s.resources.cpu_percent, Some(second));
    assert_eq!(s.resources.machine_cpu_percent, Some(second / 2.0));
    assert_eq!(s.processes[&1].cpu_percent, Some(second));
    close(s.resources.cpu_seconds, 0.52, "");
}

#[test]
fn a_process_new_since_the_last_sample_counts_all_it_used_in_the_total() {
    let mut rig = Rig::new(2);
    rig.set(&[(1, proc(0, 100))]);
    rig.sampler.sample(0.0);
    rig.set(&[(1, proc(0, 100)), (7, proc(800, 50))]);
    let s = rig.sampler.sample(1.0);
    assert_eq!(s.resources.cpu_percent, Some(80.0));
    assert_eq!(s.processes[&7].cpu_percent, None, "its own rate needs two readings of it");
    close(s.resources.cpu_seconds, 0.8, "");
}

#[test]
fn a_process_that_leaves_or_vanishes_leaves_the_totals_but_keeps_its_cpu_time() {
    let mut rig = Rig::new(2);
    rig.set(&[(1, proc(0, 100)), (2, proc(0, 900))]);
    rig.sampler.sample(0.0);
    rig.set(&[(1, proc(0, 100)), (2, proc(1_000, 900))]);
    rig.sampler.sample(1.0);
    // Listed, then gone before it could be read: as if it had left.
    {
        let mut f = rig.fake.lock();
        f.readings.remove(&2);
    }
    let s = rig.sampler.sample(2.0);
    assert_eq!(s.resources.processes, 1);
    assert_eq!(s.resources.rss_bytes, Some(100));
    assert_eq!(s.resources.cpu_percent, Some(0.0));
    assert!(!s.processes.contains_key(&2));
    close(s.resources.cpu_seconds, 1.0, "what it used while sampled stays the run's");
    assert_eq!(s.resources.peak_rss_bytes, 1_000);
}

#[test]
fn a_reused_pid_is_a_new_process() {
    let mut rig = Rig::new(1);
    rig.set(&[(1, proc(0, 1)), (2, proc(9_000, 1))]);
    rig.sampler.sample(0.0);
    let reborn = ProcReading { start_time: 200, ..proc(300, 1) };
    rig.set(&[(1, proc(0, 1)), (2, reborn)]);
    let s = rig.sampler.sample(1.0);
    assert_eq!(s.resources.cpu_percent, Some(30.0), "not 300 - 9000");
    assert_eq!(s.processes[&2].cpu_percent, None);
}

#[test]
fn what_cannot_be_read_is_unknown_and_counted() {
    let mut rig = Rig::new(1);
    let foreign = ProcReading { io: None, open_files: None, ..proc(0, 50) };
    rig.set(&[(1, proc(0, 100)), (3, foreign)]);
    rig.sampler.sample(0.0);
    rig.set(&[(1, proc(0, 100)), (3, ProcReading { cpu_ms: 500, ..foreign })]);
    let s = rig.sampler.sample(1.0);
    assert_eq!(s.resources.unreadable, 1);
    assert_eq!(s.resources.open_files, Some(5), "the readable process's");
    assert_eq!(s.resources.read_bytes_per_second, Some(0.0));
    assert_eq!(s.resources.cpu_percent, Some(50.0), "CPU and memory are readable for any process");

    // Nothing readable at all: unknown, not zero.
    rig.set(&[(3, ProcReading { cpu_ms: 600, ..foreign })]);
    let s = rig.sampler.sample(2.0);
    assert_eq!(s.resources.open_files, None);
    assert_eq!(s.resources.read_bytes_per_second, None);
}

#[test]
fn a_tree_whose_root_is_gone_is_unknown() {
    let mut rig = Rig::new(1);
    rig.set(&[(1, proc(0, 1))]);
    rig.sampler.sample(0.0);
    rig.set(&[]);
    let s = rig.sampler.sample(1.0);
    assert_eq!((s.resources.cpu_percent, s.resources.rss_bytes, s.resources.open_files), (None, None, None));
    assert_eq!(s.resources.processes, 0);
}

#[test]
fn both_real_sources_find_this_process_and_its_child_and_agree() {
    let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
    let me = std::process::id();
    // Until it sleeps in `sleep` (a moment after the fork it is still a copy of this process,
    // and while it execs its memory is not counted yet).
    let stat = format!("/proc/{}/stat", child.id());
    let sleeping = || std::fs::read_to_string(&stat).is_ok_and(|s| s.contains("(sleep) S"));
    while !sleeping() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut sources: Vec<(&str, Box<dyn ProcessSource>)> = vec![
        ("system", Box::new(SystemSource::default())),
        ("portable", Box::new(super::portable::Portable::default())),
    ];
    let mut found = Vec::new();
    for (name, source) in &mut sources {
        let tree = source.sample(me);
        assert_eq!(tree[0].0, me, "{name}");
        let mine = tree[0].1;
        assert!(mine.rss > 1_000_000 && mine.open_files.is_some_and(|n| n >= 3) && mine.io.is_some(), "{name}");
        let (_, sleeping) = *tree.iter().find(|(p, _)| *p == child.id()).unwrap_or_else(|| panic!("{name}: {tree:?}"));
        assert!(source.sample(u32::MAX - 1).is_empty(), "{name}: no such process, an empty tree");
        found.push(sleeping);
    }
    let _ = child.kill();
    let _ = child.wait();
    // The two read the same sleeping process: memory within a few pages, CPU time within a tick
    // or two (this test's own process moves meanwhile: other tests run beside it).
    let (a, b) = (found[0], found[1]);
    assert!(a.rss.abs_diff(b.rss) < 1 << 20, "{a:?} {b:?}");
    assert!(a.cpu_ms.abs_diff(b.cpu_ms) < 100, "{a:?} {b:?}");
}

#[test]
fn a_filesystem_that_is_gone_is_unknown_and_a_low_one_warns_once() {
    let dir = std::env::temp_dir().join(format!("milepost-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gone = dir.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    // A threshold no filesystem is above: every one here is "low".
    let mut watch = DiskWatch::new(&[dir.clone(), gone.clone(), dir.clone()], 1.0);
    std::fs::remove_dir(&gone).unwrap();
    let mut warnings = Vec::new();
    let disks = watch.sample(|m| warnings.push(m));
    let again = watch.sample(|m| warnings.push(m));
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(disks.len(), 2, "repeats dropped");
    assert!(disks[0].free_bytes.is_some() && disks[0].low);
    assert_eq!((disks[1].free_bytes, disks[1].free_fraction, disks[1].low), (None, None, false));
    assert_eq!(again, disks);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&dir.display().to_string()) && warnings[0].contains("% free"));
}

#[test]
fn bad_options_are_refused_naming_the_value() {
    for (interval, warn) in [(0.0, 0.05), (f64::NAN, 0.05), (1e9, 0.05), (1.0, -0.1), (1.0, 1.0), (1.0, f64::NAN)] {
        let e = ResourceOptions::new(interval, warn, Vec::new()).unwrap_err().to_string();
        assert!(e.contains("interval") || e.contains("disk_warn"), "{e}");
    }
    assert!(ResourceOptions::new(2.0, 0.0, vec![PathBuf::from("/")]).is_ok());
}

fn run() -> Arc<RunCore> {
    Arc::new(RunCore::new("id", "r", Clock::system(), 0.0))
}

#[test]
fn the_thread_samples_into_the_snapshot_and_once_more_when_stopped() {
    let run = run();
    let fake = Fake { tree: vec![1], readings: HashMap::from([(1, proc(0, 42))]), panic: false };
    let options = ResourceOptions::new(3600.0, 0.05, vec![std::env::temp_dir()]).unwrap();
    let mut t = ResourceSampler::start_with(&run, &options, fake, 1);
    assert!(run.resources.latest().is_some(), "the first sample is taken at the start");
    t.spawn();
    t.stop();
    let r = run.snapshot(run.clock.now()).resources.expect("sampled at start and at the stop");
    assert_eq!(r.rss_bytes, Some(42));
    close(r.interval, 3600.0, "");
    assert_eq!(r.disks.len(), 1);
    assert_eq!(r.cpu_percent, None, "two samples, microseconds apart: no CPU % (MIN_CPU_WINDOW)");
    assert_eq!(r.error, None);
}

#[test]
fn a_panic_while_sampling_is_told_never_silent() {
    let run = run();
    let fake = Fake { panic: true, ..Fake::default() };
    let mut t = ResourceSampler::start_with(&run, &ResourceOptions::new(0.1, 0.05, Vec::new()).unwrap(), fake, 1);
    t.spawn();
    std::thread::sleep(std::time::Duration::from_millis(50));
    t.stop();
    let r = run.snapshot(run.clock.now()).resources.unwrap();
    assert!(r.error.as_deref().is_some_and(|e| e.contains("the fake source broke")), "{r:?}");
    let warnings = run.resources.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("resource sampling stopped: "));
}

#[test]
fn a_run_stopped_before_the_thread_was_started_samples_twice_on_the_caller() {
    let run = run();
    let fake = Fake { tree: vec![1], readings: HashMap::from([(1, proc(0, 42))]), panic: false };
    let mut t = ResourceSampler::start_with(&run, &ResourceOptions::new(3600.0, 0.05, Vec::new()).unwrap(), fake, 1);
    t.stop();
    t.spawn(); // after the stop: starts nothing
    let r = run.snapshot(run.clock.now()).resources.expect("sampled at start and at the stop");
    assert_eq!(r.cpu_percent, None, "two samples, microseconds apart: no CPU % (MIN_CPU_WINDOW)");
    assert_eq!(r.rss_bytes, Some(42));
}

#[test]
fn the_thread_samples_every_interval_once_spawned() {
    let run = run();
    let fake = Fake { tree: vec![1], readings: HashMap::from([(1, proc(0, 42))]), panic: false };
    let mut t = ResourceSampler::start_with(&run, &ResourceOptions::new(0.1, 0.05, Vec::new()).unwrap(), fake, 1);
    assert_eq!(run.snapshot(run.clock.now()).resources.unwrap().cpu_percent, None, "one sample so far");
    t.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while run.snapshot(run.clock.now()).resources.unwrap().cpu_percent.is_none() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(run.snapshot(run.clock.now()).resources.unwrap().cpu_percent, Some(0.0), "the thread's sample");
    t.stop();
}
