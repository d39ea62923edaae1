//! Item rows for the history store, encoded as they come: a JSON array the store's writer
//! hands to `SQLite` in one statement (`json_each`). Encoding here, not in Python, keeps the
//! writer thread off the interpreter lock while the job runs.

use parking_lot::Mutex;

/// Rows of one run, waiting for the store's writer.
#[derive(Debug, Default)]
pub struct RowBuffer {
    run_id: String,
    inner: Mutex<(Vec<u8>, usize)>,
}

/// One item row: phase path, name, status, start (Unix time), duration, error, metrics JSON.
/// Encoded as a JSON array of those seven; the run is the buffer's, kept beside the rows.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub phase: &'a str,
    pub name: &'a str,
    pub status: &'a str,
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
        Some(v) => serde_json::to_writer(&mut *out, &v).expect("a finite f64 encodes"),
        None => out.extend_from_slice(b"null"),
    }
}

impl RowBuffer {
    pub fn new(run_id: &str) -> Self {
        Self { run_id: run_id.to_owned(), inner: Mutex::default() }
    }

    /// Adds a row of the buffer's run; returns how many rows are waiting. The name is stored as
    /// its history key and the error clipped (see `text::item_key`), so that a row stays small
    /// whatever the job hands in.
    pub fn push(&self, row: &Row<'_>) -> usize {
        let name = super::text::item_key(row.name);
        let error = row.error.map(|e| super::text::clip(e, super::limits::MAX_ERROR_CHARS));
        let row = Row { name: &name, error: error.as_deref(), ..*row };
        let mut g = self.inner.lock();
        let (buf, n) = &mut *g;
        buf.push(if *n == 0 { b'[' } else { b',' });
        buf.push(b'[');
        push_str(buf, row.phase);
        for s in [&name, row.status] {
            buf.push(b',');
            push_str(buf, s);
        }
        buf.push(b',');
        push_num(buf, Some(row.started_at));
        buf.push(b',');
        push_num(buf, row.duration);
        for s in [row.error, row.metrics] {
            buf.push(b',');
            match s {
                Some(s) => push_str(buf, s),
                None => buf.extend_from_slice(b"null"),
            }
        }
        buf.push(b']');
        *n += 1;
        *n
    }

    /// The waiting rows as one JSON array, and how many they are (the buffer starts over).
    pub fn take(&self) -> Option<(String, usize)> {
        let mut g = self.inner.lock();
        if g.1 == 0 {
            return None;
        }
        let (mut buf, n) = std::mem::take(&mut *g);
        buf.push(b']');
        // Only JSON (valid UTF-8) was ever written into the buffer.
        Some((String::from_utf8(buf).expect("JSON is UTF-8"), n))
    }

    /// The run whose rows these are.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn len(&self) -> usize {
        self.inner.lock().1
    }

    /// Appends `n` rows that another buffer of run `run_id` encoded and `take` returned (a
    /// pool's worker process encodes its chunk's rows; the parent queues them in one call).
    /// Returns how many rows are waiting, or an error, leaving the buffer as it was, when
    /// `array` is not such a take of this run's rows.
    pub fn extend_encoded(&self, array: &str, n: usize, run_id: &str) -> Result<usize, String> {
        if n == 0 || run_id != self.run_id || !array.starts_with("[[\"") || !array.ends_with("]]") {
            return Err(format!("not {n} encoded rows of run {:?}", self.run_id));
        }
        let rows = &array.as_bytes()[1..array.len() - 1]; // without the array's brackets
        let mut g = self.inner.lock();
        let (buf, waiting) = &mut *g;
        buf.push(if *waiting == 0 { b'[' } else { b',' });
        buf.extend_from_slice(rows);
        *waiting += n;
        Ok(*waiting)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_rows_of_the_same_run_append_whole() {
        let row =
            Row { phase: "p", name: "a", status: "done", started_at: 1.0, duration: None, error: None, metrics: None };
        let worker = RowBuffer::new("r1");
        worker.push(&row);
        worker.push(&Row { name: "b", status: "failed", error: Some("boom"), ..row });
        let (chunk, n) = worker.take().unwrap();
        let parent = RowBuffer::new("r1");
        parent.push(&Row { name: "first", ..row });
        assert_eq!(parent.extend_encoded(&chunk, n, "r1"), Ok(3));
        let (text, n) = parent.take().unwrap();
        assert_eq!(n, 3);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let names: Vec<_> = v.as_array().unwrap().iter().map(|r| r[1].as_str().unwrap()).collect();
        assert_eq!(names, ["first", "a", "b"]);
        assert_eq!(v[2][5], "boom");
        let empty = RowBuffer::new("r1");
        assert_eq!(empty.extend_encoded(&chunk, 2, "r1"), Ok(2), "into an empty buffer too");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&empty.take().unwrap().0).unwrap().as_array().unwrap().len(),
            2
        );
        for bad in ["", "[]", "[[\"p\",\"a\"]"] {
            assert!(parent.extend_encoded(bad, 1, "r1").is_err(), "{bad:?} is refused");
        }
        assert!(parent.extend_encoded(&chunk, n, "r2").is_err(), "another run's rows are refused");
        assert!(parent.extend_encoded(&chunk, 0, "r1").is_err(), "no rows is no take");
        assert!(parent.is_empty(), "a refused text leaves the buffer as it was");
    }

    #[test]
    fn rows_encode_as_one_json_array() {
        let b = RowBuffer::new("r1");
        assert!(b.take().is_none());
        let row = Row {
            phase: "map",
            name: "a\"b\n\u{7}",
            status: "done",
            started_at: 1.5,
            duration: Some(0.25),
            error: None,
            metrics: Some("{\"t\":1}"),
        };
        assert_eq!(b.push(&row), 1);
        b.push(&Row { duration: Some(f64::NAN), error: Some("boom"), ..row });
        let (text, n) = b.take().unwrap();
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[0][1], "a\"b\n\u{7}");
        assert_eq!(v[1][4], serde_json::Value::Null, "non-finite numbers become null");
        assert_eq!(v[1][5], "boom");
        assert_eq!(v[0][0], "map", "plain text is copied as it is");
        assert!(b.take().is_none());
    }

    #[test]
    fn names_and_errors_are_bounded() {
        let b = RowBuffer::new("r1");
        let long = "n".repeat(1_000_000);
        let err = "e".repeat(100_000);
        b.push(&Row {
            phase: "p",
            name: &long,
            status: "failed",
            started_at: 0.0,
            duration: None,
            error: Some(&err),
            metrics: None,
        });
        let (text, _) = b.take().unwrap();
        assert!(text.len() < 4000, "a row stays small: {} bytes", text.len());
    }
}
