//! The iterator returned by `track()`. Its `__next__` is the hottest path of all: one call
//! into the wrapped iterator plus one plain store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use crate::core::node::Node;

#[pyclass(frozen, name = "Tracker", module = "milepost._milepost")]
pub struct PyTracker {
    it: Py<PyIterator>,
    node: Arc<Node>,
    length: Option<usize>,
    /// An item has been handed out and is counted done when the next one is asked for,
    /// as tqdm counts: the loop body finished.
    pending: AtomicBool,
    /// Called once with "completed", "failed" or "abandoned".
    on_end: Mutex<Option<Py<PyAny>>>,
}

impl PyTracker {
    fn end(&self, py: Python<'_>, how: &str) -> PyResult<()> {
        let cb = self.on_end.lock().take();
        if let Some(cb) = cb {
            cb.call1(py, (how,))?;
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
        node: &super::node::PyNode,
        length: Option<usize>,
        on_end: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            it: PyIterator::from_object(iterable)?.unbind(),
            node: Arc::clone(&node.node),
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
            // abi3 wheels cannot load on free-threaded CPython, so the GIL is always held here.
            self.node.done.add_serialized(1);
        }
        let mut it = self.it.bind(py).clone();
        match it.next() {
            Some(Ok(v)) => {
                self.pending.store(true, Ordering::Relaxed);
                Ok(Some(v))
            }
            Some(Err(e)) => {
                self.pending.store(false, Ordering::Relaxed);
                self.end(py, "failed")?;
                Err(e)
            }
            None => {
                self.pending.store(false, Ordering::Relaxed);
                self.end(py, "completed")?;
                Ok(None)
            }
        }
    }

    fn __len__(&self) -> PyResult<usize> {
        self.length.ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("this iterable has no known length"))
    }

    /// Ends tracking now (as on `break`): the run is closed as abandoned.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, "abandoned")
    }
}

impl Drop for PyTracker {
    fn drop(&mut self) {
        // A loop left with `break` never exhausts the iterator: close its run when the
        // tracker is collected, as tqdm does in `__del__`.
        if let Some(cb) = self.on_end.get_mut().take() {
            Python::try_attach(|py| {
                if let Err(e) = cb.call1(py, ("abandoned",)) {
                    e.write_unraisable(py, None);
                }
            });
        }
    }
}
