//! Argument conversions shared by the wrappers. A value of the wrong Python type is a
//! `TypeError` naming it; a value of the right type out of range is the core's error.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

use crate::core::error::{non_negative, Error};

/// Any Python object, as the wrappers take their arguments.
pub type Obj<'py> = Bound<'py, PyAny>;

/// `repr(obj)`, at most `max` characters (error messages name the value, not a megabyte of it).
fn repr(obj: &Obj<'_>, max: usize) -> String {
    obj.repr().map(|r| r.to_string_lossy().chars().take(max).collect()).unwrap_or_default()
}

/// A name or message as Rust text. Accepts `str` (lone surrogates from undecodable file
/// names are replaced, not rejected) and `os.PathLike`; anything else is a `TypeError`.
pub fn text(obj: &Obj<'_>, what: &str) -> PyResult<String> {
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
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(PyTypeError::new_err(format!("{what} must be a str or path, got {type_name}: {}", repr(obj, 80))))
}

/// Streamed text (`item.stream`, once per token) handed to `f`: a `str`, borrowed when it is
/// UTF-8 (no copy: the common case), else with lone surrogates replaced. Anything else is a
/// `TypeError` naming it.
pub fn with_str<R>(obj: &Obj<'_>, what: &str, f: impl FnOnce(&str) -> R) -> PyResult<R> {
    let Ok(s) = obj.cast::<PyString>() else {
        let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("{what} must be a str, got {type_name}: {}", repr(obj, 80))));
    };
    Ok(match s.to_str() {
        Ok(text) => f(text),
        Err(_) => f(&s.to_string_lossy()),
    })
}

/// A count or total from Python: an `int` in `0..=MAX_COUNT` (2**53 - 1).
pub fn count(obj: &Obj<'_>, what: &'static str) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{what} must be an int, got {}", repr(obj, usize::MAX))));
    }
    amount(Some(obj), what)
}

/// How many items a counting call adds (`advance(n)`, `skip(n)`...): 1 when not given, else
/// an integer in `0..=MAX_COUNT`; anything else is an error naming the value (an int too big
/// for 64 bits included, which would otherwise be a bare `OverflowError`).
#[allow(clippy::inline_always)] // callgrind: not inlined, it adds 19 instructions to `advance()`
#[inline(always)]
pub fn amount(obj: Option<&Obj<'_>>, what: &'static str) -> PyResult<u64> {
    let Some(obj) = obj else { return Ok(1) };
    match obj.extract::<i64>() {
        Ok(v) => Ok(non_negative(what, v)?),
        Err(e) => Err(bad_amount(obj, what, e)),
    }
}

#[cold]
fn bad_amount(obj: &Obj<'_>, what: &'static str, e: PyErr) -> PyErr {
    if !obj.is_instance_of::<PyInt>() {
        // A float, a str...: named, as `count` names it (PyO3's own error names the type only).
        drop(e);
        return PyTypeError::new_err(format!("{what} must be an int, got {}", repr(obj, 80)));
    }
    let value = repr(obj, 60);
    if obj.lt(0).unwrap_or(false) {
        return Error::Negative { what, value }.into();
    }
    Error::TooLarge { what: what.to_owned(), value }.into()
}

/// A metric value from Python: any real number (`is_float` false for ints, which then sum
/// exactly); anything else is a `TypeError` naming the metric and the value.
pub fn metric_value(name: &str, value: &Obj<'_>) -> PyResult<(f64, bool)> {
    let is_int = value.is_instance_of::<PyInt>();
    if is_int && value.extract::<i64>().is_err() {
        return Err(Error::TooLarge { what: format!("metric {name:?}"), value: repr(value, 60) }.into());
    }
    let v: f64 = value.extract().map_err(|_| {
        PyTypeError::new_err(format!("metric {name:?} needs a number, got {}", repr(value, usize::MAX)))
    })?;
    Ok((v, !is_int))
}
