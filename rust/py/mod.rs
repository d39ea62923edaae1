//! `PyO3` glue: thin wrappers over `core` and `render`. No progress logic lives here.

mod convert;
mod errors;
mod estimator;
mod node;
mod rows;
mod run;
mod shared;
mod snapshot;
mod tracker;

use pyo3::prelude::*;

use crate::render::format;

#[pyfunction]
fn format_duration(seconds: f64) -> String {
    format::duration(seconds)
}

#[pyfunction]
#[pyo3(signature = (per_second, unit="it"))]
fn format_rate(per_second: Option<f64>, unit: &str) -> String {
    format::rate(per_second, unit)
}

#[pyfunction]
#[pyo3(signature = (eta, low=None, high=None))]
fn format_eta(eta: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    format::eta(eta, low, high)
}

#[pyfunction]
fn format_count(n: u64) -> String {
    format::count(n)
}

#[pyfunction]
fn format_metric(name: &str, value: f64) -> String {
    format::metric(name, value)
}

/// The name the history keeps for an item (see `core::text::item_key`).
#[pyfunction]
fn item_key(name: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(crate::core::text::item_key(&convert::text(name, "item name")?).into_owned())
}

#[pyfunction]
fn sanitize(text: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(crate::core::text::sanitize(&convert::text(text, "text")?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<run::PyRunCore>()?;
    m.add_class::<node::PyNode>()?;
    m.add_class::<node::PyLane>()?;
    m.add_class::<tracker::PyTracker>()?;
    m.add_class::<snapshot::PySnapshot>()?;
    m.add_class::<estimator::PyEstimator>()?;
    m.add_class::<shared::PySharedRun>()?;
    m.add_class::<rows::PyRowBuffer>()?;
    m.add_class::<shared::PySharedNode>()?;
    m.add_function(wrap_pyfunction!(shared::after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(format_duration, m)?)?;
    m.add_function(wrap_pyfunction!(format_rate, m)?)?;
    m.add_function(wrap_pyfunction!(format_eta, m)?)?;
    m.add_function(wrap_pyfunction!(format_count, m)?)?;
    m.add_function(wrap_pyfunction!(format_metric, m)?)?;
    m.add_function(wrap_pyfunction!(sanitize, m)?)?;
    m.add_function(wrap_pyfunction!(item_key, m)?)?;
    m.add("MAX_COUNT", crate::core::limits::MAX_COUNT)?;
    m.add("MAX_NAME_CHARS", crate::core::limits::MAX_NAME_CHARS)?;
    m.add("MAX_ERROR_CHARS", crate::core::limits::MAX_ERROR_CHARS)?;
    m.add("MAX_NODES", crate::core::limits::MAX_NODES)?;
    m.add("SCHEMA_VERSION", crate::core::snapshot::SCHEMA_VERSION)?;
    m.add("MAX_METRICS", crate::core::metrics::MAX_METRICS)?;
    Ok(())
}
