//! One thread per process that samples the rates of every run not drawn natively.
//!
//! A run that only needs its rates sampled (plain, JSON, rich or no display) used to start a
//! thread of its own and join it at its end: about a tenth of a millisecond each, which is most
//! of what a short `track()` loop cost. Runs now join a list that one thread serves; joining and
//! leaving take a lock and a push, and nobody ever waits for the thread. It holds runs through
//! a `Weak` and never takes the GIL. A forked child starts its own thread when it first needs
//! one (the parent's is not there) with a list, a lock and a condition variable of its own:
//! the parent's may have been held, or waited on, by a thread the child does not have (the
//! standard library's futex lock, not `parking_lot`'s, whose global table of waiting threads a
//! fork copies half-way).

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

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
    /// When the thread wakes by itself next (None: only when notified). A run due later joins
    /// without waking it: a wake-up is a futex call and a thread switch, most of what joining
    /// cost a short loop.
    next_wake: Option<Instant>,
}

/// The list and its thread, for one process.
struct Shared {
    pid: u32,
    runs: Mutex<Runs>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Runs> {
        // Nothing panics while holding it (sampling happens with it let go); a poisoned lock
        // still holds a consistent list.
        self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// This process's `Shared` (made, with its thread, by the first run to join; a forked child
/// makes its own, and the parent's is leaked there: a few bytes, and nothing may touch it).
static SHARED: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
static IDS: AtomicU64 = AtomicU64::new(1);

#[allow(unsafe_code)]
fn shared() -> &'static Shared {
    let pid = std::process::id();
    let current = SHARED.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked `Box<Shared>`, never freed.
    if let Some(found) = unsafe { current.as_ref() } {
        if found.pid == pid {
            return found;
        }
    }
    let made: &'static Shared =
        Box::leak(Box::new(Shared { pid, runs: Mutex::new(Runs::default()), wake: Condvar::new() }));
    match SHARED.compare_exchange(current, std::ptr::from_ref(made).cast_mut(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            std::thread::Builder::new()
                .name("milepost-sampler".into())
                .spawn(move || serve(made))
                .expect("spawn the milepost sampler thread");
            made
        }
        // Another thread of this process made one first: use it (ours was never shared).
        // SAFETY: as above.
        Err(now) => unsafe { &*now },
    }
}

/// A run's place in the list; leaving it (or dropping this) stops its sampling.
pub struct Sampling {
    id: u64,
    pid: u32,
}

/// Samples `run` every `period` from now on.
pub fn join(run: &Arc<RunCore>, period: Duration) -> Sampling {
    let shared = shared();
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    let next = Instant::now() + period;
    let mut runs = shared.lock();
    runs.entries.push(Entry { id, run: Arc::downgrade(run), period, next });
    if runs.next_wake.is_none_or(|wake| next < wake) {
        shared.wake.notify_one();
    }
    Sampling { id, pid: shared.pid }
}

impl Sampling {
    /// Stops sampling the run (idempotent; the run's end takes its own last sample).
    pub fn leave(&mut self) {
        if self.id == 0 || self.pid != std::process::id() {
            return;
        }
        shared().lock().entries.retain(|e| e.id != self.id);
        self.id = 0;
    }
}

impl Drop for Sampling {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The thread: sleeps until the next run is due (or for ever with none), samples the runs due.
fn serve(shared: &'static Shared) {
    let mut due: Vec<Weak<RunCore>> = Vec::new();
    loop {
        {
            let mut runs = shared.lock();
            let now = Instant::now();
            let first = runs.entries.iter().map(|e| e.next).min();
            runs.next_wake = first;
            match first {
                None => {
                    drop(shared.wake.wait(runs).unwrap_or_else(std::sync::PoisonError::into_inner));
                    continue;
                }
                Some(next) if next > now => {
                    let (runs, _) =
                        shared.wake.wait_timeout(runs, next - now).unwrap_or_else(std::sync::PoisonError::into_inner);
                    drop(runs);
                    continue;
                }
                Some(_) => {}
            }
            // Sampling now: a run joining meanwhile is looked at when this round is over.
            runs.next_wake = Some(now);
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
        shared().lock().entries.iter().any(|e| e.id == sampling.id)
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
