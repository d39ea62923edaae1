//! The iterator returned by `track()`. Its `__next__` is the hottest path of all: one call
//! into the wrapped iterator plus one plain store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use crate::core::node::{Node, Tally};

/// Where a tracker counts: the run's own node, or this worker process's slot of a shared one.
enum Target {
    Core(Arc<Node>, Arc<crate::core::run::RunCore>),
    Shared(Arc<crate::core::shm::Segment>, usize),
}

impl Target {
    /// Cancel was asked for: the loop gets no more items.
    #[inline]
    fn cancelled(&self) -> bool {
        match self {
            Self::Core(_, run) => run.is_cancelled(),
            Self::Shared(seg, _) => seg.is_cancelled(),
        }
    }

    /// Counts `n` items done (in a forked child, into its slot of the shared segment).
    #[inline]
    fn add(&self, n: u64) -> Result<(), crate::core::error::Error> {
        match self {
            Self::Core(node, run) => run.tally(node, Tally::Done, n),
            Self::Shared(seg, idx) => seg.tally(*idx, Tally::Done, n),
        }
    }
}

#[pyclass(frozen, name = "Tracker", module = "milepost._milepost")]
pub struct PyTracker {
    it: Py<PyIterator>,
    /// The wrapped iterator's `tp_iternext`, looked up once instead of on every item.
    next_fn: pyo3::ffi::iternextfunc,
    target: Target,
    length: Option<usize>,
    /// An item has been handed out and is counted done when the next one is asked for,
    /// as tqdm counts: the loop body finished.
    pending: AtomicBool,
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
}

#[pymethods]
impl PyTracker {
    #[new]
    #[pyo3(signature = (iterable, node, length=None, on_end=None))]
    fn py_new(
        iterable: &Bound<'_, PyAny>,
        node: &Bound<'_, PyAny>,
        length: Option<usize>,
        on_end: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let target = if let Ok(n) = node.cast::<super::node::PyNode>() {
            Target::Core(Arc::clone(&n.get().node), Arc::clone(&n.get().run))
        } else if let Ok(n) = node.cast::<super::shared::PySharedNode>() {
            Target::Shared(Arc::clone(&n.get().seg), n.get().idx)
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err("Tracker needs a Node or a SharedNode"));
        };
        let it = PyIterator::from_object(iterable)?;
        let next_fn = iternext_of(&it).ok_or_else(|| {
            pyo3::exceptions::PyTypeError::new_err("the iterable's iterator has no __next__")
        })?;
        Ok(Self {
            next_fn,
            it: it.unbind(),
            target,
            length,
            pending: AtomicBool::new(false),
            on_end: Mutex::new(on_end),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.pending.load(Ordering::Relaxed) {
            self.target.add(1)?;
        }
        if self.target.cancelled() {
            self.pending.store(false, Ordering::Relaxed);
            let err = super::errors::Cancelled::new_err("the run was cancelled: no more items are handed out");
            self.end(py, "raised", Some(&err))?;
            return Err(err);
        }
        match next_item(self.it.bind(py), self.next_fn) {
            Some(Ok(v)) => {
                if !self.pending.load(Ordering::Relaxed) {
                    self.pending.store(true, Ordering::Relaxed);
                }
                Ok(Some(v))
            }
            Some(Err(e)) => {
                self.pending.store(false, Ordering::Relaxed);
                self.end(py, "raised", Some(&e))?;
                Err(e)
            }
            None => {
                self.pending.store(false, Ordering::Relaxed);
                self.end(py, "completed", None)?;
                Ok(None)
            }
        }
    }

    fn __len__(&self) -> PyResult<usize> {
        self.length.ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("this iterable has no known length"))
    }

    /// Counts `n` more items done (tqdm's `update`, for work the loop itself does not count).
    #[pyo3(signature = (n=None))]
    fn update(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.target.add(super::convert::amount(n, "update(n)")?)?)
    }

    /// Renames the loop's bar (tqdm's `set_description`).
    #[pyo3(signature = (desc, refresh=true))]
    fn set_description(&self, desc: &Bound<'_, PyAny>, refresh: bool) -> PyResult<()> {
        let _ = refresh; // every frame is fresh; accepted for tqdm compatibility
        let name = super::convert::text(desc, "description")?;
        if let (false, Target::Core(node, _)) = (name.is_empty(), &self.target) {
            node.rename(crate::core::text::clip(&name, crate::core::run::MAX_NAME_CHARS));
        }
        Ok(())
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

/// `next(it)` through the cached slot: no lookup, no reference-count round trip.
#[allow(unsafe_code)]
#[inline]
fn next_item<'py>(it: &Bound<'py, PyIterator>, next_fn: pyo3::ffi::iternextfunc) -> Option<PyResult<Bound<'py, PyAny>>> {
    let py = it.py();
    // SAFETY: `next_fn` is the slot of `it`'s own type (a type cannot change its slots once
    // ready), `it` is alive and we hold the GIL. It returns a new reference, or NULL with an
    // exception set or not (StopIteration, or nothing, means exhausted).
    let item = unsafe { next_fn(it.as_ptr()) };
    if item.is_null() {
        return match PyErr::take(py) {
            Some(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => None,
            other => other.map(Err),
        };
    }
    // SAFETY: a non-null new reference from `tp_iternext`.
    Some(Ok(unsafe { Bound::from_owned_ptr(py, item) }))
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
