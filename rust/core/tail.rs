//! The tail of an item's streamed output (`item.stream(text)`, an LLM's tokens as they come):
//! bounded, cheap to append to once per token, sanitized only when a snapshot shows it.

use super::text::sanitize_tail;

/// Characters of a tail a snapshot shows: its end, sanitized (see `text::sanitize_tail`).
pub const TAIL_CHARS: usize = 400;
/// Bytes of raw text kept: past [`MAX_RAW`], the oldest are dropped down to [`KEEP_RAW`].
/// Escape sequences are only removed when the tail is shown, so the raw text keeps a margin
/// beyond the characters shown; dropping in halves keeps an append amortized O(its length).
const MAX_RAW: usize = 4096;
const KEEP_RAW: usize = 2048;

/// The raw end of a stream of text.
#[derive(Debug, Default)]
pub struct Tail {
    raw: String,
}

impl Tail {
    /// Appends `text`, keeping the end of it all within bounds.
    pub fn push(&mut self, text: &str) {
        if text.len() > KEEP_RAW {
            self.raw.clear();
            self.raw.push_str(&text[floor_char(text, text.len() - KEEP_RAW)..]);
            return;
        }
        self.raw.push_str(text);
        if self.raw.len() > MAX_RAW {
            let cut = floor_char(&self.raw, self.raw.len() - KEEP_RAW);
            self.raw.drain(..cut);
        }
    }

    pub fn clear(&mut self) {
        self.raw.clear();
    }

    /// The last [`TAIL_CHARS`] characters as shown (escape sequences and control characters
    /// removed, newlines marked); `None` when nothing shows.
    pub fn shown(&self) -> Option<String> {
        if self.raw.is_empty() {
            return None;
        }
        let clean = sanitize_tail(&self.raw);
        let start = clean.char_indices().rev().nth(TAIL_CHARS - 1).map_or(0, |(i, _)| i);
        let shown = &clean[start..];
        (!shown.trim().is_empty()).then(|| shown.to_owned())
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_end_bounded_and_shows_it_safe() {
        let mut t = Tail::default();
        assert_eq!(t.shown(), None);
        for i in 0..10_000 {
            t.push(&format!("tök{i} "));
            assert!(t.raw.len() <= MAX_RAW);
        }
        let shown = t.shown().unwrap();
        assert_eq!(shown.chars().count(), TAIL_CHARS);
        assert!(shown.ends_with("tök9998 tök9999 "), "{shown}");
        t.push(&"é".repeat(5000));
        assert!(t.raw.len() <= KEEP_RAW && t.raw.starts_with('é'));
        t.clear();
        t.push("line one\n\u{1b}[31mred\u{1b}[0m\r\n");
        assert_eq!(t.shown().as_deref(), Some("line one↵red↵"));
        t.clear();
        t.push("\u{1b}[2J\n");
        assert_eq!(t.shown().as_deref(), Some("↵"), "a newline alone still shows");
        t.clear();
        t.push(" \u{7}");
        assert_eq!(t.shown(), None, "nothing to show");
    }
}
