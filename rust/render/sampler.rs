//! One thread per process that samples the rates of every run not drawn natively.
//!
//! A run that only needs its rates sampled (plain, JSON, rich or no display) used to start a
//! thread of its own and join it at its end: about a tenth of a millisecond each, which is most
//! of what a short `track()` loop cost. Runs now join a list that one thread serves; joining and
//! leaving take a lock and a push, and nobody ever waits for the thread. It holds runs through
//! a `Weak` and never takes the GIL. A forked child starts its own thread when it first needs
//! one (the parent's is not there) and forgets the parent's runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::core::run::RunCore;

struct Entry {
    id: u64,
    run: Weak<RunCore>,
    period: Duration,
    next: Instant,
}

#[derive(Default)]
struct Runs {
    entries: Vec<Entry>,
    /// The process whose thread serves the list (0: none yet).
    serving: u32,
}

struct Shared {
    runs: Mutex<Runs>,
    wake: Condvar,
    ids: AtomicU64,
}

static SHARED: LazyLock<Shared> =
    LazyLock::new(|| Shared { runs: Mutex::new(Runs::default()), wake: Condvar::new(), ids: AtomicU64::new(1) });

/// A run's place in the list; leaving it (or dropping this) stops its sampling.
pub struct Sampling {
    id: u64,
    pid: u32,
}

/// Samples `run` every `period` from now on.
pub fn join(run: &Arc<RunCore>, period: Duration) -> Sampling {
    let shared = &*SHARED;
    let id = shared.ids.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut runs = shared.runs.lock();
    if runs.serving != pid {
        // First run of this process (or of a forked child: the parent's thread and runs are
        // not here).
        runs.entries.clear();
        runs.serving = pid;
        std::thread::Builder::new()
            .name("milepost-sampler".into())
            .spawn(serve)
            .expect("spawn the milepost sampler thread");
    }
    runs.entries.push(Entry { id, run: Arc::downgrade(run), period, next: Instant::now() + period });
    shared.wake.notify_one();
    Sampling { id, pid }
}

impl Sampling {
    /// Stops sampling the run (idempotent; the run's end takes its own last sample).
    pub fn leave(&mut self) {
        if self.id == 0 || self.pid != std::process::id() {
            return;
        }
        SHARED.runs.lock().entries.retain(|e| e.id != self.id);
        self.id = 0;
    }
}

impl Drop for Sampling {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The thread: sleeps until the next run is due (or for ever with none), samples the runs due.
fn serve() {
    let shared = &*SHARED;
    let mut due: Vec<Weak<RunCore>> = Vec::new();
    loop {
        {
            let mut runs = shared.runs.lock();
            let now = Instant::now();
            match runs.entries.iter().map(|e| e.next).min() {
                None => {
                    shared.wake.wait(&mut runs);
                    continue;
                }
                Some(next) if next > now => {
                    shared.wake.wait_until(&mut runs, next);
                    continue;
                }
                Some(_) => {}
            }
            for entry in runs.entries.iter_mut().filter(|e| e.next <= now) {
                entry.next = now + entry.period;
                due.push(entry.run.clone());
            }
        }
        // Sampled with the lock let go: a run joining or leaving never waits for a sample.
        for run in due.drain(..) {
            if let Some(run) = run.upgrade() {
                run.sample(run.clock.now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::Clock;
    use crate::core::node::NodeKind;

    fn listed(sampling: &Sampling) -> bool {
        SHARED.runs.lock().entries.iter().any(|e| e.id == sampling.id)
    }

    #[test]
    fn runs_are_sampled_until_they_leave_and_leaving_never_waits() {
        let run = Arc::new(RunCore::new("s", "sampled", Clock::system(), 0.0));
        let p = run.add_node(0, NodeKind::Phase, "p", "it", Some(1_000_000)).unwrap();
        p.start(0.0, 0);
        let mut sampling = join(&run, Duration::from_millis(5));
        let other = Arc::new(RunCore::new("o", "other", Clock::system(), 0.0));
        let mut second = join(&other, Duration::from_millis(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        while run.snapshot(run.clock.now()).root.children[0].rate.is_none() {
            assert!(Instant::now() < deadline, "the shared thread never sampled the run");
            p.done.add(1000);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(listed(&sampling) && listed(&second), "one thread serves both runs");
        let started = Instant::now();
        sampling.leave();
        second.leave();
        assert!(started.elapsed() < Duration::from_millis(50), "leaving waited for the thread");
        assert!(!listed(&sampling) && !listed(&second));
        sampling.leave(); // idempotent
    }
}
