//! `Node` (the run, a phase or a step) and `Lane` wrappers. Counting methods are the hot path:
//! one check and one store, no lock, no clock, no allocation.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::{amount, count, end_state, item_status, metric_value, text};
use super::rows::PyRowBuffer;
use crate::core::rows::Row;
use crate::core::lanes::Lane;
use crate::core::node::{Node, Tally};
use crate::core::run::{ItemEnd, ItemStatus, RunCore};

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
    /// Counts `n` items done: one check and one plain store (see `RunCore::tally`).
    #[pyo3(signature = (n=None))]
    fn advance(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.run.tally(&self.node, Tally::Done, amount(n, "advance(n)")?)?)
    }

    #[pyo3(signature = (n=None))]
    fn skip(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.run.tally(&self.node, Tally::Skipped, amount(n, "skip(n)")?)?)
    }

    #[pyo3(signature = (n=None))]
    fn retry(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.run.tally(&self.node, Tally::Retried, amount(n, "retry(n)")?)?)
    }

    /// Sets the total (`None`: unknown).
    fn set_total(&self, total: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let total = total.map(|t| count(t, "total")).transpose()?;
        Ok(self.run.set_total(&self.node, total)?)
    }

    fn add_total(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        Ok(self.run.add_total(&self.node, count(n, "add_total(n)")?)?)
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
        Ok(self.run.item_started(&self.node, lane.map(|l| &*l.lane), &name)?)
    }

    /// Records the end of an item. With `rows` (the history's row buffer), the item's row is
    /// queued in the same call as its count, so that no Ctrl-C can fall between the two: the
    /// history's counts and its rows always agree. Returns how many rows are waiting.
    #[pyo3(signature = (name, status, duration=None, error=None, lane=None, rows=None, started_at=0.0, metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn item_finished(
        &self,
        name: &Bound<'_, PyAny>,
        status: &str,
        duration: Option<f64>,
        error: Option<&Bound<'_, PyAny>>,
        lane: Option<&PyLane>,
        rows: Option<&PyRowBuffer>,
        started_at: f64,
        metrics: Option<&str>,
    ) -> PyResult<usize> {
        let name = text(name, "item name")?;
        let error = error.map(|e| text(e, "error")).transpose()?;
        let st = item_status(status)?;
        let end = ItemEnd { name: &name, status: st, duration, error: error.as_deref() };
        self.run.item_finished(&self.node, lane.map(|l| &*l.lane), &end)?;
        Ok(match rows {
            Some(rows) if st != ItemStatus::Cancelled => rows.push_row(&Row {
                phase: &self.node.path,
                name: &name,
                status,
                started_at,
                duration,
                error: error.as_deref(),
                metrics,
            }),
            _ => 0,
        })
    }

    /// Counts one failed item and keeps its error text; with `rows`, its history row is
    /// queued in the same call (see `item_finished`). Returns how many rows are waiting.
    #[pyo3(signature = (name, error, rows=None, at=0.0))]
    fn fail(&self, name: &Bound<'_, PyAny>, error: &Bound<'_, PyAny>, rows: Option<&PyRowBuffer>, at: f64) -> PyResult<usize> {
        let name = text(name, "item name")?;
        let error = text(error, "error")?;
        self.run.fail(&self.node, &name, &error)?;
        let row = Row { phase: &self.node.path, name: &name, status: "failed", started_at: at, duration: None, error: Some(&error), metrics: None };
        Ok(rows.map_or(0, |r| r.push_row(&row)))
    }

    /// Keeps an item a worker process counted in the recent list (and a failure in the
    /// failures list), without counting it again: `at` is seconds on the run's clock.
    #[pyo3(signature = (name, status, duration, at, lane=None, error=None))]
    fn record_item(
        &self,
        name: &Bound<'_, PyAny>,
        status: &str,
        duration: Option<f64>,
        at: f64,
        lane: Option<&str>,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = text(name, "item name")?;
        let error = error.map(|e| text(e, "error")).transpose()?;
        let end = ItemEnd { name: &name, status: item_status(status)?, duration, error: error.as_deref() };
        self.run.record_item(&self.node, lane, &end, at);
        Ok(())
    }

    /// The node's key in the history (see the README: unambiguous, fixed at creation).
    #[getter]
    fn path(&self) -> &str {
        &self.node.path
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
        self.node.counts().done
    }
    #[getter]
    fn failed(&self) -> u64 {
        self.node.failed.get()
    }
    #[getter]
    fn skipped(&self) -> u64 {
        self.node.counts().skipped
    }
    #[getter]
    fn retried(&self) -> u64 {
        self.node.retried.get()
    }
    /// Items done and skipped by this node itself in an item context, which the history keeps
    /// rows for; and the rest (`advance`, `skip`, loops): what a resumed run restores.
    #[getter]
    fn counted(&self) -> (u64, u64, u64, u64) {
        let c = self.node.counts();
        let (done, skipped) = c.explicit();
        (c.item_done, c.item_skipped, done, skipped)
    }
    /// Restores what a resumed run takes over: items with history rows (done, skipped) and
    /// explicit counts (done, skipped), each into its own counter.
    fn restore(&self, item_done: u64, item_skipped: u64, done: u64, skipped: u64) -> PyResult<()> {
        for (t, n) in [(Tally::ItemDone, item_done), (Tally::ItemSkipped, item_skipped), (Tally::Done, done), (Tally::Skipped, skipped)] {
            self.run.tally(&self.node, t, crate::core::error::within_range("a resumed count", n)?)?;
        }
        Ok(())
    }
    #[getter]
    fn in_flight(&self) -> i64 {
        self.node.in_flight()
    }

    fn __repr__(&self) -> String {
        format!("<Node {} {:?} done={}>", self.node.kind.as_str(), self.node.name(), self.node.counts().done)
    }
}


