//! The background thread that samples a run and, on a terminal, draws it with indicatif.
//!
//! The thread holds no Python object and never takes the GIL: it reaches the run through a
//! `Weak`, wakes on a `Condvar` (so stopping is immediate), and is joined in `Drop`.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::{Condvar, Mutex};

use super::frame::{frame, FrameOptions};
use crate::core::run::RunCore;

/// How the native display looks.
#[derive(Debug, Clone, Copy)]
pub struct NativeOptions {
    pub max_lanes: usize,
    /// Keep the final frame on screen when the run ends (else clear it).
    pub leave: bool,
    /// Draw on standard output instead of standard error.
    pub stdout: bool,
}

impl NativeOptions {
    fn term(&self) -> console::Term {
        if self.stdout {
            console::Term::stdout()
        } else {
            console::Term::stderr()
        }
    }
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// Held while painting, so that a pause never races a frame onto a cleared screen.
#[derive(Default)]
struct PauseState {
    paused: bool,
    redraw: bool,
}

/// Samples the run's rates at `hz`, and draws the frame when native display is on.
pub struct Ticker {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    handle: TickerHandle,
    /// The process that started the thread: a forked child has no such thread to stop.
    pid: u32,
}

/// What other threads need to print above the bars or pause them: cheap to clone, so that a
/// caller never holds a lock of ours while it waits on the terminal.
#[derive(Clone)]
pub struct TickerHandle {
    pause: Arc<Mutex<PauseState>>,
    multi: Option<MultiProgress>,
}

struct Painter {
    multi: MultiProgress,
    pause: Arc<Mutex<PauseState>>,
    bar: ProgressBar,
    options: NativeOptions,
    tick: usize,
    last: String,
}

impl Painter {
    fn new(multi: MultiProgress, pause: Arc<Mutex<PauseState>>, options: NativeOptions) -> Self {
        let style = ProgressStyle::with_template("{msg}").expect("static template");
        let bar = multi.add(ProgressBar::new_spinner().with_style(style));
        Self { multi, pause, bar, options, tick: 0, last: String::new() }
    }

    fn paint(&mut self, run: &RunCore, now: f64) {
        let pause = Arc::clone(&self.pause);
        let mut state = pause.lock();
        if state.paused {
            return;
        }
        if std::mem::take(&mut state.redraw) {
            self.last.clear();
        }
        let snap = run.snapshot(now);
        let (rows, cols) = self.options.term().size();
        let opts = FrameOptions {
            // Two columns spare: the terminal echoes "^C" after the last line, and a line that
            // wrapped would leave a stale copy of it above the final frame.
            width: usize::from(cols).saturating_sub(2),
            height: usize::from(rows),
            max_lanes: self.options.max_lanes,
            tick: self.tick,
        };
        self.tick += 1;
        let text = frame(&snap, &opts).join("\n");
        // Unchanged frames are not sent to the terminal again.
        if text != self.last {
            self.bar.set_message(text.clone());
            self.last = text;
        }
    }

    fn finish(&mut self, run: &RunCore, now: f64) {
        self.pause.lock().paused = false;
        self.paint(run, now);
        if self.options.leave {
            self.bar.finish();
        } else {
            self.bar.finish_and_clear();
            let _ = self.multi.clear();
        }
    }
}

impl Ticker {
    /// Starts the thread. With `native`, it draws to standard error at `hz` (at most 20).
    pub fn start(run: &Arc<RunCore>, hz: f64, native: Option<NativeOptions>) -> Self {
        let hz = if hz.is_finite() { hz.clamp(0.5, 20.0) } else { 10.0 };
        let signal = Arc::new(StopSignal::default());
        let multi = native.map(|o| {
            let rate = hz.ceil() as u8;
            let target = if o.stdout {
                ProgressDrawTarget::stdout_with_hz(rate)
            } else {
                ProgressDrawTarget::stderr_with_hz(rate)
            };
            MultiProgress::with_draw_target(target)
        });
        let pause = Arc::new(Mutex::new(PauseState::default()));
        let mut painter = native.zip(multi.clone()).map(|(o, m)| Painter::new(m, Arc::clone(&pause), o));
        let weak: Weak<RunCore> = Arc::downgrade(run);
        let thread_signal = Arc::clone(&signal);
        let period = Duration::from_secs_f64(1.0 / hz);
        let thread = std::thread::Builder::new()
            .name("milepost-ticker".into())
            .spawn(move || loop {
                let stop = {
                    let mut stopped = thread_signal.stopped.lock();
                    if !*stopped {
                        thread_signal.cv.wait_for(&mut stopped, period);
                    }
                    *stopped
                };
                let Some(run) = weak.upgrade() else { break };
                let now = run.clock.now();
                match (&mut painter, stop) {
                    (Some(p), true) => p.finish(&run, now),
                    (Some(p), false) => p.paint(&run, now),
                    (None, _) => run.sample(now),
                }
                if stop {
                    break;
                }
            })
            .expect("spawn the milepost ticker thread");
        Self { signal, thread: Some(thread), handle: TickerHandle { pause, multi }, pid: std::process::id() }
    }

    pub fn handle(&self) -> TickerHandle {
        self.handle.clone()
    }

    /// Signals the thread, which draws a final frame, and waits for it.
    pub fn stop(&mut self) {
        if std::process::id() != self.pid {
            // A copy inherited through fork: the thread exists only in the parent. Joining its
            // handle here would fail; forgetting it is all there is to do.
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

impl TickerHandle {
    /// Prints a line above the bars (or plainly when not drawing). Returns whether the native
    /// display took it.
    pub fn println(&self, text: &str) -> bool {
        match &self.multi {
            Some(m) if !m.is_hidden() => m.println(text).is_ok(),
            _ => false,
        }
    }

    /// Clears the bars and stops drawing until `resume`; for output that cannot go through
    /// `println` (a child process writing to the terminal).
    pub fn pause(&self) {
        let mut state = self.pause.lock();
        state.paused = true;
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }

    pub fn resume(&self) {
        let mut state = self.pause.lock();
        state.paused = false;
        state.redraw = true;
    }

    pub fn is_drawing(&self) -> bool {
        self.multi.as_ref().is_some_and(|m| !m.is_hidden())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::Clock;
    use crate::core::node::NodeKind;

    #[test]
    fn sampler_thread_observes_and_stops() {
        let run = Arc::new(RunCore::new("id", "t", Clock::system(), 0.0));
        let p = run.add_node(0, NodeKind::Phase, "p", "it", Some(1_000_000)).unwrap();
        p.start(0.0, 0);
        let mut t = Ticker::start(&run, 20.0, None);
        for _ in 0..30 {
            p.done.add(1000);
            std::thread::sleep(Duration::from_millis(10));
        }
        t.stop();
        let s = run.snapshot(run.clock.now());
        assert!(s.root.children[0].rate.unwrap() > 0.0);
        assert!(!t.handle().is_drawing());
    }
}
