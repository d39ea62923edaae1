//! A pool chunk's history rows in bulk: in the worker process each item's row is encoded as
//! the item ends, natively (into the chunk's `RowBuffer`); the parent queues the chunk's rows
//! for the store in one call (`extend_rows`), so that it makes no call per item.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyString};

use super::convert::Obj;
use super::counting::PyTaskBase;
use super::item::{enter_as, exit, make_item};
use super::rows::PyRowBuffer;
use super::shared::PySharedRun;
use crate::core::rows::{Shared, StatusCounts};

/// Queues a chunk of `n` rows (`done`, `failed` and `skipped` of them) another buffer of run
/// `run_id` encoded (`RowBuffer.take()` in a worker), with the phase and start its rows share
/// when it was encoded short (joined to the chunk before when that is a pool's with the same:
/// `RowBuffer::extend_encoded`); returns how many rows are waiting. Text that is not such
/// a chunk of this buffer's run is a `ValueError`.
#[pyfunction]
#[pyo3(signature = (buffer, run_id, rows, n, done, failed, skipped, phase=None, t0=None))]
#[allow(clippy::too_many_arguments)]
pub fn extend_rows(
    buffer: &PyRowBuffer, run_id: &str, rows: &str, n: usize, done: usize, failed: usize, skipped: usize,
    phase: Option<String>, t0: Option<f64>,
) -> PyResult<usize> {
    let counts = StatusCounts { done, failed, skipped };
    let shared = match (phase, t0) {
        (Some(phase), Some(t0)) => Some(Shared { phase, t0 }),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("a short chunk's rows need both their phase and their t0")),
    };
    buffer.rows.extend_encoded(rows, n, counts, run_id, shared).map_err(PyValueError::new_err)
}

/// What `run_items` did with a chunk: each item's result in chunk order (for an item whose
/// `with` raised, the exception as raised), the positions of those that raised with whether
/// each ran (it has a row), how many items it started before the pool was told to stop (the
/// rest did not start), and the rows of the items from position `tail_from` on.
type Ran<'py> = (Bound<'py, PyList>, Vec<(usize, bool)>, usize, Bound<'py, PyList>);

/// A pool chunk's items in a worker process, one native loop: for each item, unless the run
/// was cancelled or pool `pool` told to stop, `with task.item(name): func(items[k])`, with the
/// very entry points a Python `with` calls (`item::enter`, `item::exit`), minus the
/// interpreter's work around them. An `Exception` raised by the block (or by the item's own
/// entry or exit, as in a `with` inside a `try`) is kept as the item's result; anything else
/// (`SystemExit`, `KeyboardInterrupt`) propagates, the item ended as a `with` would end it.
///
/// An item's name is `names[k]`; without `names`, its default name: an exact `str`, `int` or
/// `float` item names itself (an item keeps a number as its name and gives it as text, as
/// `str()` does: no text is made for it here), anything else is `make_name(item, indices[k])`.
#[pyfunction]
#[pyo3(signature = (task, func, items, names, shared, pool, tail_from, make_name=None, indices=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_items<'py>(
    task: &Bound<'py, PyTaskBase>, func: &Obj<'py>, items: &Bound<'py, PyList>, names: Option<&Bound<'py, PyList>>,
    shared: &PySharedRun, pool: usize, tail_from: usize, make_name: Option<&Obj<'py>>, indices: Option<&Obj<'py>>,
) -> PyResult<Ran<'py>> {
    let py = task.py();
    if let Some(names) = names {
        if items.len() != names.len() {
            return Err(PyValueError::new_err(format!("{} items for {} names", items.len(), names.len())));
        }
    } else if make_name.is_none() || indices.is_none() {
        return Err(PyValueError::new_err("run_items needs names, or make_name and the items' indices"));
    }
    let name_of = |k: usize, item: &Bound<'py, PyAny>| -> PyResult<Bound<'py, PyAny>> {
        if let Some(names) = names {
            return names.get_item(k);
        }
        if item.is_exact_instance_of::<PyString>()
            || item.is_exact_instance_of::<PyInt>()
            || item.is_exact_instance_of::<PyFloat>()
        {
            return Ok(item.clone());
        }
        let (Some(make_name), Some(indices)) = (make_name, indices) else { unreachable!("checked above") };
        make_name.call1((item, indices.get_item(k)?))
    };
    let (values, tail) = (PyList::empty(py), PyList::empty(py));
    let mut raised = Vec::new();
    let none = py.None().into_bound(py);
    // Asked once a chunk, not once an item: every item of it is entered from this same call,
    // which no coroutine made and in which no event loop can start before the next item.
    let in_coroutine = super::item::in_coroutine(py)?;
    for (k, value) in items.iter().enumerate() {
        if shared.stopping(pool) {
            return Ok((values, raised, k, tail));
        }
        // A name that cannot be made (a path whose text raises) is that item's error: it does
        // not run, and the chunk's other items do, as when it is made in the parent.
        let name = match name_of(k, &value) {
            Ok(name) => name,
            Err(e) if e.is_instance_of::<PyException>(py) => {
                raised.push((k, false));
                values.append(e.into_value(py))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let it = make_item(task, &name)?;
        let outcome = enter_as(&it, in_coroutine).and_then(|_| match call_one(func, &value) {
            Ok(got) => exit(&it, &none, &none, &none).map(|()| got),
            Err(e) => {
                let (kind, err, tb) = (e.get_type(py).into_any(), e.value(py).clone().into_any(), e.traceback(py));
                exit(&it, &kind, &err, &tb.map_or_else(|| none.clone(), Bound::into_any))?;
                Err(e)
            }
        });
        match outcome {
            Ok(got) => values.append(got)?,
            Err(e) if e.is_instance_of::<PyException>(py) => {
                raised.push((k, it.borrow().row(py)?.is_some()));
                values.append(e.into_value(py))?;
            }
            Err(e) => return Err(e),
        }
        if k >= tail_from {
            tail.append((name, it.borrow().row(py)?))?;
        }
    }
    Ok((values, raised, items.len(), tail))
}

/// `func(arg)` without a tuple for its argument: the C API's call with a list of arguments
/// hands them to `vectorcall` from the stack (a Python function, a `functools.partial`), where
/// `call1` makes and frees a tuple an item (callgrind: about 350 instructions of an item's
/// 2,800 in a worker).
#[allow(unsafe_code)]
fn call_one<'py>(func: &Obj<'py>, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let end: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `func` and `arg` are live objects, and the list ends with NULL; a new reference,
    // or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(func.py(), ffi::PyObject_CallFunctionObjArgs(func.as_ptr(), arg.as_ptr(), end))
    }
}
