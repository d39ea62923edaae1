//! The background thread that samples a run and, on a terminal, draws it.
//!
//! The thread holds no Python object and never takes the GIL: it reaches the run through a
//! `Weak`, wakes on a `Condvar` (so stopping is immediate), and is joined in `Drop`.
//!
//! It draws the frame itself instead of through indicatif. indicatif pads every line with spaces
//! to the terminal's width and lets the terminal wrap to the next row, so its frame, and the lines
//! printed above it, are one long wrapped line to the terminal; a terminal that re-wraps its lines
//! when it is resized (tmux, VTE, kitty, iTerm2, Windows Terminal) then moves them to rows that
//! indicatif's row count, taken at the old width, does not match: narrowing left pieces of old
//! frames in the scrollback, widening erased lines printed above the bars. Here every line of
//! the frame ends with a newline and is narrower than the terminal, and the frame on screen is
//! remembered by the widths of its lines, so that erasing it counts the rows they take at the
//! width the terminal has now.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use console::{measure_text_width, Term};
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

/// The frame on the terminal. Everything written to the terminal goes through it, under its
/// lock, so that a printed line and a frame never interleave.
struct Screen {
    term: Term,
    /// The visible width of each line of the frame on screen; empty when none is.
    drawn: Vec<usize>,
    /// The frame last laid out (redrawn under a printed line) and the terminal size it was
    /// laid out for (rows, columns).
    last: Vec<String>,
    last_size: (u16, u16),
    /// `suspend()`: nothing is drawn until `resume()`.
    paused: bool,
    /// The run ended: its final frame is ordinary output now, never redrawn.
    finished: bool,
}

impl Screen {
    fn new(term: Term) -> Self {
        Self { term, drawn: Vec::new(), last: Vec::new(), last_size: (0, 0), paused: false, finished: false }
    }

    /// Appends what clears the frame's rows, from its last up to its first, where it leaves
    /// the cursor. The cursor is at the end of the frame's last line. A line is counted at the
    /// width the terminal has now: one that a narrower terminal re-wrapped takes several rows.
    /// Row by row rather than "erase below": tmux moves a screen cleared from its top-left
    /// corner into the scrollback, which would keep a copy of every frame drawn at the top.
    fn erase(&mut self, out: &mut String) {
        if self.drawn.is_empty() {
            return;
        }
        let rows = rows_taken(&self.drawn, usize::from(self.term.size().1));
        out.push_str("\r\x1b[2K");
        for _ in 1..rows {
            out.push_str("\x1b[A\x1b[2K");
        }
        self.drawn.clear();
    }

    /// Appends the frame; the cursor stays at the end of its last line (no newline after it,
    /// so that the frame never scrolls a blank row onto the screen).
    fn put(&mut self, out: &mut String, lines: &[String]) {
        out.push_str(&lines.join("\n"));
        self.drawn = lines.iter().map(|l| measure_text_width(l)).collect();
    }

    /// One write, so that the terminal never shows a half-drawn frame. A terminal that went
    /// away is not an error of the job's: what could not be written is dropped.
    fn send(&self, out: &str) {
        if !out.is_empty() {
            let _ = self.term.write_str(out);
            let _ = self.term.flush();
        }
    }
}

/// Rows that lines of these visible widths take on a terminal `cols` wide that re-wraps them
/// (an empty line still takes its row).
fn rows_taken(widths: &[usize], cols: usize) -> usize {
    let cols = cols.max(1);
    widths.iter().map(|w| w.div_ceil(cols).max(1)).sum()
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
    /// Present when drawing on a terminal.
    screen: Option<Arc<Mutex<Screen>>>,
}

struct Painter {
    screen: Arc<Mutex<Screen>>,
    term: Term,
    options: NativeOptions,
    tick: usize,
}

impl Painter {
    fn lines(&mut self, run: &RunCore, now: f64) -> (Vec<String>, (u16, u16)) {
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
        let mut screen = self.screen.lock();
        // Unchanged frames are not sent to the terminal again.
        let unchanged = !screen.drawn.is_empty() && screen.last == lines && screen.last_size == size;
        if screen.paused || screen.finished || unchanged {
            return;
        }
        let mut out = String::new();
        screen.erase(&mut out);
        screen.put(&mut out, &lines);
        screen.send(&out);
        screen.last = lines;
        screen.last_size = size;
    }

    /// The final frame: left on screen as ordinary output (followed by a newline), or cleared.
    fn finish(&mut self, run: &RunCore, now: f64) {
        let (lines, _) = self.lines(run, now);
        let mut screen = self.screen.lock();
        let mut out = String::new();
        screen.erase(&mut out);
        if self.options.leave {
            screen.put(&mut out, &lines);
            out.push('\n');
            screen.drawn.clear();
        }
        screen.send(&out);
        screen.last.clear();
        screen.finished = true;
    }
}

impl Ticker {
    /// Starts the thread. With `native`, it draws to standard error at `hz` (at most 20).
    pub fn start(run: &Arc<RunCore>, hz: f64, native: Option<NativeOptions>) -> Self {
        let hz = if hz.is_finite() { hz.clamp(0.5, 20.0) } else { 10.0 };
        let signal = Arc::new(StopSignal::default());
        // Off a terminal nothing is drawn (the Python side picks plain lines there anyway).
        let mut painter = native.map(|o| (o, o.term())).filter(|(_, t)| t.is_term()).map(|(options, term)| Painter {
            screen: Arc::new(Mutex::new(Screen::new(term.clone()))),
            term,
            options,
            tick: 0,
        });
        let handle = TickerHandle { screen: painter.as_ref().map(|p| Arc::clone(&p.screen)) };
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
        Self { signal, thread: Some(thread), handle, pid: std::process::id() }
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
    /// Prints a line above the bars. Returns whether the native display took it (false when
    /// it does not draw: the caller prints it plainly).
    pub fn println(&self, text: &str) -> bool {
        let Some(screen) = &self.screen else { return false };
        let mut screen = screen.lock();
        let mut out = String::new();
        screen.erase(&mut out);
        out.push_str(text);
        out.push('\n');
        if !screen.paused && !screen.finished && !screen.last.is_empty() {
            let last = std::mem::take(&mut screen.last);
            screen.put(&mut out, &last);
            screen.last = last;
        }
        screen.send(&out);
        true
    }

    /// Clears the bars and stops drawing until `resume`; for output that cannot go through
    /// `println` (a child process writing to the terminal).
    pub fn pause(&self) {
        if let Some(screen) = &self.screen {
            let mut screen = screen.lock();
            let mut out = String::new();
            screen.erase(&mut out);
            screen.send(&out);
            screen.paused = true;
        }
    }

    /// Draws again from the next tick (the frame was erased, so it is drawn even if unchanged).
    pub fn resume(&self) {
        if let Some(screen) = &self.screen {
            screen.lock().paused = false;
        }
    }

    pub fn is_drawing(&self) -> bool {
        self.screen.is_some()
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
    fn rows_are_counted_at_the_width_the_terminal_has_now() {
        assert_eq!(rows_taken(&[118, 40, 0], 120), 3);
        assert_eq!(rows_taken(&[118, 40, 0], 80), 4, "the wide line re-wrapped onto two rows");
        assert_eq!(rows_taken(&[118, 80, 81], 40), 3 + 2 + 3);
        assert_eq!(rows_taken(&[], 80), 0);
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
