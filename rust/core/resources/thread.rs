//! The thread that samples a run's resources: its own, so that reading the process tree
//! (about a millisecond with 32 workers) never delays a frame or a rate sample. It holds no
//! Python object and never takes the GIL, reaches the run through a `Weak`, stops on a
//! `Condvar` after one last sample (the run's end then has its final CPU time), and is joined
//! when stopped or dropped. A panic while sampling is caught: the run is told (a warning and the
//! snapshot's `error`) and sampling ends, never silently.
//!
//! The first sample is taken at the start, on the caller's thread (the baseline the run's CPU
//! time is counted from), and the thread is started only when asked (`spawn`: the run has
//! lived a moment): a run of a few milliseconds starts and joins no thread, its last sample
//! taken at the stop by the caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{DiskWatch, ProcessSource, ResourceOptions, Sampler, SystemSource};
use crate::core::run::RunCore;

/// Takes one sample into the run, if it still exists; false once sampling is over (the run
/// is gone, or a panic was told).
type SampleOnce = Box<dyn FnMut() -> bool + Send>;

struct Shared {
    stopped: Mutex<bool>,
    cv: Condvar,
    /// The sampler (its previous readings, against which the next is compared), used by the
    /// caller's thread before the thread starts and at a stop without it, else by the thread.
    sample: Mutex<SampleOnce>,
}

/// A run's resource sampling: a first sample at once, on the caller's thread, then a thread of
/// its own once `spawn` is called (a run that ends within a few milliseconds starts none: its
/// second sample, at the stop, is the caller's too).
pub struct ResourceSampler {
    shared: Arc<Shared>,
    period: Duration,
    thread: Option<JoinHandle<()>>,
    /// The process that started the sampling: a forked child's copy has nothing to stop.
    pid: u32,
}

impl ResourceSampler {
    /// Samples this process's tree into `run.resources`, the first time now.
    pub fn start(run: &Arc<RunCore>, options: &ResourceOptions) -> Self {
        Self::start_with(run, options, SystemSource::default(), std::process::id())
    }

    /// As [`Self::start`], reading the tree below `root` through `source`.
    pub fn start_with<S: ProcessSource + Send + 'static>(
        run: &Arc<RunCore>, options: &ResourceOptions, source: S, root: u32,
    ) -> Self {
        let weak: Weak<RunCore> = Arc::downgrade(run);
        let cores = cores();
        let mut sampler = Sampler::new(source, root, cores);
        let mut disks = DiskWatch::new(&options.dirs, options.disk_warn);
        let interval = options.interval;
        let mut over = false;
        let sample: SampleOnce = Box::new(move || {
            let Some(run) = weak.upgrade().filter(|_| !over) else { return false };
            let now = run.clock.now();
            let board = &run.resources;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut sample = sampler.sample(now);
                sample.resources.interval = interval;
                sample.resources.disks = disks.sample(|message| board.warn(message));
                sample
            }));
            match outcome {
                Ok(sample) => board.publish(sample),
                Err(panic) => {
                    board.fail(&panic_text(panic.as_ref()));
                    over = true;
                }
            }
            !over
        });
        let shared = Arc::new(Shared { stopped: Mutex::new(false), cv: Condvar::new(), sample: Mutex::new(sample) });
        (shared.sample.lock())();
        let period = Duration::from_secs_f64(interval);
        Self { shared, period, thread: None, pid: std::process::id() }
    }

    /// Starts the thread that samples every interval from now on (once; not after `stop`).
    pub fn spawn(&mut self) {
        if self.thread.is_some() || std::process::id() != self.pid || *self.shared.stopped.lock() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let period = self.period;
        let thread = std::thread::Builder::new()
            .name("milepost-resources".into())
            .spawn(move || loop {
                let stop = {
                    let mut stopped = shared.stopped.lock();
                    if !*stopped {
                        shared.cv.wait_for(&mut stopped, period);
                    }
                    *stopped
                };
                if !(shared.sample.lock())() || stop {
                    break;
                }
            })
            .expect("spawn the milepost resources thread");
        self.thread = Some(thread);
    }

    /// Takes one last sample (on the thread, if there is one) and waits for the thread to end.
    pub fn stop(&mut self) {
        if std::process::id() != self.pid {
            // A copy inherited through fork: the sampling is the parent's.
            std::mem::forget(self.thread.take());
            return;
        }
        {
            let mut stopped = self.shared.stopped.lock();
            if *stopped {
                return;
            }
            *stopped = true;
        }
        self.shared.cv.notify_all();
        match self.thread.take() {
            Some(t) => drop(t.join()),
            None => drop((self.shared.sample.lock())()),
        }
    }
}

impl Drop for ResourceSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The cores this process may use, asked once (the standard library reads cgroup files each
/// time: a few syscalls every run's start paid).
fn cores() -> u32 {
    static CORES: OnceLock<u32> = OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)))
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic while sampling".to_owned())
}
