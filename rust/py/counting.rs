//! `TaskBase` and `BarBase`: the native base classes of Python's `Task` and of the manual bars
//! (`track(total=N)`, `milepost.tqdm`). Their counting methods are methods of the type, so that
//! `task.advance()` written as users write it takes `CPython`'s method-call path straight into
//! Rust: no instance-dict lookup, no bound method made, no Python frame.

use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::PyTraverseError;

use super::convert::{amount, count, Obj};
use super::item::{make_item, PyItemBase, PyItemPath};
use super::node::PyNode;
use crate::core::handle::Handle;
use crate::core::node::Tally;
use parking_lot::Mutex;

/// The node a task counts into, which a forked worker rebinds once (`Task.hand_over`).
///
/// A read is one load. Every handle bound stays until the task is dropped (each binding keeps
/// the one before it), so a reference read before a rebind stays valid after it; a rebind takes
/// no lock, so a child forked while another thread held one still rebinds.
#[derive(Default)]
pub struct NodeSlot {
    current: AtomicPtr<Binding>,
}

struct Binding {
    handle: Handle,
    earlier: *mut Binding,
}

impl NodeSlot {
    #[allow(unsafe_code)]
    #[inline]
    pub fn get(&self) -> PyResult<&Handle> {
        let ptr = self.current.load(Ordering::Acquire);
        if ptr.is_null() {
            return Err(unbound());
        }
        // SAFETY: a non-null `current` is a binding made by `bind`, freed only when `self` is
        // dropped, so it outlives the returned borrow of `self`.
        Ok(unsafe { &(*ptr).handle })
    }

    #[allow(unsafe_code)]
    pub fn bind(&self, handle: Handle) {
        let binding = Box::into_raw(Box::new(Binding { handle, earlier: null_mut() }));
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            // SAFETY: `binding` is ours until it is published below.
            unsafe { (*binding).earlier = current };
            match self.current.compare_exchange_weak(current, binding, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for NodeSlot {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let mut ptr = *self.current.get_mut();
        while !ptr.is_null() {
            // SAFETY: every binding in the chain came from `Box::into_raw` in `bind` and is
            // freed once, here, when nothing can read it any more.
            let binding = unsafe { Box::from_raw(ptr) };
            ptr = binding.earlier;
        }
    }
}

#[cold]
fn unbound() -> PyErr {
    PyRuntimeError::new_err("this task has no node yet: its __init__ binds one (Task.__init__)")
}

/// The native half of `milepost.Task`: the counting methods on the task's node.
#[pyclass(subclass, frozen, name = "TaskBase", module = "milepost._milepost")]
pub struct PyTaskBase {
    pub(crate) node: NodeSlot,
    /// What making an item reads, under one lock (taking a lock and letting it go is two
    /// atomic operations, and an item is made for every item of a loop).
    pub(crate) kept: Mutex<Kept>,
}

/// What a task keeps for making its items (`item::make_item`).
#[derive(Default)]
pub(crate) struct Kept {
    /// How its items are handled natively (None: by `Item`'s Python), see `item`.
    pub(crate) items: Option<Py<PyItemPath>>,
    /// The last item it made, made again once nothing else holds it (see `item::make_item`).
    pub(crate) spare: Option<Py<PyItemBase>>,
    /// That item's `__enter__` and `__exit__`, bound, handed out again (see `bound`).
    pub(crate) bound: [Option<Py<PyAny>>; 2],
}

#[pymethods]
impl PyTaskBase {
    /// Made unbound, whatever the subclass's `__init__` takes: it binds the node (`_bind_node`).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Self { node: NodeSlot::default(), kept: Mutex::default() }
    }
    /// A subclass gets descriptors of its own for the fast methods (see `fast`).
    #[classmethod]
    fn __init_subclass__(cls: &Bound<'_, PyType>) -> PyResult<()> {
        super::fast::own_methods(cls)
    }
    /// From now on the task counts into `node`; its items are handled natively through
    /// `items` (None: by `Item`'s Python).
    #[pyo3(signature = (node, items=None))]
    fn _bind_node(&self, node: &PyNode, items: Option<Py<PyItemPath>>) {
        self.node.bind(node.handle.clone());
        let earlier = std::mem::replace(&mut self.kept.lock().items, items);
        drop(earlier); // after the lock: freeing it may run code
    }
    // The task's spare item refers back to it: the collector must see that cycle. A lock held
    // (a task made or bound in this very thread) leaves its reference unvisited this time.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(kept) = self.kept.try_lock() {
            visit.call(kept.spare.as_ref())?;
            visit.call(kept.items.as_ref())?;
            for bound in &kept.bound {
                visit.call(bound.as_ref())?;
            }
        }
        Ok(())
    }
    fn __clear__(&self) {
        let kept = std::mem::take(&mut *self.kept.lock());
        drop(kept); // after the lock: freeing the item may run code
    }
    /// Context manager for one item: records its duration and worker lane; an exception
    /// marks it failed with the error text and is re-raised.
    fn item<'py>(slf: &Bound<'py, Self>, name: &Obj<'py>) -> PyResult<Bound<'py, PyItemBase>> {
        make_item(slf, name)
    }
    #[pyo3(signature = (n=None))]
    fn advance(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.node.get()?.tally(Tally::Done, amount(n, "advance(n)")?)?)
    }
    #[pyo3(signature = (n=None))]
    fn skip(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.node.get()?.tally(Tally::Skipped, amount(n, "skip(n)")?)?)
    }
    fn set_total(&self, total: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.node.get()?.set_total(total.map(|t| count(t, "total")).transpose()?)?)
    }
    fn add_total(&self, n: &Obj<'_>) -> PyResult<()> {
        Ok(self.node.get()?.add_total(count(n, "add_total(n)")?)?)
    }
}

/// The native half of the manual bars: tqdm's `update(n)` on the bar's node.
#[pyclass(subclass, frozen, name = "BarBase", module = "milepost._milepost")]
pub struct PyBarBase {
    pub(crate) node: NodeSlot,
}

#[pymethods]
impl PyBarBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Self { node: NodeSlot::default() }
    }
    /// A subclass gets descriptors of its own for the fast methods (see `fast`).
    #[classmethod]
    fn __init_subclass__(cls: &Bound<'_, PyType>) -> PyResult<()> {
        super::fast::own_methods(cls)
    }
    fn _bind_node(&self, node: &PyNode) {
        self.node.bind(node.handle.clone());
    }
    /// Counts `n` (default 1) more items done. The fast method (see `fast`) counts a whole
    /// number above 0 on a bar with a node; anything else (a float, 0, a bad value, tqdm's
    /// `disable=True`) is the subclass's `_update`, which knows tqdm's rules.
    #[pyo3(signature = (n=None))]
    fn update<'py>(slf: &Bound<'py, Self>, n: Option<&Obj<'py>>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method1(pyo3::intern!(slf.py(), "_update"), (n,))
    }
}
