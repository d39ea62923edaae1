//! `Node` (the run, a phase or a step, here or in a worker's slot: the core's handle decides) and
//! `Lane`. Counting methods are the hot path: one check and one store, no lock, no allocation.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::{amount, count, metric_value, text, with_str, Obj};
use super::rows::PyRowBuffer;
use crate::core::handle::{Handle, RowExtra};
use crate::core::kinds::{ItemStatus, NodeState};
use crate::core::lanes::Lane;
use crate::core::node::Tally;
use crate::core::run::ItemEnd;

#[pyclass(frozen, name = "Node", module = "milepost._milepost")]
pub struct PyNode {
    pub(crate) handle: Handle,
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
    fn finish(&self, now: f64) {
        self.lane.finish(now);
    }
    /// Adds to the tail of the lane's current item's streamed output (`item.stream`).
    fn stream(&self, text: &Obj<'_>) -> PyResult<()> {
        with_str(text, "item.stream() text", |t| self.lane.stream(t))
    }
}

/// An item's name, status and error as Rust text, for an [`ItemEnd`].
fn item_texts(name: &Obj<'_>, status: &str, error: Option<&Obj<'_>>) -> PyResult<(String, ItemStatus, Option<String>)> {
    Ok((text(name, "item name")?, ItemStatus::parse(status)?, error.map(|e| text(e, "error")).transpose()?))
}

#[pymethods]
impl PyNode {
    #[pyo3(signature = (n=None))]
    fn advance(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.handle.tally(Tally::Done, amount(n, "advance(n)")?)?)
    }
    #[pyo3(signature = (n=None))]
    fn skip(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.handle.tally(Tally::Skipped, amount(n, "skip(n)")?)?)
    }
    #[pyo3(signature = (n=None))]
    fn retry(&self, n: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.handle.tally(Tally::Retried, amount(n, "retry(n)")?)?)
    }
    fn set_total(&self, total: Option<&Obj<'_>>) -> PyResult<()> {
        Ok(self.handle.set_total(total.map(|t| count(t, "total")).transpose()?)?)
    }
    fn add_total(&self, n: &Obj<'_>) -> PyResult<()> {
        Ok(self.handle.add_total(count(n, "add_total(n)")?)?)
    }
    fn metric(&self, name: &Obj<'_>, value: &Obj<'_>) -> PyResult<()> {
        let name = text(name, "metric name")?;
        let (value, is_float) = metric_value(&name, value)?;
        Ok(self.handle.metric(&name, value, is_float)?)
    }
    /// The whole cost of an item that ended and recorded one (`core::cost`).
    fn item_cost(&self, cost: f64) -> PyResult<()> {
        Ok(self.handle.item_cost(cost)?)
    }
    /// Item `name`, which has no lane, starts streaming into the node's tail.
    fn stream_start(&self, name: &Obj<'_>) -> PyResult<()> {
        self.handle.stream_start(&text(name, "item name")?);
        Ok(())
    }
    /// Adds to the tail of the node's streaming item.
    fn stream(&self, text: &Obj<'_>) -> PyResult<()> {
        with_str(text, "item.stream() text", |t| self.handle.stream(t))
    }
    /// The streaming item `name` ended: its tail goes.
    fn stream_end(&self, name: &Obj<'_>) -> PyResult<()> {
        self.handle.stream_end(&text(name, "item name")?);
        Ok(())
    }
    #[pyo3(signature = (name, lane=None))]
    fn item_started(&self, name: &Obj<'_>, lane: Option<&PyLane>) -> PyResult<()> {
        self.handle.item_started(&text(name, "item name")?, lane.map(|l| &*l.lane))?;
        Ok(())
    }
    #[pyo3(signature = (name, status, duration=None, error=None, lane=None, rows=None, started_at=0.0, metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn item_finished(
        &self, name: &Obj<'_>, status: &str, duration: Option<f64>, error: Option<&Obj<'_>>, lane: Option<&PyLane>,
        rows: Option<&PyRowBuffer>, started_at: f64, metrics: Option<&str>,
    ) -> PyResult<usize> {
        let (name, status, error) = item_texts(name, status, error)?;
        let end = ItemEnd { name: &name, status, duration, error: error.as_deref() };
        let (lane, rows) = (lane.map(|l| &*l.lane), rows.map(|r| &r.rows));
        Ok(self.handle.item_finished(&end, lane, rows, RowExtra { started_at, metrics })?)
    }
    #[pyo3(signature = (name, error, rows=None, at=0.0))]
    fn fail(&self, name: &Obj<'_>, error: &Obj<'_>, rows: Option<&PyRowBuffer>, at: f64) -> PyResult<usize> {
        let (name, error) = (text(name, "item name")?, text(error, "error")?);
        Ok(self.handle.fail(&name, &error, rows.map(|r| &r.rows), at)?)
    }
    #[pyo3(signature = (name, status, duration, at, lane=None, error=None))]
    fn record_item(
        &self, name: &Obj<'_>, status: &str, duration: Option<f64>, at: f64, lane: Option<&str>,
        error: Option<&Obj<'_>>,
    ) -> PyResult<()> {
        let (name, status, error) = item_texts(name, status, error)?;
        self.handle.record_item(&ItemEnd { name: &name, status, duration, error: error.as_deref() }, at, lane);
        Ok(())
    }
    /// Keeps the items of a chunk's recent items (`recent::RecentItems`) as `record_item`
    /// keeps one, each at its end less `origin` (the run's start, Unix time); an item whose end
    /// is not a time is left out. Bytes that are not such items are an error, and none is kept.
    #[pyo3(signature = (data, origin, lane=None))]
    fn record_recent(&self, data: &[u8], origin: f64, lane: Option<&str>) -> PyResult<()> {
        for (name, status, duration, end) in super::recent::parse(data)? {
            if end.is_finite() {
                self.handle.record_item(&ItemEnd { name, status, duration, error: None }, end - origin, lane);
            }
        }
        Ok(())
    }
    fn restore(&self, item_done: u64, item_skipped: u64, done: u64, skipped: u64) -> PyResult<()> {
        Ok(self.handle.restore(item_done, item_skipped, done, skipped)?)
    }
    fn start(&self) {
        self.handle.start();
    }
    fn end(&self, state: &str) -> PyResult<()> {
        self.handle.end(NodeState::parse_end(state)?);
        Ok(())
    }
    fn reopen(&self) {
        self.handle.reopen();
    }
    fn set_leave(&self, leave: bool) {
        self.handle.set_leave(leave);
    }
    fn new_pass(&self) {
        self.handle.new_pass();
    }
    /// `(number, processed, total)` of the current pass (see `Node::new_pass`).
    fn pass_figures(&self) -> (u32, u64, Option<u64>) {
        self.handle.pass_figures()
    }
    #[pyo3(signature = (divisor=None))]
    fn set_unit_divisor(&self, divisor: Option<u32>) -> PyResult<()> {
        Ok(self.handle.set_unit_divisor(divisor)?)
    }
    fn rename(&self, name: &Obj<'_>) -> PyResult<()> {
        Ok(self.handle.rename(&text(name, "name")?)?)
    }
    fn set_prior_rate(&self, rate: f64) {
        self.handle.set_prior_rate(rate);
    }
    #[getter]
    fn path(&self) -> Option<&str> {
        self.handle.path()
    }
    #[getter]
    fn shared_index(&self) -> Option<usize> {
        self.handle.shared_index()
    }
    #[getter]
    fn name(&self) -> String {
        self.handle.name()
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.handle.kind().as_str()
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.handle.state().as_str()
    }
    #[getter]
    fn total(&self) -> Option<u64> {
        self.handle.total()
    }
    #[getter]
    fn done(&self) -> u64 {
        self.handle.counts().done
    }
    #[getter]
    fn failed(&self) -> u64 {
        self.handle.counts().failed
    }
    #[getter]
    fn skipped(&self) -> u64 {
        self.handle.counts().skipped
    }
    #[getter]
    fn retried(&self) -> u64 {
        self.handle.counts().retried
    }
    #[getter]
    fn in_flight(&self) -> i64 {
        self.handle.counts().in_flight
    }
    fn __repr__(&self) -> String {
        format!("<Node {} {:?} done={}>", self.handle.kind(), self.handle.name(), self.handle.counts().done)
    }
}
