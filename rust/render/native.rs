//! The background thread that samples a run and, on a terminal, draws it with indicatif.
//!
//! The thread holds no Python object and never takes the GIL: it reaches the run through a
//! `Weak`, wakes on a `Condvar` (so stopping is immediate), and is joined in `Drop`.
//!
//! indicatif's `MultiProgress` holds the frame (one bar whose message is the frame's lines),
//! limits how often it is drawn, prints lines above it and clears it for `pause`. It draws on a
//! [`NewlineTerm`] rather than straight on the terminal, so that a terminal that re-wraps its
//! lines when it is resized keeps no pieces of old frames and loses none of the lines printed
//! above them (`newline_term.rs` says why indicatif's own drawing does not, and how).

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use console::Term;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::{Condvar, Mutex};

use super::frame::{frame, FrameOptions};
use super::newline_term::{NewlineTerm, Screen};
use super::sampler::{self, Sampling};
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
    fn term(&self) -> Term {
        if self.stdout {
            Term::stdout()
        } else {
            Term::stderr()
        }
    }
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// The frame on the terminal. Everything drawn or printed goes through it, under its lock
/// (always taken before indicatif's own), so that a pause never races a frame onto a cleared
/// screen.
struct Display {
    multi: MultiProgress,
    /// The frame: a bar of the `MultiProgress` whose message is the frame's lines. Out of the
    /// `MultiProgress` while paused; dropped when the run ends, which makes indicatif leave
    /// whatever it drew last (the final frame, or nothing) on screen as ordinary output.
    bar: Option<ProgressBar>,
    term: NewlineTerm,
    /// The frame last laid out and the terminal size it was laid out for (rows, columns):
    /// unchanged frames are not drawn again. Emptied to draw the next one whatever it is.
    last: Vec<String>,
    last_size: (u16, u16),
    /// `suspend()`: nothing is drawn until `resume()`.
    paused: bool,
    /// The run ended: its final frame is ordinary output now, never redrawn.
    finished: bool,
    /// The process that draws: a forked child's copy never does.
    pid: u32,
}

impl Display {
    /// Draws on `screen` at most `hz` times a second (printed lines are drawn at once).
    fn new(screen: Box<dyn Screen>, hz: u8) -> Self {
        let term = NewlineTerm::new(screen);
        let multi =
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), hz.max(1)));
        let style = ProgressStyle::with_template("{msg}").expect("static template");
        // Hidden until added: a bar never draws anywhere but through the MultiProgress.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(style);
        let bar = multi.add(bar);
        Self {
            multi,
            bar: Some(bar),
            term,
            last: Vec::new(),
            last_size: (0, 0),
            paused: false,
            finished: false,
            pid: std::process::id(),
        }
    }

    fn draw(&mut self, lines: Vec<String>, size: (u16, u16)) {
        let Some(bar) = &self.bar else { return };
        if self.paused || (self.last == lines && self.last_size == size) {
            return;
        }
        // indicatif draws each line of the message as a line of the bar.
        bar.set_message(lines.join("\n"));
        self.last = lines;
        self.last_size = size;
    }

    /// Prints a line above the bars: indicatif erases them, prints it and draws them again.
    fn println(&mut self, text: &str) {
        let _ = self.multi.println(text);
        if self.paused || self.finished {
            // No bar follows the line to end it: it is ended now, so that other output (what
            // `suspend()` is for) starts on a line of its own.
            self.term.settle();
        }
    }

    /// Takes the bar out of the `MultiProgress` and clears it: printed lines then go on
    /// alone, and nothing is drawn until `resume`. (`MultiProgress::suspend` would hold
    /// indicatif's lock until the bars are back, across the caller's code.)
    fn pause(&mut self) {
        if self.paused || self.finished {
            return;
        }
        if let Some(bar) = &self.bar {
            self.multi.remove(bar);
        }
        let _ = self.multi.clear();
        self.paused = true;
    }

    /// Puts the bar back; it is drawn from the next tick (the frame was erased, so it is drawn
    /// even if unchanged).
    fn resume(&mut self) {
        if !self.paused {
            return;
        }
        self.paused = false;
        if let Some(bar) = &self.bar {
            self.multi.add(bar.clone());
        }
        self.last.clear();
    }

    /// The final frame: left on screen as ordinary output (followed by a newline), or cleared.
    fn finish(&mut self, lines: &[String], leave: bool) {
        if self.finished {
            return;
        }
        self.resume();
        if let Some(bar) = self.bar.take() {
            if leave {
                bar.finish_with_message(lines.join("\n"));
            } else {
                bar.finish_and_clear();
            }
        }
        self.term.settle();
        self.last.clear();
        self.finished = true;
    }
}

impl Drop for Display {
    /// Dropped before the run's end (the run went away first): what is drawn stays on screen,
    /// as with `leave`.
    fn drop(&mut self) {
        if self.finished || std::process::id() != self.pid {
            return;
        }
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        self.term.settle();
    }
}

/// Samples the run's rates at `hz`, and draws the frame when native display is on.
pub struct Ticker {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    /// A run that is not drawn is sampled by the process's one sampler thread instead.
    sampling: Option<Sampling>,
    handle: TickerHandle,
    /// The process that started the thread: a forked child has no such thread to stop.
    pid: u32,
}

/// What other threads need to print above the bars or pause them: cheap to clone, so that a
/// caller never holds a lock of ours while it waits on the terminal.
#[derive(Clone)]
pub struct TickerHandle {
    /// Present when drawing on a terminal.
    display: Option<Arc<Mutex<Display>>>,
}

struct Painter {
    display: Arc<Mutex<Display>>,
    term: Term,
    options: NativeOptions,
    tick: usize,
}

impl Painter {
    fn lines(&mut self, run: &RunCore, now: f64) -> (Vec<String>, (u16, u16)) {
        run.sample(now);
        let snap = run.snapshot(now);
        let size = self.term.size();
        let opts = FrameOptions {
            // Two columns spare: the terminal echoes "^C" after the last line, and a line that
            // wrapped would leave a stale copy of it above the final frame.
            width: usize::from(size.1).saturating_sub(2),
            height: usize::from(size.0),
            max_lanes: self.options.max_lanes,
            tick: self.tick,
        };
        self.tick += 1;
        (frame(&snap, &opts), size)
    }

    fn paint(&mut self, run: &RunCore, now: f64) {
        let (lines, size) = self.lines(run, now);
        self.display.lock().draw(lines, size);
    }

    fn finish(&mut self, run: &RunCore, now: f64) {
        let (lines, _) = self.lines(run, now);
        self.display.lock().finish(&lines, self.options.leave);
    }
}

impl Ticker {
    /// Starts the thread. With `native`, it draws to standard error at `hz` (at most 20).
    pub fn start(run: &Arc<RunCore>, hz: f64, native: Option<NativeOptions>) -> Self {
        let hz = if hz.is_finite() { hz.clamp(0.5, 20.0) } else { 10.0 };
        let signal = Arc::new(StopSignal::default());
        // Off a terminal nothing is drawn (the Python side picks plain lines there anyway).
        // indicatif draws at most as often as the thread ticks.
        let rate = hz.ceil() as u8;
        let painter = native.map(|o| (o, o.term())).filter(|(_, t)| t.is_term()).map(|(options, term)| Painter {
            display: Arc::new(Mutex::new(Display::new(Box::new(term.clone()), rate))),
            term,
            options,
            tick: 0,
        });
        let handle = TickerHandle { display: painter.as_ref().map(|p| Arc::clone(&p.display)) };
        let period = Duration::from_secs_f64(1.0 / hz);
        let Some(mut painter) = painter else {
            let sampling = Some(sampler::join(run, period));
            return Self { signal, thread: None, sampling, handle, pid: std::process::id() };
        };
        let weak: Weak<RunCore> = Arc::downgrade(run);
        let thread_signal = Arc::clone(&signal);
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
                if stop {
                    painter.finish(&run, now);
                } else {
                    painter.paint(&run, now);
                }
                if stop {
                    break;
                }
            })
            .expect("spawn the milepost ticker thread");
        Self { signal, thread: Some(thread), sampling: None, handle, pid: std::process::id() }
    }

    pub fn handle(&self) -> TickerHandle {
        self.handle.clone()
    }

    /// Signals the thread, which draws a final frame, and waits for it (a run only sampled
    /// leaves the sampler's list: nothing to wait for).
    pub fn stop(&mut self) {
        if let Some(mut sampling) = self.sampling.take() {
            sampling.leave();
            return;
        }
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
    /// Prints a line above the bars. Returns whether the native display took it (false when
    /// it does not draw: the caller prints it plainly).
    pub fn println(&self, text: &str) -> bool {
        let Some(display) = &self.display else { return false };
        display.lock().println(text);
        true
    }

    /// Clears the bars and stops drawing until `resume`; for output that cannot go through
    /// `println` (a child process writing to the terminal).
    pub fn pause(&self) {
        if let Some(display) = &self.display {
            display.lock().pause();
        }
    }

    /// Draws again from the next tick.
    pub fn resume(&self) {
        if let Some(display) = &self.display {
            display.lock().resume();
        }
    }

    pub fn is_drawing(&self) -> bool {
        self.display.is_some()
    }
}

/// A run's ticker as its owner keeps it: started at most once, stopped once. Its handle is
/// kept apart and copied out, so that a caller lets go of every lock of ours before it waits
/// on the terminal (with the GIL released: holding a lock across that wait would let a second
/// thread block on it while holding the GIL the first one needs back).
#[derive(Default)]
pub struct TickerSlot {
    ticker: Mutex<Option<Ticker>>,
    handle: Mutex<Option<TickerHandle>>,
}

impl TickerSlot {
    /// Starts the ticker (see [`Ticker::start`]); false, and nothing replaced, if it was.
    pub fn start(&self, run: &Arc<RunCore>, hz: f64, native: Option<NativeOptions>) -> bool {
        let mut slot = self.ticker.lock();
        if slot.is_some() {
            return false;
        }
        let ticker = Ticker::start(run, hz, native);
        *self.handle.lock() = Some(ticker.handle());
        *slot = Some(ticker);
        true
    }

    /// The ticker, to stop (its handle is forgotten first: nothing prints after the end).
    pub fn take(&self) -> Option<Ticker> {
        self.handle.lock().take();
        self.ticker.lock().take()
    }

    /// A copy of the running ticker's handle.
    pub fn handle(&self) -> Option<TickerHandle> {
        self.handle.lock().clone()
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
    use crate::render::newline_term::{FakeScreen, Rewrapping};

    fn lines(c: char) -> Vec<String> {
        vec![format!("{c} run"), format!("  {c} phase")]
    }

    fn display(screen: &FakeScreen) -> Display {
        Display::new(Box::new(screen.clone()), 20)
    }

    #[test]
    fn printed_lines_go_above_the_bars_and_pause_clears_them() {
        let screen = FakeScreen::new(24, 80);
        let mut tty = Rewrapping::new(80);
        let mut d = display(&screen);
        d.draw(lines('a'), (24, 80));
        d.println("printed");
        tty.feed(&screen.take());
        assert_eq!(tty.text(), ["printed", "a run", "  a phase"]);
        d.draw(lines('a'), (24, 80));
        assert_eq!(screen.take(), "", "an unchanged frame is not drawn again");

        d.pause();
        d.draw(lines('b'), (24, 80));
        d.println("while paused");
        let out = screen.take();
        assert!(out.ends_with("while paused\n"), "ended, for the output that pause is for: {out:?}");
        tty.feed(&out);
        tty.feed("raw output\n");
        assert_eq!(tty.text(), ["printed", "while paused", "raw output"]);

        d.resume();
        d.draw(lines('b'), (24, 80));
        d.println("after");
        tty.feed(&screen.take());
        assert_eq!(tty.text(), ["printed", "while paused", "raw output", "after", "b run", "  b phase"]);
    }

    #[test]
    fn the_final_frame_stays_as_output_or_is_cleared() {
        for leave in [true, false] {
            let screen = FakeScreen::new(24, 80);
            let mut tty = Rewrapping::new(80);
            let mut d = display(&screen);
            d.draw(lines('a'), (24, 80));
            d.println("printed");
            d.finish(&lines('z'), leave);
            d.draw(lines('c'), (24, 80));
            d.println("after the end");
            let out = screen.take();
            assert!(out.ends_with("after the end\n"), "{out:?}");
            tty.feed(&out);
            if leave {
                assert_eq!(tty.text(), ["printed", "z run", "  z phase", "after the end"]);
            } else {
                assert_eq!(tty.text(), ["printed", "after the end"]);
            }
        }
    }

    #[test]
    fn a_display_dropped_before_the_end_leaves_its_frame() {
        let screen = FakeScreen::new(24, 80);
        let mut tty = Rewrapping::new(80);
        let mut d = display(&screen);
        d.draw(lines('a'), (24, 80));
        drop(d);
        let out = screen.take();
        assert!(out.ends_with('\n'), "{out:?}");
        tty.feed(&out);
        assert_eq!(tty.text(), ["a run", "  a phase"]);
    }

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
