//! `RowBuffer`: item rows for the history store, encoded in Rust (see `core::rows`).

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::core::rows::{Chunk, Row, RowBuffer};

/// A chunk of rows as Python sees it: the JSON array, its rows, how many are done, failed and
/// skipped, and the phase and start its rows share (None, None: each row is whole; see
/// `core::rows`).
type ChunkTuple = (String, usize, usize, usize, usize, Option<String>, Option<f64>);

#[allow(unsafe_code)]
fn chunk_tuple(chunk: Chunk) -> ChunkTuple {
    // SAFETY: only JSON (valid UTF-8) is ever written into a chunk.
    let text = unsafe { String::from_utf8_unchecked(chunk.text) };
    let (phase, t0) = chunk.shared.map_or((None, None), |s| (Some(s.phase), Some(s.t0)));
    (text, chunk.rows, chunk.counts.done, chunk.counts.failed, chunk.counts.skipped, phase, t0)
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
    /// surrogates from undecodable file names) are stored with replacement characters.
    #[pyo3(signature = (phase, name, status, started_at, duration=None, error=None, metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self, phase: &Bound<'_, PyString>, name: &Bound<'_, PyString>, status: &str, started_at: f64,
        duration: Option<f64>, error: Option<&Bound<'_, PyString>>, metrics: Option<&str>,
    ) -> usize {
        let (phase, name, err) = (phase.to_string_lossy(), name.to_string_lossy(), error.map(|e| e.to_string_lossy()));
        let error = err.as_deref();
        self.rows.push(&Row { phase: &phase, name: &name, status, started_at, duration, error, metrics })
    }
    /// The waiting rows in chunks, each `(rows as one JSON array, rows, done, failed,
    /// skipped, phase, t0)` (see `ChunkTuple`), or None; the GIL is released while the buffer
    /// is swapped.
    fn take(&self, py: Python<'_>) -> Option<Vec<ChunkTuple>> {
        let chunks = py.detach(|| self.rows.take())?;
        Some(chunks.into_iter().map(chunk_tuple).collect())
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
