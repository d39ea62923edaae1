//! The thread that samples a run's resources: its own, so that reading the process tree
//! (about a millisecond with 32 workers) never delays a frame or a rate sample. It holds no
//! Python object and never takes the GIL, reaches the run through a `Weak`, stops on a
//! `Condvar` after one last sample (the run's end then has its final CPU time), and is joined
//! when stopped or dropped. A panic while sampling is caught: the run is told (a warning and the
//! snapshot's `error`) and the thread ends, never silently.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{DiskWatch, ProcessSource, ResourceOptions, Sampler, SystemSource};
use crate::core::run::RunCore;

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// A run's resource sampling thread.
pub struct ResourceSampler {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: a forked child's copy has no thread to stop.
    pid: u32,
}

impl ResourceSampler {
    /// Samples this process's tree every `options.interval` seconds into `run.resources`,
    /// the first time at once.
    pub fn start(run: &Arc<RunCore>, options: ResourceOptions) -> Self {
        Self::start_with(run, options, SystemSource::default(), std::process::id())
    }

    /// As [`Self::start`], reading the tree below `root` through `source`.
    pub fn start_with<S: ProcessSource + Send + 'static>(
        run: &Arc<RunCore>, options: ResourceOptions, source: S, root: u32,
    ) -> Self {
        let signal = Arc::new(StopSignal::default());
        let thread_signal = Arc::clone(&signal);
        let weak: Weak<RunCore> = Arc::downgrade(run);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let period = Duration::from_secs_f64(options.interval);
        let thread = std::thread::Builder::new()
            .name("milepost-resources".into())
            .spawn(move || {
                let mut sampler = Sampler::new(source, root, cores);
                let mut disks = DiskWatch::new(&options.dirs, options.disk_warn);
                let mut first = true;
                loop {
                    let stop = {
                        let mut stopped = thread_signal.stopped.lock();
                        if !*stopped && !first {
                            thread_signal.cv.wait_for(&mut stopped, period);
                        }
                        *stopped
                    };
                    first = false;
                    let Some(run) = weak.upgrade() else { break };
                    let now = run.clock.now();
                    let board = &run.resources;
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        let mut sample = sampler.sample(now);
                        sample.resources.interval = options.interval;
                        sample.resources.disks = disks.sample(|message| board.warn(message));
                        sample
                    }));
                    match outcome {
                        Ok(sample) => board.publish(sample),
                        Err(panic) => {
                            board.fail(&panic_text(panic.as_ref()));
                            break;
                        }
                    }
                    if stop {
                        break;
                    }
                }
            })
            .expect("spawn the milepost resources thread");
        Self { signal, thread: Some(thread), pid: std::process::id() }
    }

    /// Takes one last sample and waits for the thread to end.
    pub fn stop(&mut self) {
        if std::process::id() != self.pid {
            // A copy inherited through fork: the thread exists only in the parent.
            std::mem::forget(self.thread.take());
            return;
        }
        *self.signal.stopped.lock() = true;
        self.signal.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ResourceSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic while sampling".to_owned())
}
