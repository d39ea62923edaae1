//! `RowBuffer`: item rows for the history store, encoded in Rust (see `core::rows`).

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::core::rows::{Row, RowBuffer};

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
    #[new]
    fn py_new(run_id: &str) -> Self {
        Self { rows: RowBuffer::new(run_id), closed: AtomicBool::new(false) }
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
    /// The waiting rows as one JSON array and their number, or None; the GIL is released
    /// while the buffer is swapped.
    fn take(&self, py: Python<'_>) -> Option<(String, usize)> {
        py.detach(|| self.rows.take())
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
