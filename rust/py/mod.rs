//! `PyO3` glue: thin wrappers over `core` and `render`, conversions and the error mapping; no
//! progress logic lives here. What `milepost._milepost` exports is declared in `lib.rs`.

mod bound;
mod bulk;
mod convert;
mod counting;
mod current;
mod errors;
mod estimator;
mod fast;
mod item;
mod node;
mod recent;
mod rows;
mod run;
mod shared;
mod snapshot;
mod tracker;

use pyo3::prelude::*;

pub use bulk::{extend_rows, run_items};
pub use counting::{PyBarBase, PyTaskBase};
pub use current::current_item;
pub use estimator::PyEstimator;
pub use fast::tracker_type;
pub use item::{PyItemBase, PyItemPath};
pub use node::{PyLane, PyNode};
pub use recent::encode_recent;
pub use rows::{PyRowBuffer, PyTakenRows};
pub use run::PyRunCore;
pub use shared::{after_fork_in_child, PySharedRun};
pub use snapshot::PySnapshot;
pub use tracker::PyTracker;

use crate::core::{metrics, resources, text};
use crate::render::format;

#[pyfunction]
pub fn format_duration(seconds: f64) -> String {
    format::duration(seconds)
}

#[pyfunction]
#[pyo3(signature = (per_second, unit="it", divisor=None))]
pub fn format_rate(per_second: Option<f64>, unit: &str, divisor: Option<u32>) -> String {
    format::scaled_rate(per_second, unit, divisor)
}

#[pyfunction]
#[pyo3(signature = (processed, total, unit="it", divisor=None))]
pub fn format_amounts(processed: u64, total: Option<u64>, unit: &str, divisor: Option<u32>) -> String {
    format::amounts(processed, total, unit, divisor)
}

#[pyfunction]
#[pyo3(signature = (eta, low=None, high=None))]
pub fn format_eta(eta: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    format::eta(eta, low, high)
}

/// Colour on or off for the native display (the `color` setting: "always" or "never"); the
/// default ("auto") leaves it to the terminal and `NO_COLOR`, as the console crate decides.
#[pyfunction]
pub fn set_colors(enabled: bool) {
    console::set_colors_enabled(enabled);
    console::set_colors_enabled_stderr(enabled);
}

#[pyfunction]
pub fn format_count(n: u64) -> String {
    format::count(n)
}

#[pyfunction]
pub fn format_metric(name: &str, value: f64) -> String {
    format::metric(name, value)
}

#[pyfunction]
pub fn format_bytes(n: u64) -> String {
    format::bytes(n)
}

#[pyfunction]
pub fn format_cpu(percent: f64) -> String {
    format::cpu(percent)
}

#[pyfunction]
#[pyo3(signature = (per_item, projected=None, unit="it"))]
pub fn format_cost_outlook(
    per_item: Option<f64>, projected: Option<(f64, Option<f64>, Option<f64>)>, unit: &str,
) -> String {
    format::cost_outlook(per_item, projected, unit)
}

/// `(interval, disk_warn)` of `Run(resources={...})` with the defaults filled in, checked
/// (an `InvalidValueError` names a bad one).
#[pyfunction]
#[pyo3(signature = (interval=None, disk_warn=None))]
pub fn resource_options(interval: Option<f64>, disk_warn: Option<f64>) -> PyResult<(f64, f64)> {
    let o = resources::ResourceOptions::new(
        interval.unwrap_or(resources::DEFAULT_INTERVAL),
        disk_warn.unwrap_or(resources::DEFAULT_DISK_WARN),
        Vec::new(),
    )?;
    Ok((o.interval, o.disk_warn))
}

#[pyfunction]
pub fn is_money(name: &str) -> bool {
    metrics::is_money(name)
}

#[pyfunction]
pub fn item_key(name: &convert::Obj<'_>) -> PyResult<String> {
    Ok(text::item_key(&convert::text(name, "item name")?).into_owned())
}

/// Seconds on this process's own monotonic clock, which a worker process's items are timed on
/// (see `core::clock::process_now`).
#[pyfunction]
pub fn process_now() -> f64 {
    crate::core::clock::process_now()
}

#[pyfunction]
pub fn sanitize(text: &convert::Obj<'_>) -> PyResult<String> {
    Ok(text::sanitize(&convert::text(text, "text")?))
}
