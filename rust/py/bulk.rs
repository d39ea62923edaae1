//! A pool chunk's history rows in bulk: the worker process encodes its chunk's rows in one
//! call (`push_rows`), the parent queues them for the store in one call (`extend_rows`), so
//! that neither side makes a call per item.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::rows::PyRowBuffer;
use crate::core::rows::Row;

/// An item row as `Item.row` keeps it: status, start (Unix time), duration, error, metrics.
type ItemRow<'py> =
    (Bound<'py, PyString>, f64, Option<f64>, Option<Bound<'py, PyString>>, Option<Bound<'py, PyString>>);

/// Adds the rows of `names[i]`, `rows[i]` (see `ItemRow`; None: item `i` has no row, it did
/// not run) of task `phase` to `buffer`; returns how many rows are waiting. Names are `str`s,
/// converted as `RowBuffer.push` converts them.
#[pyfunction]
pub fn push_rows(
    buffer: &PyRowBuffer, phase: &Bound<'_, PyString>, names: &Bound<'_, PyList>, rows: &Bound<'_, PyList>,
) -> PyResult<usize> {
    if names.len() != rows.len() {
        return Err(PyValueError::new_err(format!("{} names for {} rows", names.len(), rows.len())));
    }
    let phase = phase.to_string_lossy();
    let mut waiting = buffer.rows.len();
    for (name, row) in names.iter().zip(rows.iter()) {
        if row.is_none() {
            continue;
        }
        let name = name.cast_into::<PyString>()?;
        let (status, started_at, duration, error, metrics): ItemRow<'_> = row.extract()?;
        let (name, status) = (name.to_string_lossy(), status.to_string_lossy());
        let (error, metrics) =
            (error.as_ref().map(|e| e.to_string_lossy()), metrics.as_ref().map(|m| m.to_string_lossy()));
        waiting = buffer.rows.push(&Row {
            phase: &phase,
            name: &name,
            status: &status,
            started_at,
            duration,
            error: error.as_deref(),
            metrics: metrics.as_deref(),
        });
    }
    Ok(waiting)
}

/// Queues `n` rows another buffer of this run encoded (`RowBuffer.take()` in a worker);
/// returns how many rows are waiting. Text that is not such a take is a `ValueError`.
#[pyfunction]
pub fn extend_rows(buffer: &PyRowBuffer, rows: &str, n: usize) -> PyResult<usize> {
    buffer.rows.extend_encoded(rows, n).map_err(PyValueError::new_err)
}
