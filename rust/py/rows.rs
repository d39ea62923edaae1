//! `RowBuffer`: item rows for the history store, encoded in Rust (see `core::rows`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::core::kinds::ItemStatus;
use crate::core::rows::{Chunk, Row, RowBuffer};

/// A chunk of rows as Python sees it: the JSON array, its rows, how many are done, failed and
/// skipped, and the phase and start its rows share (None, None: each row is whole; see
/// `core::rows`).
type ChunkTuple<'py> = (Bound<'py, PyString>, usize, usize, usize, usize, Option<String>, Option<f64>);

#[allow(unsafe_code)]
fn chunk_tuple(py: Python<'_>, chunk: Chunk) -> ChunkTuple<'_> {
    // SAFETY: only UTF-8 is ever written into a chunk (JSON it encoded, or a `str` it was given);
    // a forked child reads its parent's fork-private chunks as zeros, UTF-8 too (`chunk_text`).
    let text = PyString::new(py, unsafe { std::str::from_utf8_unchecked(&chunk.text) });
    let (phase, t0) = chunk.shared.map_or((None, None), |s| (Some(s.phase), Some(s.t0)));
    (text, chunk.rows, chunk.counts.done, chunk.counts.failed, chunk.counts.skipped, phase, t0)
}

/// What the store's writer inserts for a chunk: its run, then the chunk as `ChunkTuple`.
type ChunkParams<'py> = (String, Bound<'py, PyString>, usize, usize, usize, usize, Option<String>, Option<f64>);

/// Rows taken from a buffer for the store's writer, handed out a chunk at a time
/// (`RowBuffer.take_each`): each chunk's text becomes a Python string only when the writer
/// comes to it, and is let go before the next one is made. Made all at once, a batch's strings
/// took as much fresh memory as its text, and once a pool has forked its workers each page of
/// it the parent writes to is first copied (a fault each, several microseconds); one at a time,
/// the writer reuses the memory of the chunk before.
#[pyclass(frozen, name = "TakenRows", module = "milepost._milepost")]
pub struct PyTakenRows {
    run_id: String,
    rows: usize,
    chunks: Mutex<VecDeque<Chunk>>,
}

#[pymethods]
impl PyTakenRows {
    /// How many rows were taken (in all chunks, handed out or not).
    #[getter]
    fn rows(&self) -> usize {
        self.rows
    }
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    /// The next chunk as the parameters of the store's insert: `(run_id, *ChunkTuple)`.
    fn __next__<'py>(&self, py: Python<'py>) -> Option<ChunkParams<'py>> {
        let chunk = self.chunks.lock().pop_front()?;
        let (text, rows, done, failed, skipped, phase, t0) = chunk_tuple(py, chunk);
        Some((self.run_id.clone(), text, rows, done, failed, skipped, phase, t0))
    }
}

#[pyclass(frozen, name = "RowBuffer", module = "milepost._milepost")]
pub struct PyRowBuffer {
    pub(crate) rows: RowBuffer,
    /// The store no longer reads this buffer (it took another, or turned itself off): items
    /// ended natively ask the store for its buffer again (see `item::PyItemPath`).
    closed: AtomicBool,
}

impl PyRowBuffer {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[pymethods]
impl PyRowBuffer {
    /// A buffer of run `run_id`'s rows; with an `origin` (Unix time, the pool's start): encoded
    /// short, a chunk a phase, their starts timed from it (a pool's worker, see `core::rows`).
    #[new]
    #[pyo3(signature = (run_id, origin=None))]
    fn py_new(run_id: &str, origin: Option<f64>) -> PyResult<Self> {
        let rows = match origin {
            None => RowBuffer::new(run_id),
            Some(t0) if t0.is_finite() => RowBuffer::short(run_id, t0),
            Some(t0) => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!("origin must be a time, not {t0}")))
            }
        };
        Ok(Self { rows, closed: AtomicBool::new(false) })
    }
    /// Adds an item row; returns how many are waiting. Names that are not valid UTF-8 (lone
    /// surrogates from undecodable file names) are stored with replacement characters; a status
    /// that is none of an item's is a `ValueError` naming it, and adds nothing.
    #[pyo3(signature = (phase, name, status, started_at, duration=None, error=None, metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self, phase: &Bound<'_, PyString>, name: &Bound<'_, PyString>, status: &str, started_at: f64,
        duration: Option<f64>, error: Option<&Bound<'_, PyString>>, metrics: Option<&str>,
    ) -> PyResult<usize> {
        let status = ItemStatus::parse(status)?;
        let (phase, name, err) = (phase.to_string_lossy(), name.to_string_lossy(), error.map(|e| e.to_string_lossy()));
        let error = err.as_deref();
        Ok(self.rows.push(&Row { phase: &phase, name: &name, status, started_at, duration, error, metrics }))
    }
    /// The waiting rows in chunks, each `(rows as one JSON array, rows, done, failed,
    /// skipped, phase, t0)` (see `ChunkTuple`), or None; the GIL is released while the buffer
    /// is swapped.
    fn take<'py>(&self, py: Python<'py>) -> Option<Vec<ChunkTuple<'py>>> {
        let chunks = py.detach(|| self.rows.take())?;
        Some(chunks.into_iter().map(|c| chunk_tuple(py, c)).collect())
    }
    /// The waiting rows, as `take` gives them but a chunk at a time, each with the run first
    /// (see `TakenRows`), or None.
    fn take_each(&self, py: Python<'_>) -> Option<PyTakenRows> {
        let chunks = py.detach(|| self.rows.take())?;
        let rows = chunks.iter().map(|c| c.rows).sum();
        Some(PyTakenRows { run_id: self.rows.run_id().to_owned(), rows, chunks: Mutex::new(chunks.into()) })
    }
    /// The run whose rows these are.
    #[getter]
    fn run_id(&self) -> &str {
        self.rows.run_id()
    }
    /// The store no longer reads this buffer (see `closed`).
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
    fn __len__(&self) -> usize {
        self.rows.len()
    }
}
