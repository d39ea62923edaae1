//! The iterator returned by `track()`. Its step is the hottest path of all: one call into the
//! wrapped iterator plus one plain store (the counting is `core::tracked`'s).
//!
//! `TrackerBase` holds the loop and its tqdm methods; `Tracker`, the type `track()` returns, is
//! its subtype whose `tp_iternext` is `step` called straight from `CPython` (`fast::tracker_type`),
//! without `PyO3`'s frame set-up around it.

use std::ptr::null_mut;

use parking_lot::Mutex;
use pyo3::exceptions::{PyStopIteration, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use super::convert::{amount, text, Obj};
use super::node::PyNode;
use crate::core::error::Error;
use crate::core::node::Tally;
use crate::core::tracked::TrackedLoop;

#[pyclass(subclass, frozen, name = "TrackerBase", module = "milepost._milepost")]
pub struct PyTracker {
    it: Py<PyIterator>,
    /// The wrapped iterator's `tp_iternext`, looked up once instead of on every item.
    next_fn: pyo3::ffi::iternextfunc,
    tracked: TrackedLoop,
    length: Option<usize>,
    /// Called once: `("completed", None)` when exhausted, `("abandoned", None)` when left by
    /// `break` or a cancel, `("raised", exception)` when the iterable or the loop body raised
    /// (Python decides what that exception means for the loop's end state).
    on_end: Mutex<Option<Py<PyAny>>>,
}

impl PyTracker {
    fn end(&self, py: Python<'_>, how: &str, exc: Option<&PyErr>) -> PyResult<()> {
        let cb = self.on_end.lock().take();
        if let Some(cb) = cb {
            cb.call1(py, (how, exc.map(|e| e.value(py).clone())))?;
        }
        Ok(())
    }

    /// One step of the loop, as `tp_iternext` answers: the next item (a new reference), or
    /// null, with an exception set (an error, a cancel) or not (exhausted). Counts the item
    /// handed out last first.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) fn step(&self, py: Python<'_>) -> *mut ffi::PyObject {
        if !self.tracked.before_next_if_clear() {
            if let Err(e) = self.tracked.before_next() {
                return self.refused(e);
            }
        }
        // SAFETY: `next_fn` is the slot of `it`'s own type (a type cannot change its slots once
        // ready), `it` is alive and the thread attached. It returns a new reference, or null
        // with an exception set or not (StopIteration, or nothing, means exhausted).
        let item = unsafe { (self.next_fn)(self.it.bind(py).as_ptr()) };
        if item.is_null() {
            return self.ended();
        }
        self.tracked.handed_out();
        item
    }

    /// The loop may not go on (the run ended or was cancelled): the error, once the loop's end
    /// is said for a cancel.
    #[cold]
    fn refused(&self, e: Error) -> *mut ffi::PyObject {
        Python::attach(|py| {
            let (cancelled, err) = (e == Error::Cancelled, PyErr::from(e));
            let err = if cancelled { self.end(py, "raised", Some(&err)).err().unwrap_or(err) } else { err };
            err.restore(py);
            null_mut()
        })
    }

    /// The wrapped iterator gave no item: exhausted, or it raised (the exception is set).
    #[cold]
    fn ended(&self) -> *mut ffi::PyObject {
        Python::attach(|py| {
            self.tracked.over();
            let raised = PyErr::take(py).filter(|e| !e.is_instance_of::<PyStopIteration>(py));
            let how = if raised.is_some() { "raised" } else { "completed" };
            match self.end(py, how, raised.as_ref()) {
                Err(e) => e.restore(py),
                Ok(()) => {
                    if let Some(e) = raised {
                        e.restore(py);
                    }
                }
            }
            null_mut()
        })
    }
}

#[pymethods]
impl PyTracker {
    #[new]
    #[pyo3(signature = (iterable, node, length=None, on_end=None))]
    fn py_new(iterable: &Obj<'_>, node: &PyNode, length: Option<usize>, on_end: Option<Py<PyAny>>) -> PyResult<Self> {
        let it = PyIterator::from_object(iterable)?;
        let next_fn =
            iternext_of(&it).ok_or_else(|| PyTypeError::new_err("the iterable's iterator has no __next__"))?;
        let tracked = TrackedLoop::new(node.handle.clone());
        Ok(Self { it: it.unbind(), next_fn, tracked, length, on_end: Mutex::new(on_end) })
    }
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __len__(&self) -> PyResult<usize> {
        self.length.ok_or_else(|| PyTypeError::new_err("this iterable has no known length"))
    }
    /// Counts `n` more items done (tqdm's `update`, for work the loop itself does not count).
    #[pyo3(signature = (n=None))]
    fn update(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.tracked.handle.tally(Tally::Done, amount(n, "update(n)")?)?)
    }
    /// Renames the loop's bar (tqdm's `set_description`, which takes an empty one and keeps
    /// the name; `refresh` is accepted for tqdm: every frame is fresh).
    #[pyo3(signature = (desc, refresh=true))]
    fn set_description(&self, desc: &Obj<'_>, refresh: bool) -> PyResult<()> {
        let _ = refresh;
        match text(desc, "description")?.as_str() {
            "" => Ok(()),
            name => Ok(self.tracked.handle.rename(name)?),
        }
    }
    /// Ends tracking now (as on `break`): the run is closed as abandoned.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, "abandoned", None)
    }
}

/// The `tp_iternext` slot of `it`'s type.
#[allow(unsafe_code)]
fn iternext_of(it: &Bound<'_, PyIterator>) -> Option<pyo3::ffi::iternextfunc> {
    // SAFETY: `PyType_GetSlot` reads a slot of a live type object (static types allowed from
    // Python 3.10, the minimum of this abi3 build); the `tp_iternext` slot has this signature.
    unsafe {
        let slot = pyo3::ffi::PyType_GetSlot(it.get_type().as_ptr().cast(), pyo3::ffi::Py_tp_iternext);
        (!slot.is_null()).then(|| std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::iternextfunc>(slot))
    }
}

impl Drop for PyTracker {
    fn drop(&mut self) {
        // A loop left with `break` never exhausts the iterator: close its run when the
        // tracker is collected, as tqdm does in `__del__`.
        if let Some(cb) = self.on_end.get_mut().take() {
            Python::try_attach(|py| {
                // Collected while an exception propagates (Ctrl-C out of the loop): put it
                // aside, as calling Python with an exception set is an error, then restore it.
                let pending = PyErr::take(py);
                let how = if pending.is_some() { "raised" } else { "abandoned" };
                if let Err(e) = cb.call1(py, (how, pending.as_ref().map(|e| e.value(py).clone()))) {
                    e.write_unraisable(py, None);
                }
                if let Some(e) = pending {
                    e.restore(py);
                }
            });
        }
    }
}
