//! The draw target that makes indicatif's frame survive a terminal that re-wraps its lines.
//!
//! indicatif (`DrawState::draw_to_term`) never writes a newline between the lines of a frame: it
//! pads each line with spaces to the terminal's width and lets the terminal wrap to the next row,
//! and it counts the rows to erase next time at the width it had when it drew. To a terminal
//! that re-wraps its lines when it is resized (tmux, VTE, kitty, iTerm2, Windows Terminal), the
//! frame and the lines printed above it are then one long wrapped line, moved on a resize to rows
//! that this count does not match: narrowing left pieces of old frames in the scrollback,
//! widening erased lines printed above the bars.
//!
//! [`NewlineTerm`] is the [`TermLike`] indicatif draws on instead. It keeps indicatif's decisions
//! (when to draw, what, which rows are the bars that the next draw erases) and changes how they
//! reach the terminal: every line ends with a newline (the last one only when something follows
//! it) and is written without its padding, so it stays narrower than the terminal; the lines on
//! screen are remembered by their visible widths, so that erasing them counts the rows they take
//! at the width the terminal has now; rows are cleared one by one rather than with "erase below",
//! because tmux moves a screen cleared from its top-left corner into the scrollback, which would
//! keep a copy of every frame drawn at the top. A draw is sent in one write, so the terminal
//! never shows a half-drawn frame.
//!
//! What indicatif calls for each draw (`DrawState::draw_to_term`, in its default mode: this
//! target does not support `set_move_cursor`), and what becomes of each call:
//!
//! - `move_cursor_up(n - 1)`, `n` × `clear_line()` with `move_cursor_down(1)` between them,
//!   `move_cursor_up(n - 1)`: erase the `n` rows of the bars it drew last. The moves are
//!   dropped and the `clear_line`s counted: the lines at the end of the screen that took those
//!   `n` rows (at the width indicatif counted them at) are erased, at the width the terminal
//!   has now.
//! - `width()`, `height()`: the terminal's size now. The width is also the one the rows of the
//!   lines that follow are counted at, as indicatif counts them.
//! - `write_str(line)` then `write_str(spaces up to the right edge)`, for each line: the line,
//!   after a newline that ends the line before it; the padding is dropped.
//! - `write_line(s)` (only for `MultiProgressAlignment::Bottom`): a line, as above.
//! - `flush()`: the draw, in one write to the terminal.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::Arc;

use console::{measure_text_width, Term};
use indicatif::TermLike;
use parking_lot::Mutex;

/// The terminal a [`NewlineTerm`] writes to: the real one, or a fake in tests.
pub trait Screen: Send + Sync {
    /// Rows and columns.
    fn size(&self) -> (u16, u16);
    /// Writes `text` and flushes. A terminal that went away is not an error of the job's: what
    /// could not be written is dropped.
    fn send(&self, text: &str);
}

impl Screen for Term {
    fn size(&self) -> (u16, u16) {
        Term::size(self)
    }

    fn send(&self, text: &str) {
        let _ = self.write_str(text);
        let _ = self.flush();
    }
}

/// Rows that lines of these visible widths take on a terminal `cols` wide that re-wraps them
/// (an empty line still takes its row).
pub fn rows_taken(widths: impl IntoIterator<Item = usize>, cols: usize) -> usize {
    let cols = cols.max(1);
    widths.into_iter().map(|w| w.div_ceil(cols).max(1)).sum()
}

/// The lines remembered on screen: enough for any frame that fits a terminal.
const REMEMBERED_LINES: usize = 1024;

/// A line on screen.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Its visible width.
    width: usize,
    /// The terminal width indicatif counted its rows at.
    counted_at: usize,
}

/// Where a draw is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between draws (after a `flush`).
    Idle,
    /// indicatif is erasing its last bars: `clear_line` was called this many times.
    Erasing(usize),
    /// indicatif is writing lines; the next `write_str` is the padding of the last line.
    Writing { padding_next: bool },
}

struct State {
    screen: Box<dyn Screen>,
    /// What this draw sends at its `flush`.
    out: String,
    phase: Phase,
    /// The lines on screen that a later draw may still erase, oldest first.
    lines: VecDeque<Line>,
    /// The cursor is at the end of the last line, which no newline ends yet.
    open: bool,
    /// The width last reported to indicatif: the one it counts the rows of what it writes at.
    cols: usize,
}

impl State {
    /// Erases the lines at the end of the screen that took the `n` rows indicatif asks to erase
    /// (counted, as indicatif did, at the width each was drawn at), from the last up to the
    /// first, where it leaves the cursor, at the start of a row. Each is counted at the width
    /// the terminal has now: a line that a narrower terminal re-wrapped takes several rows.
    /// Lines that indicatif does not ask to erase (those printed above the bars, or a final
    /// frame left on screen) are never touched, whatever rows they take now.
    fn erase(&mut self, n: usize) {
        let (mut counted, mut k) = (0, 0);
        for line in self.lines.iter().rev() {
            if counted >= n {
                break;
            }
            counted += rows_taken([line.width], line.counted_at);
            k += 1;
        }
        if k == 0 {
            return;
        }
        let cols = usize::from(self.screen.size().1);
        let rows = rows_taken(self.lines.drain(self.lines.len() - k..).map(|l| l.width), cols);
        // From the end of the last line; or from the row below it, when a newline ended it.
        let up = rows - 1 + usize::from(!self.open);
        self.out.push_str("\r\x1b[2K");
        for _ in 0..up {
            self.out.push_str("\x1b[A\x1b[2K");
        }
        self.open = false;
    }

    /// A line of the draw: after a newline that ends the line before it. No newline after it,
    /// so that a frame never scrolls a blank row onto the screen; the cursor stays at its end.
    fn put(&mut self, text: &str) {
        if self.open {
            self.out.push('\n');
        }
        self.out.push_str(text);
        self.open = true;
        if self.lines.len() == REMEMBERED_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(Line { width: measure_text_width(text), counted_at: self.cols });
    }

    /// The first line of a draw: the erasing is over.
    fn start_writing(&mut self) {
        match self.phase {
            Phase::Writing { .. } => return,
            Phase::Erasing(n) => self.erase(n),
            Phase::Idle => {}
        }
        self.phase = Phase::Writing { padding_next: false };
    }

    /// A cursor move or a cleared row: part of erasing the last bars, when it starts a draw.
    fn erasing(&mut self) -> &mut usize {
        if !matches!(self.phase, Phase::Erasing(_)) {
            self.phase = Phase::Erasing(0);
        }
        match &mut self.phase {
            Phase::Erasing(n) => n,
            _ => unreachable!(),
        }
    }

    fn flush(&mut self) {
        if let Phase::Erasing(n) = self.phase {
            self.erase(n); // a draw without lines: a clear
        }
        self.phase = Phase::Idle;
        if !self.out.is_empty() {
            self.screen.send(&self.out);
            self.out.clear();
        }
    }
}

/// indicatif's draw target for a terminal that may re-wrap its lines (module documentation).
/// Cheap to clone: the clones share one terminal and one record of the lines on it.
#[derive(Clone)]
pub struct NewlineTerm {
    state: Arc<Mutex<State>>,
}

impl NewlineTerm {
    pub fn new(screen: Box<dyn Screen>) -> Self {
        let cols = usize::from(screen.size().1);
        let state = State { screen, out: String::new(), phase: Phase::Idle, lines: VecDeque::new(), open: false, cols };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// Makes what is on screen ordinary output, never erased: its last line is ended with a
    /// newline, and the lines are forgotten. For a final frame left on screen, and for lines
    /// indicatif printed while it holds no bar (nothing follows them to end them).
    pub fn settle(&self) {
        let mut st = self.state.lock();
        if st.open {
            st.out.push('\n');
            st.open = false;
        }
        st.lines.clear();
        st.flush();
    }
}

impl fmt::Debug for NewlineTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("NewlineTerm").field("lines", &st.lines.len()).field("phase", &st.phase).finish_non_exhaustive()
    }
}

impl TermLike for NewlineTerm {
    fn width(&self) -> u16 {
        let mut st = self.state.lock();
        let cols = st.screen.size().1;
        st.cols = usize::from(cols);
        cols
    }

    fn height(&self) -> u16 {
        self.state.lock().screen.size().0
    }

    fn move_cursor_up(&self, _n: usize) -> io::Result<()> {
        self.state.lock().erasing();
        Ok(())
    }

    fn move_cursor_down(&self, _n: usize) -> io::Result<()> {
        self.state.lock().erasing();
        Ok(())
    }

    // indicatif never moves the cursor sideways; passed through, as they stay on the row.
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            let _ = write!(self.state.lock().out, "\x1b[{n}C");
        }
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            let _ = write!(self.state.lock().out, "\x1b[{n}D");
        }
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        let mut st = self.state.lock();
        st.start_writing();
        st.put(s);
        st.phase = Phase::Writing { padding_next: false };
        Ok(())
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        let mut st = self.state.lock();
        st.start_writing();
        if st.phase == (Phase::Writing { padding_next: true }) {
            // The spaces up to the right edge, which would make the terminal wrap: dropped.
            debug_assert!(s.bytes().all(|b| b == b' '), "indicatif pads a line with spaces: {s:?}");
            st.phase = Phase::Writing { padding_next: false };
        } else {
            st.put(s);
            st.phase = Phase::Writing { padding_next: true };
        }
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        *self.state.lock().erasing() += 1;
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.state.lock().flush();
        Ok(())
    }
}

/// A terminal for tests: its size is set by the test, and it keeps what was written to it.
#[cfg(test)]
#[derive(Clone)]
pub(crate) struct FakeScreen(Arc<Mutex<(u16, u16, String)>>);

#[cfg(test)]
impl FakeScreen {
    pub(crate) fn new(rows: u16, cols: u16) -> Self {
        Self(Arc::new(Mutex::new((rows, cols, String::new()))))
    }

    pub(crate) fn resize(&self, cols: u16) {
        self.0.lock().1 = cols;
    }

    /// What was written since the last call.
    pub(crate) fn take(&self) -> String {
        std::mem::take(&mut self.0.lock().2)
    }
}

#[cfg(test)]
impl Screen for FakeScreen {
    fn size(&self) -> (u16, u16) {
        let st = self.0.lock();
        (st.0, st.1)
    }

    fn send(&self, text: &str) {
        self.0.lock().2.push_str(text);
    }
}

/// A terminal that re-wraps its lines when it is resized, as tmux does: it keeps logical lines
/// (what was written between newlines) and lays them out in rows at the width it has now. It
/// knows what the draw target writes: text, `\n`, `\r`, erase row (`ESC[2K`), row up (`ESC[A`),
/// and colours (ignored).
#[cfg(test)]
pub(crate) struct Rewrapping {
    lines: Vec<Vec<char>>,
    line: usize,
    /// The cursor's place in its logical line.
    col: usize,
    pub(crate) cols: usize,
}

#[cfg(test)]
impl Rewrapping {
    pub(crate) fn new(cols: usize) -> Self {
        Self { lines: vec![Vec::new()], line: 0, col: 0, cols }
    }

    /// The row of its logical line the cursor is on, and its column there. After the last
    /// column of a row the cursor stays on it (the next character wraps).
    fn pos(&self) -> (usize, usize) {
        let len = self.lines[self.line].len();
        if self.col > 0 && self.col % self.cols == 0 && self.col >= len {
            (self.col / self.cols - 1, self.cols - 1)
        } else {
            (self.col / self.cols, self.col % self.cols)
        }
    }

    /// Rows in the cursor's logical line.
    fn rows(&self) -> usize {
        self.lines[self.line].len().div_ceil(self.cols).max(1)
    }

    fn up(&mut self) {
        let (row, x) = self.pos();
        if row > 0 {
            self.col = (row - 1) * self.cols + x;
        } else if self.line > 0 {
            self.line -= 1;
            self.col = (self.rows() - 1) * self.cols + x;
        }
    }

    fn down(&mut self) {
        let (row, x) = self.pos();
        if row + 1 < self.rows() {
            self.col = (row + 1) * self.cols + x;
        } else {
            self.newline();
            self.col = x;
        }
    }

    fn newline(&mut self) {
        self.line += 1;
        self.col = 0;
        if self.line == self.lines.len() {
            self.lines.push(Vec::new());
        }
    }

    pub(crate) fn feed(&mut self, text: &str) {
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                // To the next row (the pty turns `\n` into `\r\n`).
                '\n' => {
                    self.down();
                    self.col = self.pos().0 * self.cols;
                }
                '\r' => self.col = self.pos().0 * self.cols,
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['));
                    let mut param = String::new();
                    let end = loop {
                        match chars.next() {
                            Some(d) if d.is_ascii_digit() || d == ';' => param.push(d),
                            other => break other,
                        }
                    };
                    let n = param.parse().unwrap_or(1);
                    match end {
                        Some('A') => (0..n).for_each(|_| self.up()),
                        Some('B') => (0..n).for_each(|_| self.down()),
                        Some('K') if n == 2 => {
                            let start = self.pos().0 * self.cols;
                            let line = &mut self.lines[self.line];
                            for cell in line.iter_mut().skip(start).take(self.cols) {
                                *cell = ' ';
                            }
                            if line.iter().all(|c| *c == ' ') {
                                line.clear();
                            }
                        }
                        Some('m') => {}
                        other => panic!("unexpected escape {param}{other:?}"),
                    }
                }
                c => {
                    let line = &mut self.lines[self.line];
                    if line.len() < self.col {
                        line.resize(self.col, ' ');
                    }
                    if self.col < line.len() {
                        line[self.col] = c;
                    } else {
                        line.push(c);
                    }
                    self.col += 1;
                }
            }
        }
    }

    /// The non-empty lines, scrollback included, as `capture-pane -J` shows them.
    pub(crate) fn text(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| l.iter().collect::<String>().trim_end().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

    use super::*;

    fn bars(screen: &FakeScreen) -> (MultiProgress, ProgressBar) {
        let term = NewlineTerm::new(Box::new(screen.clone()));
        // No rate limit: every change is drawn at once.
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term)));
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(ProgressStyle::with_template("{msg}").unwrap());
        let bar = multi.add(bar);
        (multi, bar)
    }

    fn frame(widths: &[usize], c: char) -> String {
        widths.iter().map(|w| c.to_string().repeat(*w)).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn rows_are_counted_at_the_width_the_terminal_has_now() {
        assert_eq!(rows_taken([118, 40, 0], 120), 3);
        assert_eq!(rows_taken([118, 40, 0], 80), 4, "the wide line re-wrapped onto two rows");
        assert_eq!(rows_taken([118, 80, 81], 40), 3 + 2 + 3);
        assert_eq!(rows_taken([], 80), 0);
    }

    #[test]
    fn lines_end_with_newlines_and_no_padding() {
        let screen = FakeScreen::new(24, 80);
        let (multi, bar) = bars(&screen);
        multi.println("printed above").unwrap();
        assert_eq!(screen.take(), "printed above", "no padding up to the right edge");
        bar.set_message(frame(&[70, 30], 'a'));
        assert_eq!(screen.take(), format!("\n{}\n{}", "a".repeat(70), "a".repeat(30)));
    }

    #[test]
    fn after_the_width_shrinks_the_frame_is_erased_by_the_rows_it_takes_now() {
        let screen = FakeScreen::new(24, 80);
        let (multi, bar) = bars(&screen);
        multi.println("printed above").unwrap();
        bar.set_message(frame(&[70, 30, 70], 'a'));
        screen.take();
        // Same frame at 80 columns: indicatif asks for its 3 rows, which they still are.
        bar.set_message(frame(&[70, 30, 71], 'b'));
        let erase_3 = "\r\x1b[2K\x1b[A\x1b[2K\x1b[A\x1b[2K";
        assert!(screen.take().starts_with(&format!("{erase_3}bbb")));
        // At 40 columns the terminal re-wrapped the two long lines onto two rows each.
        // indicatif still asks for 3 rows (it counted them at 80); 2 + 1 + 2 are erased.
        screen.resize(40);
        bar.set_message(frame(&[38, 20], 'c'));
        let out = screen.take();
        let erase_5 = format!("\r\x1b[2K{}", "\x1b[A\x1b[2K".repeat(4));
        assert_eq!(out, format!("{erase_5}{}\n{}", "c".repeat(38), "c".repeat(20)));
        // The line printed above is not among them: the next print erases only the frame.
        multi.println("second").unwrap();
        let erase_2 = "\r\x1b[2K\x1b[A\x1b[2K";
        assert_eq!(screen.take(), format!("{erase_2}second\n{}\n{}", "c".repeat(38), "c".repeat(20)));
    }

    /// What `console::Term` sends for each call: indicatif drawing straight on the terminal.
    #[derive(Clone, Debug)]
    struct Direct(Arc<Mutex<(u16, String)>>);

    impl TermLike for Direct {
        fn width(&self) -> u16 {
            self.0.lock().0
        }
        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            self.write_str(&if n > 0 { format!("\x1b[{n}A") } else { String::new() })
        }
        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            self.write_str(&if n > 0 { format!("\x1b[{n}B") } else { String::new() })
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            unreachable!()
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            unreachable!()
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().1.push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            self.write_str("\r\x1b[2K")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A long line printed, then at each width a frame (two lines almost as wide as the
    /// terminal was at first) and a line printed above it; the final frame left on screen.
    /// The lines of a terminal that re-wraps them on each resize, at the end.
    fn resized(term: Box<dyn TermLike>, resize: &dyn Fn(u16), take: &dyn Fn() -> String) -> Vec<String> {
        let mut tty = Rewrapping::new(120);
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::term_like(term));
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(ProgressStyle::with_template("{msg}").unwrap());
        let bar = multi.add(bar);
        multi.println("x".repeat(100)).unwrap();
        for (cols, c) in [(120, 'a'), (120, 'b'), (80, 'c'), (60, 'd'), (120, 'e'), (50, 'f')] {
            resize(cols);
            tty.cols = usize::from(cols);
            bar.set_message(frame(&[110, 40, 118], c));
            tty.feed(&take());
            multi.println(format!("printed at {cols}")).unwrap();
            tty.feed(&take());
        }
        bar.finish();
        drop(bar); // left on screen: indicatif forgets its rows
        tty.feed(&take());
        tty.text()
    }

    fn expected() -> Vec<String> {
        let mut lines = vec!["x".repeat(100)];
        lines.extend([120, 120, 80, 60, 120, 50].map(|c| format!("printed at {c}")));
        lines.extend(["f".repeat(110), "f".repeat(40), "f".repeat(118)]);
        lines
    }

    #[test]
    fn a_rewrapping_terminal_keeps_no_fragments_and_loses_no_printed_line() {
        let screen = FakeScreen::new(24, 120);
        let term = NewlineTerm::new(Box::new(screen.clone()));
        assert_eq!(resized(Box::new(term), &|cols| screen.resize(cols), &|| screen.take()), expected());
    }

    #[test]
    fn drawn_directly_indicatif_leaves_fragments_and_loses_printed_lines() {
        let direct = Direct(Arc::new(Mutex::new((120, String::new()))));
        let d = direct.clone();
        let lines = resized(Box::new(direct), &|cols| d.0.lock().0 = cols, &|| std::mem::take(&mut d.0.lock().1));
        // Its padding joins everything into one line that the terminal wraps.
        assert_eq!(lines.len(), 1);
        let text = &lines[0];
        assert!(text.contains(&"b".repeat(110)), "a fragment of an earlier frame");
        assert!(!text.contains("printed at 80"), "a printed line erased");
    }
}
