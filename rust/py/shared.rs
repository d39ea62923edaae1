//! `SharedRun`: a run's shared-memory segment as a worker process maps it. Its nodes are
//! `Node`s like the parent's (`node(i)`): every count lands in this process's slot.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::{count, text, Obj};
use super::node::PyNode;
use crate::core::error::Error;
use crate::core::handle::Handle;
use crate::core::kinds::NodeKind;
use crate::core::shm::Segment;

/// Called in a child right after `fork` (its slots are its parent's); lock-free, as a fork may leave any lock held.
#[pyfunction]
pub fn after_fork_in_child() {
    crate::core::shm::segment::after_fork_in_child();
}

#[pyclass(frozen, name = "SharedRun", module = "milepost._milepost")]
pub struct PySharedRun {
    pub(crate) seg: Arc<Segment>,
}

#[pymethods]
impl PySharedRun {
    #[staticmethod]
    fn attach(path: &str) -> PyResult<Self> {
        let seg = Segment::attach(std::path::Path::new(path))
            .map_err(|e| Error::Attach { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { seg: Arc::new(seg) })
    }
    #[getter]
    fn path(&self) -> String {
        self.seg.path().to_string_lossy().into_owned()
    }
    /// The node at `index`, counted into this process's slot; with `rows_path`, its items'
    /// history rows are kept under that path (see `Handle::Slot`).
    #[pyo3(signature = (index, rows_path=None))]
    fn node(&self, index: usize, rows_path: Option<&str>) -> PyResult<PyNode> {
        let seg = Arc::clone(&self.seg);
        let handle = match rows_path {
            Some(path) => Handle::slot_keeping_rows(seg, index, path)?,
            None => Handle::slot(seg, index)?,
        };
        Ok(PyNode { handle })
    }
    #[pyo3(signature = (parent, kind, name, unit="it", total=None))]
    fn child(&self, parent: usize, kind: &str, name: &Obj<'_>, unit: &str, total: Option<&Obj<'_>>) -> PyResult<usize> {
        let (kind, name) = (NodeKind::parse_child(kind)?, text(name, "name")?);
        let total = total.map(|t| count(t, "total")).transpose()?;
        Ok(self.seg.child(parent, kind, &name, unit, total)?)
    }
    fn emit(&self, node: usize, json: &str) -> PyResult<bool> {
        Ok(self.seg.emit(node, json)?)
    }
    #[getter]
    fn cancelled(&self) -> bool {
        self.seg.is_cancelled()
    }
    fn pool_stopped(&self, pool: usize) -> bool {
        self.seg.pool_stopped(pool)
    }
    fn detach(&self) {
        self.seg.detach();
    }
}

impl PySharedRun {
    /// A pool's worker starts no more items: the run was cancelled, or pool `pool` told to
    /// stop (a Ctrl-C).
    pub fn stopping(&self, pool: usize) -> bool {
        self.seg.is_cancelled() || self.seg.pool_stopped(pool)
    }
}
