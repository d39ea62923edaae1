//! Argument conversions shared by the wrappers, with errors that name the bad value.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::core::error::non_negative;
use crate::core::node::NodeState;
use crate::core::run::ItemStatus;

/// A name or message as Rust text. Accepts `str` (lone surrogates from undecodable file
/// names are replaced, not rejected) and `os.PathLike`; anything else is a `TypeError`.
pub fn text(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_string_lossy().into_owned());
    }
    if obj.hasattr("__fspath__")? {
        let p = obj.call_method0("__fspath__")?;
        if let Ok(s) = p.cast::<PyString>() {
            return Ok(s.to_string_lossy().into_owned());
        }
        return Ok(String::from_utf8_lossy(&p.extract::<Vec<u8>>()?).into_owned());
    }
    let repr = obj.repr().map(|r| r.to_string_lossy().chars().take(80).collect::<String>()).unwrap_or_default();
    Err(PyTypeError::new_err(format!(
        "{what} must be a str or path, got {}: {repr}",
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// A count or total from Python: an `int` in `0..=MAX_COUNT` (2**53 - 1).
pub fn count(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    if obj.is_instance_of::<pyo3::types::PyBool>() || !obj.is_instance_of::<pyo3::types::PyInt>() {
        let repr = obj.repr().map(|r| r.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("{what} must be an int, got {repr}")));
    }
    amount(Some(obj), what)
}

/// How many items a counting call adds (`advance(n)`, `skip(n)`...): 1 when not given, else
/// an integer in `0..=MAX_COUNT`; anything else is an error naming the value (an int too big
/// for 64 bits included, which would otherwise be a bare `OverflowError`).
#[inline]
pub fn amount(obj: Option<&Bound<'_, PyAny>>, what: &'static str) -> PyResult<u64> {
    let Some(obj) = obj else { return Ok(1) };
    match obj.extract::<i64>() {
        Ok(v) => Ok(non_negative(what, v)?),
        Err(e) => Err(bad_amount(obj, what, e)),
    }
}

#[cold]
fn bad_amount(obj: &Bound<'_, PyAny>, what: &'static str, e: PyErr) -> PyErr {
    if !obj.is_instance_of::<pyo3::types::PyInt>() {
        return e; // a float, a str...: PyO3's TypeError names the type
    }
    let repr: String = obj.repr().map(|r| r.to_string()).unwrap_or_default().chars().take(60).collect();
    if obj.lt(0).unwrap_or(false) {
        return super::errors::InvalidValueError::new_err(format!("{what} must be >= 0, got {repr}"));
    }
    crate::core::error::Error::TooLarge { what: what.to_owned(), value: repr }.into()
}

/// A metric value from Python: any real number (`is_float` false for ints, which then sum
/// exactly); anything else is a `TypeError` naming the metric and the value.
pub fn metric_value(name: &str, value: &Bound<'_, PyAny>) -> PyResult<(f64, bool)> {
    let is_int = value.is_instance_of::<pyo3::types::PyInt>();
    if is_int && value.extract::<i64>().is_err() {
        let repr: String = value.repr().map(|r| r.to_string()).unwrap_or_default().chars().take(60).collect();
        return Err(crate::core::error::Error::TooLarge { what: format!("metric {name:?}"), value: repr }.into());
    }
    let v: f64 = value.extract().map_err(|_| {
        let repr = value.repr().map(|r| r.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("metric {name:?} needs a number, got {repr}"))
    })?;
    Ok((v, !is_int))
}

/// An item's end, as the Python API names it.
pub fn item_status(s: &str) -> PyResult<ItemStatus> {
    match s {
        "done" => Ok(ItemStatus::Done),
        "failed" => Ok(ItemStatus::Failed),
        "skipped" => Ok(ItemStatus::Skipped),
        "cancelled" => Ok(ItemStatus::Cancelled),
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "item status must be 'done', 'failed', 'skipped' or 'cancelled', got {s:?}"
        ))),
    }
}

/// A state a phase or step can end in.
pub fn end_state(state: &str) -> PyResult<NodeState> {
    NodeState::parse(state)
        .filter(|s| !matches!(s, NodeState::Pending | NodeState::Running))
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "end state must be 'completed', 'failed' or 'cancelled', got {state:?}"
            ))
        })
}
