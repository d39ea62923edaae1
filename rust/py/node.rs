//! `Node` (the run, a phase or a step) and `Lane` wrappers. Counting methods are the hot path:
//! one check and one store, no lock, no clock, no allocation.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::{count, end_state, item_status, metric_value, text};
use crate::core::error::non_negative;
use crate::core::shm::segment::{C_DONE, C_RETRIED, C_SKIPPED};
use crate::core::lanes::Lane;
use crate::core::node::Node;
use crate::core::run::{ItemEnd, RunCore};

#[pyclass(frozen, name = "Node", module = "milepost._milepost")]
pub struct PyNode {
    pub(crate) node: Arc<Node>,
    pub(crate) run: Arc<RunCore>,
}

#[pyclass(frozen, name = "Lane", module = "milepost._milepost")]
pub struct PyLane {
    pub(crate) lane: Arc<Lane>,
}

#[pymethods]
impl PyLane {
    #[getter]
    fn id(&self) -> usize {
        self.lane.id
    }

    #[getter]
    fn name(&self) -> &str {
        &self.lane.name
    }

    /// Marks the lane finished (its worker has exited).
    fn finish(&self, now: f64) {
        self.lane.finish(now);
    }
}

#[pymethods]
impl PyNode {
    /// Counts `n` items done. The GIL serializes every caller, so a plain store is exact.
    #[pyo3(signature = (n=1))]
    fn advance(&self, n: i64) -> PyResult<()> {
        let n = non_negative("advance(n)", n)?;
        // In a forked child (a method bound before the fork) the count goes to the child's
        // slot of the shared segment; the child's copy of this node is seen by nobody.
        if self.run.shared_add(&self.node, C_DONE, n) {
            return Ok(());
        }
        // abi3 wheels cannot load on free-threaded CPython, so the GIL is always held here.
        self.node.done.add_serialized(n);
        Ok(())
    }

    #[pyo3(signature = (n=1))]
    fn skip(&self, n: i64) -> PyResult<()> {
        let n = non_negative("skip(n)", n)?;
        if !self.run.shared_add(&self.node, C_SKIPPED, n) {
            self.node.skipped.add(n);
        }
        Ok(())
    }

    /// Counts one failed item and keeps its error text.
    fn fail(&self, name: &Bound<'_, PyAny>, error: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = text(name, "item name")?;
        let error = text(error, "error")?;
        self.run.fail(&self.node, &name, &error);
        Ok(())
    }

    #[pyo3(signature = (n=1))]
    fn retry(&self, n: i64) -> PyResult<()> {
        let n = non_negative("retry(n)", n)?;
        if !self.run.shared_add(&self.node, C_RETRIED, n) {
            self.node.retried.add(n);
        }
        Ok(())
    }

    /// Sets the total (`None`: unknown).
    fn set_total(&self, total: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let total = total.map(|t| count(t, "total")).transpose()?;
        self.run.set_total(&self.node, total);
        Ok(())
    }

    fn add_total(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        self.run.add_total(&self.node, count(n, "add_total(n)")?);
        Ok(())
    }

    /// Adds `value` to the metric `name` (ints stay ints until a float is added).
    fn metric(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = text(name, "metric name")?;
        let (v, is_float) = metric_value(&name, value)?;
        self.run.metric(&self.node, &name, v, is_float)?;
        Ok(())
    }

    #[pyo3(signature = (name, lane=None))]
    fn item_started(&self, name: &Bound<'_, PyAny>, lane: Option<&PyLane>) -> PyResult<()> {
        let name = text(name, "item name")?;
        self.run.item_started(&self.node, lane.map(|l| &*l.lane), &name);
        Ok(())
    }

    #[pyo3(signature = (name, status, duration=None, error=None, lane=None))]
    fn item_finished(
        &self,
        name: &Bound<'_, PyAny>,
        status: &str,
        duration: Option<f64>,
        error: Option<&Bound<'_, PyAny>>,
        lane: Option<&PyLane>,
    ) -> PyResult<()> {
        let name = text(name, "item name")?;
        let error = error.map(|e| text(e, "error")).transpose()?;
        let st = item_status(status)?;
        let end = ItemEnd { name: &name, status: st, duration, error: error.as_deref() };
        self.run.item_finished(&self.node, lane.map(|l| &*l.lane), &end);
        Ok(())
    }

    /// The node's index in the shared table, once the run is shared.
    #[getter]
    fn shared_index(&self) -> Option<usize> {
        self.node.shm_index()
    }

    /// Marks the node running (idempotent).
    fn start(&self) {
        self.node.start(self.run.clock.now(), self.node.processed());
    }

    /// Ends the node: `completed`, `failed` or `cancelled`.
    fn end(&self, state: &str) -> PyResult<()> {
        let st = end_state(state)?;
        self.node.end(st, self.run.clock.now());
        Ok(())
    }

    #[getter]
    fn id(&self) -> usize {
        self.node.id
    }
    #[getter]
    fn name(&self) -> String {
        self.node.name()
    }

    /// Renames the node (tqdm's `set_description`).
    fn rename(&self, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = text(name, "name")?;
        if name.is_empty() {
            return Err(crate::core::error::Error::EmptyName { what: "name" }.into());
        }
        self.node.rename(crate::core::text::clip(&name, crate::core::run::MAX_NAME_CHARS));
        Ok(())
    }

    /// The rate (items per second) earlier runs reached here: the ETA until this run has its own.
    fn set_prior_rate(&self, rate: f64) {
        self.node.set_prior_rate(rate);
    }

    /// Runs an ended node again, keeping its counts (a loop entered once more).
    fn reopen(&self) {
        self.node.reopen();
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.node.kind.as_str()
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.node.state().as_str()
    }
    #[getter]
    fn total(&self) -> Option<u64> {
        self.node.own_total()
    }
    /// Items done by this node itself (snapshots roll children up).
    #[getter]
    fn done(&self) -> u64 {
        self.node.done.get()
    }
    #[getter]
    fn failed(&self) -> u64 {
        self.node.failed.get()
    }
    #[getter]
    fn skipped(&self) -> u64 {
        self.node.skipped.get()
    }
    #[getter]
    fn retried(&self) -> u64 {
        self.node.retried.get()
    }
    #[getter]
    fn in_flight(&self) -> i64 {
        self.node.in_flight()
    }

    fn __repr__(&self) -> String {
        format!("<Node {} {:?} done={}>", self.node.kind.as_str(), self.node.name(), self.node.done.get())
    }
}


