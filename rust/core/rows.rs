//! Item rows for the history store, encoded as they come into chunks of at most
//! [`ROWS_PER_CHUNK`] rows (a pool's, joined up to [`JOINED_BYTES`]), each a JSON array the
//! store keeps as one row of `item_chunks` with its counts by status. Encoding here, not in
//! Python, keeps the writer thread off the interpreter lock while the job runs.
//!
//! A row is `[phase, name, status, start, duration, error, metrics]`. A pool's worker encodes
//! its chunk's rows shorter (a buffer made `short`, history schema 6): the rows of a chunk
//! share their phase and the start they are timed from ([`Shared`], kept beside the chunk), so
//! that a row is `[name, microseconds from t0 to its start, its duration in nanoseconds]`,
//! whole numbers, then its status, error and metrics as far as it has them (no status is
//! "done"). A name that is an integer's own decimal text is written as that number. A done
//! item of a pool over numbers is `[12345,41230,10300]`, about 20 bytes of the 72 a whole row
//! took, and integers are written in a fraction of a float's time: `SQLite`'s cost of storing
//! a chunk (its pages, the WAL, the checkpoint that copies them) goes with its bytes, and at
//! 10 µs an item it was a pool's largest cost of history.
//!
//! t0 is the pool's start, the same in all its workers, so that the parent joins the chunks
//! its workers send into chunks of about [`JOINED_BYTES`] (`extend_encoded`): a chunk of a few
//! kilobytes is stored whole in a page of its own that it fills by half, where a larger one
//! fills the pages it takes. A start's offset grows with the pool's age (six digits a few
//! seconds in, ten an hour in: four bytes more than from its chunk's first start), and fewer,
//! fuller pages more than make up for it.

use parking_lot::Mutex;

use super::chunk_text::ChunkText;
use super::kinds::ItemStatus;

/// The most rows a chunk takes from `push`: a reader of the newest rows (a monitor, every half
/// second) unpacks a few chunks, never a long run's whole batch. The chunks a pool's workers
/// encoded are joined up to [`JOINED_BYTES`] (see `extend_encoded`).
pub const ROWS_PER_CHUNK: usize = 1000;

/// Short chunks the parent is given are joined while the text stays within this many bytes:
/// `SQLite` stores a row larger than a page (16 KiB) in full overflow pages, and this size
/// fills them to within a few percent, while a reader of the newest rows unpacks about three
/// thousand.
pub const JOINED_BYTES: usize = 64 * 1024;

/// Rows of one run, waiting for the store's writer.
#[derive(Debug, Default)]
pub struct RowBuffer {
    run_id: String,
    /// Rows are encoded short, a chunk a phase, timed from this start (see the module's docs).
    origin: Option<f64>,
    inner: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    chunks: Vec<Chunk>,
    /// Rows in all of `chunks`.
    rows: usize,
    /// The last chunk was given (`extend_encoded`): the next row starts a new one, and only
    /// the next given chunk may join it.
    sealed: bool,
}

/// A chunk of rows: the JSON array's text (without its closing bracket until taken), how many
/// rows, how many of them are done, failed and skipped, and what its rows share (None: each
/// row is whole).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Chunk {
    pub text: ChunkText,
    pub rows: usize,
    pub counts: StatusCounts,
    pub shared: Option<Shared>,
}

/// What the rows of a short chunk share: their phase, and the start (Unix time) each row's
/// start is the offset from (their pool's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    pub phase: String,
    pub t0: f64,
}

/// Rows by status: done, failed, skipped (the statuses rows are kept for).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatusCounts {
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl StatusCounts {
    fn add_counts(&mut self, other: Self) {
        self.done += other.done;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    fn add(&mut self, status: ItemStatus) {
        match status {
            ItemStatus::Done => self.done += 1,
            ItemStatus::Failed => self.failed += 1,
            ItemStatus::Skipped => self.skipped += 1,
            ItemStatus::Cancelled => {}
        }
    }
}

/// One item row: phase path, name, status, start (Unix time), duration, error, metrics JSON.
/// Encoded as a JSON array of those seven; the run is the buffer's, kept beside the rows.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub phase: &'a str,
    pub name: &'a str,
    pub status: ItemStatus,
    pub started_at: f64,
    pub duration: Option<f64>,
    pub error: Option<&'a str>,
    pub metrics: Option<&'a str>,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // A name, a status, a phase path: nearly always text JSON keeps as it is (no quote, no
    // backslash, no control character), copied between quotes, as serde_json would write it.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // serde_json escapes exactly as JSON needs; writing into a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).expect("a str encodes");
}

fn push_num(out: &mut Vec<u8>, v: Option<f64>) {
    match v.filter(|v| v.is_finite()) {
        // `zmij` writes what serde_json would (it is serde_json's), without a serializer.
        Some(v) => out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// A short row's start is in microseconds from its chunk's t0, its duration in nanoseconds.
const MICROS: f64 = 1e6;
const NANOS: f64 = 1e9;

/// `seconds` as a whole number of `1 / per` seconds (microseconds, nanoseconds), or null when
/// it is not finite or out of range.
fn push_units(out: &mut Vec<u8>, seconds: Option<f64>, per: f64) {
    match seconds.and_then(|s| whole_units(s * per)) {
        Some(units) => out.extend_from_slice(itoa::Buffer::new().format(units).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// `units` rounded half away from zero, as `f64::round`, or None when it is not finite or out
/// of range.
fn whole_units(units: f64) -> Option<i64> {
    // 2**62: beyond any time a run lasts, well within an i64 (the cast cannot saturate).
    const LIMIT: f64 = 4.611_686_018_427_388e18;
    if units.abs() >= LIMIT || units.is_nan() {
        return None;
    }
    // By a cast that truncates and a look at what it cut off (exact: both are exact below
    // 2**62): `round` is a call into libm (no SSE4.1 instruction for it in the baseline
    // x86-64), twice a row.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let whole = units as i64;
    #[allow(clippy::cast_precision_loss)]
    let away = i64::from((units - whole as f64).abs() >= 0.5);
    Some(if units < 0.0 { whole - away } else { whole + away })
}

/// The row a pool over numbers makes for each item, `[name,start,duration]` (done, its name an
/// integer's text, nothing else), made on the stack from its end back (so that no number's
/// digits are counted first) and appended to the chunk in one copy, once its lead (the `[` or
/// `,` before it) is known. Written field by field into the chunk, each field took a capacity
/// check and a copy of its own: about a fifth of what keeping a row cost a worker.
struct Line {
    bytes: [u8; Self::MAX],
    /// Where the row's lead goes in `bytes` (the row ends at their end).
    start: usize,
}

impl Line {
    /// The lead, the brackets, two commas, a name of at most 16 bytes (see `is_integer_text`)
    /// and two numbers of at most 20 (`whole_units` bounds them).
    const MAX: usize = 64;

    /// The row without its lead (a zero byte until `led` writes it), or None when it is not
    /// such a row (a time that is no time, or out of range).
    fn done(name: &str, start_us: f64, duration_ns: Option<f64>) -> Option<Self> {
        let (start, duration) = (whole_units(start_us)?, whole_units(duration_ns?)?);
        let name = name.as_bytes();
        let mut bytes = [0u8; Self::MAX];
        let mut at = Self::MAX - 1;
        bytes[at] = b']';
        at = put_int(&mut bytes, at, duration);
        at -= 1;
        bytes[at] = b',';
        at = put_int(&mut bytes, at, start);
        at -= 1;
        bytes[at] = b',';
        at -= name.len();
        bytes[at..at + name.len()].copy_from_slice(name);
        bytes[at - 1] = b'[';
        Some(Self { bytes, start: at - 2 })
    }

    /// The row with its lead.
    fn led(&mut self, lead: u8) -> &[u8] {
        self.bytes[self.start] = lead;
        &self.bytes[self.start..]
    }
}

/// Writes `v` in decimal (`itoa`) so that it ends before `bytes[end]`; returns where it starts.
#[inline]
fn put_int(bytes: &mut [u8; Line::MAX], end: usize, v: i64) -> usize {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(v).as_bytes();
    let start = end - digits.len();
    bytes[start..end].copy_from_slice(digits);
    start
}

/// `phase, name, status, start, duration, error, metrics`.
fn encode_whole(buf: &mut Vec<u8>, row: &Row<'_>) {
    push_str(buf, row.phase);
    for s in [row.name, row.status.as_str()] {
        buf.push(b',');
        push_str(buf, s);
    }
    buf.push(b',');
    push_num(buf, Some(row.started_at));
    buf.push(b',');
    push_num(buf, row.duration);
    for s in [row.error, row.metrics] {
        buf.push(b',');
        push_text(buf, s);
    }
}

/// `name, microseconds from t0 to the start, nanoseconds of duration`, then the status, the
/// error and the metrics as far as the row has them (a reader takes what is missing as null,
/// and a null status as "done").
fn encode_short(buf: &mut Vec<u8>, row: &Row<'_>, t0: f64, integer: bool) {
    if integer {
        buf.extend_from_slice(row.name.as_bytes());
    } else {
        push_str(buf, row.name);
    }
    buf.push(b',');
    push_units(buf, Some(row.started_at - t0), MICROS);
    buf.push(b',');
    push_units(buf, row.duration, NANOS);
    let status = (row.status != ItemStatus::Done).then_some(row.status.as_str());
    let rest = [status, row.error, row.metrics];
    let kept = rest.iter().rposition(Option::is_some).map_or(0, |last| last + 1);
    for s in rest[..kept].iter().copied() {
        buf.push(b',');
        push_text(buf, s);
    }
}

/// A text field, or null.
fn push_text(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Whether `name` is the decimal text an integer is written as (`str(n)` of some `n`, as an
/// exact JSON integer: at most 15 digits, no leading zero, no "-0"): written as that number, it
/// reads back as the same text.
fn is_integer_text(name: &str) -> bool {
    let digits = name.strip_prefix('-').unwrap_or(name).as_bytes();
    match digits {
        [b'0'] => digits.len() == name.len(),
        [] | [b'0', ..] => false,
        _ => digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit),
    }
}

impl RowBuffer {
    pub fn new(run_id: &str) -> Self {
        Self { run_id: run_id.to_owned(), origin: None, inner: Mutex::default() }
    }

    /// A buffer whose rows are encoded short, a chunk a phase, their starts timed from
    /// `origin` (a pool's worker, `origin` the pool's start; see the module's docs).
    pub fn short(run_id: &str, origin: f64) -> Self {
        Self { origin: Some(origin), ..Self::new(run_id) }
    }

    /// Adds a row of the buffer's run; returns how many rows are waiting. The name is stored as
    /// its history key and the error clipped (see `text::item_key`), so that a row stays small
    /// whatever the job hands in.
    pub fn push(&self, row: &Row<'_>) -> usize {
        if let Some(line) = self.common_line(row) {
            return self.push_line(row.phase, line);
        }
        // An integer's own text is its own key (no NUL, and short): not looked at again.
        let integer = is_integer_text(row.name);
        let name = if integer { std::borrow::Cow::Borrowed(row.name) } else { super::text::item_key(row.name) };
        let error = row.error.map(|e| super::text::clip(e, super::limits::MAX_ERROR_CHARS));
        let row = Row { name: &name, error: error.as_deref(), ..*row };
        let mut g = self.inner.lock();
        let chunk = self.chunk_for(&mut g, row.phase);
        let buf = chunk.text.heap_mut();
        buf.push(if chunk.rows == 0 { b'[' } else { b',' });
        buf.push(b'[');
        match &chunk.shared {
            None => encode_whole(buf, &row),
            Some(shared) => encode_short(buf, &row, shared.t0, integer),
        }
        buf.push(b']');
        chunk.rows += 1;
        chunk.counts.add(row.status);
        g.rows += 1;
        g.rows
    }

    /// The row of a short buffer's done item named by an integer (no error, no metrics): see
    /// `Line`. Made before the lock is taken, so that the lock is held for the copy alone (the
    /// threads of a `thread_map` share a buffer), and without the general path's name key,
    /// clipped error and rebuilt row, which such a row never needs. Its start is timed from the
    /// buffer's origin: every chunk `push` writes to is one `chunk_for` made, with that t0 (a
    /// chunk given by `extend_encoded`, with a t0 of its own, is sealed: no row joins it).
    #[inline]
    fn common_line(&self, row: &Row<'_>) -> Option<Line> {
        let t0 = self.origin?;
        if row.status != ItemStatus::Done || row.error.is_some() || row.metrics.is_some() || !is_integer_text(row.name)
        {
            return None;
        }
        Line::done(row.name, (row.started_at - t0) * MICROS, row.duration.map(|d| d * NANOS))
    }

    /// Appends the common row `line` of phase `phase` (see `common_line`).
    fn push_line(&self, phase: &str, mut line: Line) -> usize {
        let mut g = self.inner.lock();
        let chunk = self.chunk_for(&mut g, phase);
        debug_assert_eq!(chunk.shared.as_ref().map(|s| s.t0.to_bits()), self.origin.map(f64::to_bits));
        let lead = if chunk.rows == 0 { b'[' } else { b',' };
        chunk.text.heap_mut().extend_from_slice(line.led(lead));
        chunk.rows += 1;
        chunk.counts.done += 1;
        g.rows += 1;
        g.rows
    }

    /// The chunk a row of `phase` goes to: the last one, unless it was given (sealed), is full,
    /// or (in a short buffer) holds another phase's rows; else a new one.
    fn chunk_for<'g>(&self, pending: &'g mut Pending, phase: &str) -> &'g mut Chunk {
        let other_phase = |c: &Chunk| self.origin.is_some() && c.shared.as_ref().is_none_or(|s| s.phase != phase);
        if pending.sealed || pending.chunks.last().is_none_or(|c| c.rows >= ROWS_PER_CHUNK || other_phase(c)) {
            let shared = self.origin.map(|t0| Shared { phase: phase.to_owned(), t0 });
            pending.chunks.push(Chunk { shared, ..Chunk::default() });
            pending.sealed = false;
        }
        pending.chunks.last_mut().expect("a chunk was just made")
    }

    /// The waiting chunks, each a whole JSON array (the buffer starts over); None if no row
    /// waits.
    pub fn take(&self) -> Option<Vec<Chunk>> {
        let mut g = self.inner.lock();
        if g.rows == 0 {
            return None;
        }
        let mut chunks = std::mem::take(&mut *g).chunks;
        for chunk in &mut chunks {
            chunk.text.push(b']');
        }
        Some(chunks)
    }

    /// The run whose rows these are.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn len(&self) -> usize {
        self.inner.lock().rows
    }

    /// Appends a chunk that another buffer of run `run_id` encoded and `take` returned (a
    /// pool's worker process encodes its chunk's rows; the parent queues them in one call):
    /// its rows are joined to the last chunk's when that is one given here too, whose rows share
    /// the same phase and t0, and the text stays within [`JOINED_BYTES`]; else it is kept as
    /// it came. Returns how many rows are waiting, or an error, leaving the buffer as it was,
    /// when `array` is not such a chunk of this run's rows.
    pub fn extend_encoded(
        &self, array: &str, rows: usize, counts: StatusCounts, run_id: &str, shared: Option<Shared>,
    ) -> Result<usize, String> {
        let counted = counts.done + counts.failed + counts.skipped;
        if rows == 0 || counted > rows || run_id != self.run_id || !array.starts_with("[[") || !array.ends_with("]]") {
            return Err(format!("not {rows} encoded rows of run {:?}", self.run_id));
        }
        let mut g = self.inner.lock();
        let pending = &mut *g;
        // Without its closing bracket, which comes at `take`. Joined, the text is the two
        // without their closing brackets and this one's opening one, a comma and a closing one.
        let open = array.len() - 1;
        let joins = |c: &Chunk| shared.is_some() && c.shared == shared && c.text.len() + open < JOINED_BYTES;
        if let Some(last) = pending.chunks.last_mut().filter(|c| pending.sealed && joins(c)) {
            last.text.push(b',');
            last.text.extend_from_slice(&array.as_bytes()[1..open]);
            last.rows += rows;
            last.counts.add_counts(counts);
        } else {
            // In fork-private memory: the workers' chunks are joined into it while they run.
            let text = ChunkText::private(&array.as_bytes()[..open]);
            pending.chunks.push(Chunk { text, rows, counts, shared });
        }
        pending.rows += rows;
        pending.sealed = true;
        Ok(pending.rows)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(chunk: &Chunk) -> serde_json::Value {
        serde_json::from_slice(&chunk.text).unwrap()
    }

    #[test]
    fn encoded_chunks_of_the_same_run_append_whole() {
        let row = Row {
            phase: "p",
            name: "a",
            status: ItemStatus::Done,
            started_at: 1.0,
            duration: None,
            error: None,
            metrics: None,
        };
        let worker = RowBuffer::new("r1");
        worker.push(&row);
        worker.push(&Row { name: "b", status: ItemStatus::Failed, error: Some("boom"), ..row });
        let chunks = worker.take().unwrap();
        assert_eq!(chunks.len(), 1);
        let (chunk, counts) = (std::str::from_utf8(&chunks[0].text).unwrap(), chunks[0].counts);
        assert_eq!(counts, StatusCounts { done: 1, failed: 1, skipped: 0 });
        let parent = RowBuffer::new("r1");
        parent.push(&Row { name: "first", ..row });
        assert_eq!(parent.extend_encoded(chunk, 2, counts, "r1", None), Ok(3));
        parent.push(&Row { name: "after", ..row });
        let got = parent.take().unwrap();
        assert_eq!(got.iter().map(|c| c.rows).collect::<Vec<_>>(), [1, 2, 1], "the worker's chunk stays whole");
        assert_eq!(text(&got[1])[1][5], "boom");
        assert_eq!(got[1].counts, counts);
        for bad in ["", "[]", "[[\"p\",\"a\"]"] {
            assert!(parent.extend_encoded(bad, 1, StatusCounts::default(), "r1", None).is_err(), "{bad:?} is refused");
        }
        assert!(parent.extend_encoded(chunk, 2, counts, "r2", None).is_err(), "another run's rows are refused");
        assert!(parent.extend_encoded(chunk, 0, StatusCounts::default(), "r1", None).is_err(), "no rows is no chunk");
        let too_many = StatusCounts { done: 3, ..counts };
        assert!(parent.extend_encoded(chunk, 2, too_many, "r1", None).is_err(), "counts beyond the rows");
        assert!(parent.is_empty(), "a refused text leaves the buffer as it was");
    }

    #[test]
    fn rows_encode_as_json_arrays_of_bounded_chunks() {
        let b = RowBuffer::new("r1");
        assert!(b.take().is_none());
        let row = Row {
            phase: "map",
            name: "a\"b\n\u{7}",
            status: ItemStatus::Done,
            started_at: 1.5,
            duration: Some(0.25),
            error: None,
            metrics: Some("{\"t\":1}"),
        };
        assert_eq!(b.push(&row), 1);
        b.push(&Row { duration: Some(f64::NAN), error: Some("boom"), status: ItemStatus::Skipped, ..row });
        let chunks = b.take().unwrap();
        assert_eq!((chunks.len(), chunks[0].rows), (1, 2));
        assert_eq!(chunks[0].counts, StatusCounts { done: 1, failed: 0, skipped: 1 });
        let v = text(&chunks[0]);
        assert_eq!(v[0][1], "a\"b\n\u{7}");
        assert_eq!(v[1][4], serde_json::Value::Null, "non-finite numbers become null");
        assert_eq!(v[1][5], "boom");
        assert_eq!(v[0][0], "map", "plain text is copied as it is");
        assert!(b.take().is_none());
        for i in 0..=(2 * ROWS_PER_CHUNK) {
            assert_eq!(b.push(&row), i + 1);
        }
        let chunks = b.take().unwrap();
        assert_eq!(chunks.iter().map(|c| c.rows).collect::<Vec<_>>(), [ROWS_PER_CHUNK, ROWS_PER_CHUNK, 1]);
        assert!(chunks.iter().all(|c| text(c).as_array().unwrap().len() == c.rows));
    }

    #[test]
    fn a_short_buffer_keeps_a_phase_a_chunk_and_rows_without_what_they_share() {
        let origin = 1_764_532_012.123_456_7;
        let b = RowBuffer::short("r1", origin);
        let row = Row {
            phase: "map",
            name: "7",
            status: ItemStatus::Done,
            started_at: origin + 0.5,
            duration: Some(1.029_999_9e-5),
            error: None,
            metrics: None,
        };
        b.push(&row);
        b.push(&Row { started_at: row.started_at + 0.25, status: ItemStatus::Failed, error: Some("boom"), ..row });
        b.push(&Row { metrics: Some("{\"t\":1}"), duration: None, started_at: f64::NAN, ..row });
        b.push(&Row { phase: "other", duration: Some(f64::NAN), ..row });
        b.push(&Row { phase: "other", name: "8", duration: Some(1e300), started_at: origin - 1.0, ..row });
        let chunks = b.take().unwrap();
        assert_eq!(chunks.iter().map(|c| c.rows).collect::<Vec<_>>(), [3, 2], "a chunk a phase");
        let shared = chunks[0].shared.clone().unwrap();
        assert_eq!((shared.phase.as_str(), shared.t0.to_bits()), ("map", origin.to_bits()), "timed from the origin");
        assert_eq!(chunks[1].shared, Some(Shared { phase: "other".into(), t0: origin }));
        assert_eq!(
            std::str::from_utf8(&chunks[0].text).unwrap(),
            r#"[[7,500000,10300],[7,750000,10300,"failed","boom"],[7,null,null,null,null,{"t":1}]]"#
                .replace(r#"{"t":1}"#, r#""{\"t\":1}""#),
            "microseconds from t0 to the start (none for a start that is no time), nanoseconds of \
             duration, no status when done, no trailing nulls"
        );
        assert_eq!(
            std::str::from_utf8(&chunks[1].text).unwrap(),
            "[[7,500000,null],[8,-1000000,null]]",
            "out of range is null; a start before the origin counts back"
        );
        assert_eq!(chunks[0].counts, StatusCounts { done: 2, failed: 1, skipped: 0 });
        // The parent keeps a worker's short chunk with what its rows share.
        let parent = RowBuffer::new("r1");
        let text = std::str::from_utf8(&chunks[1].text).unwrap();
        assert_eq!(parent.extend_encoded(text, 2, chunks[1].counts, "r1", chunks[1].shared.clone()), Ok(2));
        assert_eq!(parent.take().unwrap()[0].shared, chunks[1].shared);
    }

    #[test]
    fn given_chunks_of_a_phase_and_origin_are_joined_up_to_a_size() {
        let worker = |origin: f64, names: std::ops::Range<usize>, phase: &str| {
            let b = RowBuffer::short("r1", origin);
            for (k, name) in names.map(|n| n.to_string()).enumerate() {
                let status = if k == 1 { ItemStatus::Failed } else { ItemStatus::Done };
                let row =
                    Row { phase, name: &name, status, started_at: origin, duration: None, error: None, metrics: None };
                b.push(&row);
            }
            b.take().unwrap().remove(0)
        };
        let give = |parent: &RowBuffer, c: &Chunk| {
            let text = std::str::from_utf8(&c.text).unwrap();
            parent.extend_encoded(text, c.rows, c.counts, "r1", c.shared.clone())
        };
        let parent = RowBuffer::new("r1");
        let (a, b) = (worker(5.0, 0..3, "map"), worker(5.0, 3..5, "map"));
        assert_eq!(give(&parent, &a), Ok(3));
        assert_eq!(give(&parent, &b), Ok(5));
        give(&parent, &worker(6.0, 5..6, "map")).unwrap(); // another pool's: another origin
        give(&parent, &worker(6.0, 6..7, "other")).unwrap(); // another phase
        parent.push(&Row {
            phase: "p",
            name: "own",
            status: ItemStatus::Done,
            started_at: 1.0,
            duration: None,
            error: None,
            metrics: None,
        });
        give(&parent, &worker(6.0, 7..8, "other")).unwrap(); // after a row of the parent's own
        let got = parent.take().unwrap();
        assert_eq!(got.iter().map(|c| c.rows).collect::<Vec<_>>(), [5, 1, 1, 1, 1]);
        assert_eq!(
            std::str::from_utf8(&got[0].text).unwrap(),
            "[[0,0,null],[1,0,null,\"failed\"],[2,0,null],[3,0,null],[4,0,null,\"failed\"]]"
        );
        assert_eq!(got[0].counts, StatusCounts { done: 3, failed: 2, skipped: 0 });
        assert_eq!(got[0].shared, a.shared);
        // Joined while the text stays within `JOINED_BYTES`.
        let big = worker(5.0, 0..1000, "map");
        assert!(big.text.len() < JOINED_BYTES / 3);
        for _ in 0..10 {
            give(&parent, &big).unwrap();
        }
        let got = parent.take().unwrap();
        assert!(got.len() > 1 && got.iter().all(|c| c.text.len() <= JOINED_BYTES), "bounded");
        assert!(got.iter().all(|c| c.rows % 1000 == 0 && text(c).as_array().unwrap().len() == c.rows));
        assert_eq!(got.iter().map(|c| c.rows).sum::<usize>(), 10_000);
        assert_eq!(got.iter().map(|c| c.counts.failed).sum::<usize>(), 10);
    }

    #[test]
    fn units_are_rounded_half_away_from_zero_and_out_of_range_is_null() {
        let units = |seconds: Option<f64>, per: f64| {
            let mut out = Vec::new();
            push_units(&mut out, seconds, per);
            String::from_utf8(out).unwrap()
        };
        let cases = [(0.5e-6, "1"), (-0.5e-6, "-1"), (1.49e-6, "1"), (-1.51e-6, "-2"), (2.5e-6, "3"), (0.0, "0")];
        for (seconds, want) in cases {
            assert_eq!(units(Some(seconds), 1e6), want, "{seconds} s in microseconds");
        }
        // What adding a half and cutting would get wrong: a float just under a half, and the
        // odd whole numbers from 2**52 on (nanoseconds of about 52 days).
        let edges = [0.499_999_999_999_999_94, -0.499_999_999_999_999_94, 4_503_599_627_370_497.0, 12_345.678];
        for u in edges.into_iter().chain(cases.map(|(s, _)| s * 1e6)) {
            #[allow(clippy::cast_possible_truncation)]
            let want = (u.round() as i64).to_string();
            assert_eq!(units(Some(u), 1.0), want, "{u} rounds as f64::round");
        }
        assert_eq!(units(Some(1.029_999_9e-5), 1e9), "10300");
        for bad in [Some(f64::NAN), Some(f64::INFINITY), Some(-f64::INFINITY), Some(5e12), None] {
            assert_eq!(units(bad, 1e6), "null", "{bad:?}");
        }
    }

    #[test]
    fn the_common_row_is_written_as_the_general_path_writes_it() {
        // Rows pushed through a short buffer, which writes the common row on the stack, against
        // the same rows written by the general path alone.
        let general = |rows: &[Row<'_>]| {
            let mut out = Vec::new();
            for (k, row) in rows.iter().enumerate() {
                out.push(if k == 0 { b'[' } else { b',' });
                out.push(b'[');
                encode_short(&mut out, row, 0.0, is_integer_text(row.name));
                out.push(b']');
            }
            out.push(b']');
            String::from_utf8(out).unwrap()
        };
        let mut times = vec![0.0, -0.0, 0.5e-6, -0.5e-6, 1.49e-6, -1.51e-6, 9e-6, 1e-5, 99.5e-6, 1e-4, 0.012_345_678];
        times.extend([-0.987_654_5, 1.029_999_9e-5, f64::NAN, f64::INFINITY, -f64::INFINITY, 5e12, -5e12]);
        // Around each power of two (in microseconds) and of ten (in nanoseconds and microseconds).
        times.extend((0..63).map(|p| (2f64.powi(p) - 0.25) / 1e6));
        times.extend((1..19).flat_map(|p| [(10f64.powi(p) - 1.0) / 1e9, 10f64.powi(p) / 1e9, -(10f64.powi(p)) / 1e6]));
        let mut common = 0;
        for name in ["0", "7", "-7", "42", "999999999999999", "-999999999999999", "x", "07"] {
            for &t in &times {
                for duration in [Some(t), Some(t.abs()), Some(1.030_04e-5), None] {
                    let row = Row {
                        phase: "p",
                        name,
                        status: ItemStatus::Done,
                        started_at: t,
                        duration,
                        error: None,
                        metrics: None,
                    };
                    let rows = [row, Row { status: ItemStatus::Failed, error: Some("e"), ..row }, row];
                    let buffer = RowBuffer::short("r", 0.0);
                    for r in &rows {
                        buffer.push(r);
                    }
                    let chunks = buffer.take().unwrap();
                    let text = std::str::from_utf8(&chunks[0].text).unwrap();
                    assert_eq!((chunks.len(), text), (1, general(&rows).as_str()), "{name} {t} {duration:?}");
                    let on_the_stack = Line::done(name, t * MICROS, duration.map(|d| d * NANOS)).is_some();
                    common += usize::from(on_the_stack && is_integer_text(name));
                }
            }
        }
        assert!(common > 1000, "{common} common rows compared");
        for bad in [f64::NAN, f64::INFINITY, 5e18] {
            assert!(Line::done("1", bad, Some(1.0)).is_none() && Line::done("1", 1.0, Some(bad)).is_none());
        }
    }

    #[test]
    fn common_rows_take_the_general_paths_chunks() {
        // Common rows (done, an integer's name, whole times) through every choice of chunk: a
        // full one, another phase's, and one given by `extend_encoded` with a t0 of its own,
        // which no row joins. Each chunk's rows, counts and text are those of the general path.
        // The chunks the general path makes: (phase, its rows' text).
        fn expect(want: &mut Vec<(&'static str, Vec<String>)>, phase: &'static str, r: &Row<'_>, t0: f64, fresh: bool) {
            let mut line = Vec::new();
            encode_short(&mut line, r, t0, true);
            let line = String::from_utf8(line).unwrap();
            match want.last_mut() {
                Some((p, lines)) if !fresh && *p == phase && lines.len() < ROWS_PER_CHUNK => lines.push(line),
                _ => want.push((phase, vec![line])),
            }
        }
        let origin = 1_764_532_012.123_456_7;
        let b = RowBuffer::short("r1", origin);
        let row = |k: usize, phase: &'static str| Row {
            phase,
            name: "0",
            status: ItemStatus::Done,
            started_at: origin + 0.001 * k as f64,
            duration: Some(1e-5 + 1e-9 * k as f64),
            error: None,
            metrics: None,
        };
        let mut want = Vec::new();
        let names: Vec<String> = (0..=2 * ROWS_PER_CHUNK + 4).map(|k| k.to_string()).collect();
        for (k, name) in names.iter().enumerate() {
            let phase = if k % 700 < 350 { "a" } else { "b" };
            let r = Row { name, ..row(k, phase) };
            b.push(&r);
            expect(&mut want, phase, &r, origin, false);
            if k == ROWS_PER_CHUNK + 3 {
                let given = Shared { phase: phase.into(), t0: origin - 1.0 };
                b.extend_encoded(
                    "[[1,2,3]]",
                    1,
                    StatusCounts { done: 1, ..StatusCounts::default() },
                    "r1",
                    Some(given),
                )
                .unwrap();
                want.push(("given", vec!["1,2,3".into()]));
                let r = Row { name, ..row(k, phase) };
                b.push(&r);
                expect(&mut want, phase, &r, origin, true);
            }
        }
        let chunks = b.take().unwrap();
        assert_eq!(chunks.len(), want.len());
        for (chunk, (phase, lines)) in chunks.iter().zip(&want) {
            let shared = chunk.shared.as_ref().unwrap();
            if *phase == "given" {
                assert_eq!(
                    (shared.t0.to_bits(), chunk.rows),
                    ((origin - 1.0).to_bits(), 1),
                    "a given chunk stays as it came"
                );
                continue;
            }
            assert_eq!((shared.phase.as_str(), shared.t0.to_bits()), (*phase, origin.to_bits()));
            assert_eq!((chunk.rows, chunk.counts.done), (lines.len(), lines.len()));
            let text = format!("[[{}]]", lines.join("],["));
            assert_eq!(std::str::from_utf8(&chunk.text).unwrap(), text);
        }
    }

    #[test]
    fn only_an_integers_own_text_is_written_as_a_number() {
        for name in ["0", "7", "-7", "12345", "999999999999999"] {
            assert!(is_integer_text(name), "{name}");
        }
        for name in ["", "-", "-0", "00", "07", "1e5", "1.5", " 1", "+1", "1000000000000000", "٣"] {
            assert!(!is_integer_text(name), "{name}");
        }
        let b = RowBuffer::short("r1", 0.0);
        for name in ["07", "-0", "x"] {
            b.push(&Row {
                phase: "p",
                name,
                status: ItemStatus::Done,
                started_at: 0.0,
                duration: None,
                error: None,
                metrics: None,
            });
        }
        let chunks = b.take().unwrap();
        assert_eq!(std::str::from_utf8(&chunks[0].text).unwrap(), r#"[["07",0,null],["-0",0,null],["x",0,null]]"#);
    }

    #[test]
    fn names_and_errors_are_bounded() {
        let b = RowBuffer::new("r1");
        let long = "n".repeat(1_000_000);
        let err = "e".repeat(100_000);
        b.push(&Row {
            phase: "p",
            name: &long,
            status: ItemStatus::Failed,
            started_at: 0.0,
            duration: None,
            error: Some(&err),
            metrics: None,
        });
        let chunks = b.take().unwrap();
        assert!(chunks[0].text.len() < 4000, "a row stays small: {} bytes", chunks[0].text.len());
    }
}
