//! Bounding text that comes from users (item names, error messages) before it is stored, and
//! making it safe to draw.

use super::limits::MAX_NAME_CHARS;

/// The first `max_chars` characters of `s`, with `…` when cut. Keeps memory bounded
/// however long a name or error text is.
pub fn clip(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_owned(),
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
    }
}

/// [`clip`] into `out` (emptied first), reusing its buffer: per-item records keep no
/// allocation of their own once their ring is full.
pub fn clip_into(out: &mut String, s: &str, max_chars: usize) {
    out.clear();
    if s.len() <= max_chars {
        // No more characters than bytes: nothing to cut, and no need to count them.
        out.push_str(s);
        return;
    }
    match s.char_indices().nth(max_chars) {
        None => out.push_str(s),
        Some((cut, _)) => {
            out.push_str(&s[..cut]);
            out.push('…');
        }
    }
}

/// The name the history keeps for an item (and `pending()` compares with): the name itself
/// when it has at most [`MAX_NAME_CHARS`] characters; a longer one as its beginning, `…#` and
/// a hash of the whole name, so that it stays bounded and two long names that share their
/// beginning stay two items.
pub fn item_key(name: &str) -> std::borrow::Cow<'_, str> {
    // SQLite reads the rows' text as C strings: a NUL would cut the stored name short, and it
    // would never match again. It is kept as U+FFFD, here and for `pending()` alike.
    if name.contains('\0') {
        return std::borrow::Cow::Owned(item_key(&name.replace('\0', "\u{fffd}")).into_owned());
    }
    // Short names (nearly all) cost one scan and no copy.
    if name.len() <= MAX_NAME_CHARS || name.chars().nth(MAX_NAME_CHARS).is_none() {
        return std::borrow::Cow::Borrowed(name);
    }
    // FNV-1a (64 bits): stable across versions and platforms, which the keys of a resumed
    // run depend on; collisions are out of reach for the names of one run.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let keep: String = name.chars().take(MAX_NAME_CHARS - 18).collect();
    std::borrow::Cow::Owned(format!("{keep}…#{hash:016x}"))
}

/// Removes terminal escape sequences and control characters so that text from users cannot
/// move the cursor, change colours or rewrite the screen. Tabs and newlines become spaces;
/// other control characters and bidirectional overrides are dropped.
pub fn sanitize(s: &str) -> String {
    scrub(s, " ", " ")
}

/// What a newline of streamed output shows as: a tail is drawn on one line.
pub const NEWLINE_MARK: &str = "↵";

/// [`sanitize`] for streamed output drawn on one line: a newline shows as [`NEWLINE_MARK`], a
/// carriage return is dropped (`\r\n` is one newline).
pub fn sanitize_tail(s: &str) -> String {
    scrub(s, NEWLINE_MARK, "")
}

fn scrub(s: &str, newline: &str, carriage_return: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\u{9b}' => skip_until_final(&mut chars),
            '\n' => out.push_str(newline),
            '\r' => out.push_str(carriage_return),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        // OSC, DCS, PM, APC, SOS: strings ended by BEL or ESC \.
        Some(']' | 'P' | '^' | '_' | 'X') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Skips a CSI sequence's parameters up to and including its final byte (0x40..=0x7e).
fn skip_until_final(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }

    #[test]
    fn long_item_keys_are_bounded_and_distinct() {
        assert_eq!(item_key("short"), "short");
        let a = format!("{}a", "x".repeat(5000));
        let b = format!("{}b", "x".repeat(5000));
        let (ka, kb) = (item_key(&a), item_key(&b));
        assert_eq!(ka.chars().count(), MAX_NAME_CHARS);
        assert_ne!(ka, kb);
        assert_eq!(ka, item_key(&a), "stable");
        assert_eq!(item_key(&"y".repeat(MAX_NAME_CHARS)), "y".repeat(MAX_NAME_CHARS));
        assert_eq!(item_key("a\0b"), "a\u{fffd}b", "no NUL reaches SQLite");
    }

    #[test]
    fn sanitize_strips_escapes_and_controls() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{1b}[0m"), "ared");
        assert_eq!(sanitize("x\u{1b}]0;title\u{7}y"), "xy");
        assert_eq!(sanitize("x\u{1b}]8;;http://e\u{1b}\\y"), "xy");
        assert_eq!(sanitize("a\u{1b}[2J\u{1b}[Hb"), "ab");
        assert_eq!(sanitize("line1\nline2\r\u{7}\u{8}"), "line1 line2 ");
        assert_eq!(sanitize("evil\u{202e}txt"), "eviltxt");
        assert_eq!(sanitize("\u{9b}31mz"), "z");
        assert_eq!(sanitize("plain ünïcode ✓"), "plain ünïcode ✓");
    }

    #[test]
    fn a_tail_marks_its_newlines() {
        assert_eq!(sanitize_tail("one\r\ntwo\n\tthree\u{1b}[2K\u{7}"), "one↵two↵ three");
        assert_eq!(NEWLINE_MARK, sanitize_tail("\n"));
    }
}
