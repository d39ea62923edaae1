//! The worker's handles on a shared run: `SharedRun` (the segment) and `SharedNode` (a phase
//! or step as a worker process counts into it). Every write lands in this process's slot.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::convert::{amount, count, end_state, item_status, metric_value, text};
use crate::core::error::Error;
use crate::core::shm::segment::{C_DONE, C_FAILED, C_IN_FLIGHT, C_RETRIED, C_SECONDS, C_SKIPPED, C_TIMED};
use crate::core::shm::{Segment, WriteError};
use crate::core::node::{NodeKind, Tally};
use crate::core::run::ItemStatus;

/// Called in a child process right after `fork`: the slots it inherited are its parent's.
/// Lock-free (a lock held by another thread at the fork would never be released here).
#[pyfunction]
pub fn after_fork_in_child() {
    crate::core::shm::segment::after_fork_in_child();
}

#[allow(clippy::needless_pass_by_value)] // the shape `map_err` wants
fn err(e: WriteError) -> PyErr {
    crate::py::errors::InvalidValueError::new_err(e.to_string())
}

#[pyclass(frozen, name = "SharedRun", module = "milepost._milepost")]
pub struct PySharedRun {
    pub(crate) seg: Arc<Segment>,
    metrics: Arc<Mutex<Vec<(String, usize)>>>,
}

impl PySharedRun {
    pub fn wrap(seg: Arc<Segment>) -> Self {
        Self { seg, metrics: Arc::new(Mutex::new(Vec::new())) }
    }
}

#[pymethods]
impl PySharedRun {
    /// Maps the segment a parent process created at `path`.
    #[staticmethod]
    fn attach(path: &str) -> PyResult<Self> {
        let seg = Segment::attach(std::path::Path::new(path)).map_err(|e| {
            crate::py::errors::InvalidValueError::new_err(format!("cannot attach to {path}: {e}"))
        })?;
        Ok(Self::wrap(Arc::new(seg)))
    }

    #[getter]
    fn path(&self) -> String {
        self.seg.path().to_string_lossy().into_owned()
    }

    /// The node at `index` of the shared table.
    fn node(&self, index: usize) -> PyResult<PySharedNode> {
        self.seg.check_node(index).map_err(err)?;
        Ok(PySharedNode { seg: Arc::clone(&self.seg), idx: index, metrics: Arc::clone(&self.metrics) })
    }

    /// The phase or step of that name under `parent`, registered by this worker if no process
    /// did yet (loops entered again reuse their node): its index.
    #[pyo3(signature = (parent, kind, name, unit="it", total=None))]
    fn child(
        &self,
        parent: usize,
        kind: &str,
        name: &Bound<'_, PyAny>,
        unit: &str,
        total: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let kind = if kind == "phase" { NodeKind::Phase } else { NodeKind::Step };
        self.seg.check_open(if kind == NodeKind::Step { "step()" } else { "phase()" })?;
        let kind = kind.code();
        let name = text(name, "name")?;
        let total = total.map(|t| count(t, "total")).transpose()?;
        let (i, created) = self.seg.find_or_register(parent, kind, &name, unit, total).map_err(err)?;
        if let (false, Some(t)) = (created, total) {
            self.seg.add_total(i, t);
        }
        Ok(i)
    }

    /// Queues an event (its fields as JSON) for the parent; False when the queue was full
    /// (the parent counts and shows what was dropped).
    fn emit(&self, node: usize, json: &str) -> PyResult<bool> {
        self.seg.check_open("log()")?;
        let slot = self.seg.my_slot().map_err(err)?;
        Ok(self.seg.push_event(slot, crate::core::shm::writer::EVENT_JSON, node, json))
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.seg.is_cancelled()
    }

    /// Whether the parent told pool `pool` to stop handing out items (a Ctrl-C).
    fn pool_stopped(&self, pool: usize) -> bool {
        self.seg.pool_stopped(pool)
    }

    /// Marks this worker as exited cleanly.
    fn detach(&self) {
        self.seg.detach();
    }
}

#[pyclass(frozen, name = "SharedNode", module = "milepost._milepost")]
pub struct PySharedNode {
    pub(crate) seg: Arc<Segment>,
    pub(crate) idx: usize,
    metrics: Arc<Mutex<Vec<(String, usize)>>>,
}

impl PySharedNode {
    /// An error once the parent has ended the run (as in the parent).
    fn check_open(&self, call: &'static str) -> PyResult<()> {
        if self.seg.is_ended() {
            return Err(Error::RunEnded { run: String::new(), call }.into());
        }
        Ok(())
    }

    fn own(&self, field: usize) -> u64 {
        self.seg.claimed().map_or(0, |slot| {
            self.seg.word(Segment::counter(slot, self.idx, field)).load(std::sync::atomic::Ordering::Relaxed)
        })
    }
}

// Some methods exist only to give a worker the same API as the parent: they use no state.
#[allow(clippy::unused_self)]
#[pymethods]
impl PySharedNode {
    /// Counts `n` items done (into this process's slot: one load and one store).
    #[pyo3(signature = (n=None))]
    fn advance(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.seg.tally(self.idx, Tally::Done, amount(n, "advance(n)")?)?)
    }

    #[pyo3(signature = (n=None))]
    fn skip(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.seg.tally(self.idx, Tally::Skipped, amount(n, "skip(n)")?)?)
    }

    /// Counts one failed item; its name and error travel to the parent as an event.
    #[pyo3(signature = (name, error, rows=None, at=0.0))]
    fn fail(&self, name: &Bound<'_, PyAny>, error: &Bound<'_, PyAny>, rows: Option<&Bound<'_, PyAny>>, at: f64) -> PyResult<usize> {
        let _ = (rows, at); // a worker keeps no rows
        text(name, "item name")?;
        text(error, "error")?;
        self.seg.tally(self.idx, Tally::Failed, 1)?;
        self.seg.bump_lane(self.seg.my_slot().map_err(err)?, true);
        Ok(0)
    }

    #[pyo3(signature = (n=None))]
    fn retry(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        Ok(self.seg.tally(self.idx, Tally::Retried, amount(n, "retry(n)")?)?)
    }

    fn set_total(&self, total: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.check_open("set_total()")?;
        let total = total.map(|t| count(t, "total")).transpose()?;
        self.seg.set_total(self.idx, total);
        Ok(())
    }

    fn add_total(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check_open("add_total()")?;
        let n = count(n, "add_total(n)")?;
        let info = self.seg.node_info(self.idx);
        if let Some((name, at)) = info.and_then(|i| i.total.map(|t| (i.name, t))).filter(|(_, t)| t + n > crate::core::limits::MAX_COUNT) {
            return Err(Error::Overflow { what: "add_total(n)", node: name, at, n }.into());
        }
        self.seg.add_total(self.idx, n);
        Ok(())
    }

    fn metric(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check_open("metric()")?;
        let name = text(name, "metric name")?;
        let (v, is_float) = metric_value(&name, value)?;
        if !v.is_finite() {
            return Err(Error::NotFinite { metric: name, value: v }.into());
        }
        if name.is_empty() {
            return Err(Error::EmptyName { what: "metric name" }.into());
        }
        if !is_float && v.abs() > crate::core::limits::MAX_COUNT as f64 {
            return Err(Error::TooLarge { what: format!("metric {name:?}"), value: format!("{v:.0}") }.into());
        }
        let cached = self.metrics.lock().iter().find(|(n, _)| *n == name).map(|(_, i)| *i);
        let index = if let Some(i) = cached {
            i
        } else {
            let i = self.seg.metric_index(&name).map_err(err)?;
            self.metrics.lock().push((name, i));
            i
        };
        let slot = self.seg.my_slot().map_err(err)?;
        self.seg.add_metric(slot, self.idx, index, v, is_float);
        Ok(())
    }

    #[pyo3(signature = (name, lane=None))]
    fn item_started(&self, name: &Bound<'_, PyAny>, lane: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let _ = lane; // a worker process is its own lane
        self.check_open("item()")?;
        let name = text(name, "item name")?;
        let slot = self.seg.my_slot().map_err(err)?;
        self.seg.bump(slot, self.idx, C_IN_FLIGHT, 1);
        self.seg.set_item(slot, &name);
        Ok(())
    }

    /// As `Node.item_finished`; a worker keeps no rows (its items' rows go back to the parent
    /// with their results), so `rows` is never given here and 0 rows are waiting.
    #[pyo3(signature = (name, status, duration=None, error=None, lane=None, rows=None, started_at=0.0, metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn item_finished(
        &self,
        name: &Bound<'_, PyAny>,
        status: &str,
        duration: Option<f64>,
        error: Option<&Bound<'_, PyAny>>,
        lane: Option<&Bound<'_, PyAny>>,
        rows: Option<&Bound<'_, PyAny>>,
        started_at: f64,
        metrics: Option<&str>,
    ) -> PyResult<usize> {
        let _ = (lane, error, rows, started_at, metrics);
        text(name, "item name")?;
        let tally = match item_status(status)? {
            ItemStatus::Done => Some(Tally::ItemDone),
            ItemStatus::Failed => Some(Tally::Failed),
            ItemStatus::Skipped => Some(Tally::ItemSkipped),
            ItemStatus::Cancelled => None,
        };
        let slot = self.seg.my_slot().map_err(err)?;
        // Counted before it leaves flight: a kill between the two stores may count the item
        // twice (done, and failed as the dead worker's), but never loses it.
        if let Some(t) = tally {
            self.seg.tally(self.idx, t, 1)?;
            // A lane's "done" means done, as everywhere: a skipped item is neither.
            if t != Tally::ItemSkipped {
                self.seg.bump_lane(slot, t == Tally::Failed);
            }
        }
        self.seg.bump(slot, self.idx, C_IN_FLIGHT, u64::MAX); // wrapping: minus one
        if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
            self.seg.bump(slot, self.idx, C_TIMED, 1);
            self.seg.bump_f64(slot, self.idx, C_SECONDS, d);
        }
        self.seg.set_item(slot, "");
        Ok(0)
    }

    /// Accepted for the same API as in the parent: a worker's recent items are the parent's
    /// to keep (its failures reach it as events), so a pool run inside a worker records none.
    #[pyo3(signature = (name, status, duration, at, lane=None, error=None))]
    #[allow(clippy::too_many_arguments)]
    fn record_item(
        &self,
        name: &Bound<'_, PyAny>,
        status: &str,
        duration: Option<f64>,
        at: f64,
        lane: Option<&str>,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (duration, at, lane, error);
        text(name, "item name")?;
        item_status(status).map(|_| ())
    }

    /// A worker uses the node (the parent shows worker-created nodes running while used).
    fn start(&self) {
        self.seg.open_node(self.idx);
    }

    fn end(&self, state: &str) -> PyResult<()> {
        // The end state's code is NodeState's, which the parent reads back.
        self.seg.close_node(self.idx, end_state(state)? as u64);
        Ok(())
    }

    /// Names are fixed once shared; accepted for the same API as in the parent.
    fn rename(&self, name: &Bound<'_, PyAny>) -> PyResult<()> {
        text(name, "name").map(|_| ())
    }

    fn reopen(&self) {}

    #[getter]
    fn id(&self) -> usize {
        self.idx
    }
    /// The node's index in the shared table (as `Node.shared_index`).
    #[getter]
    fn shared_index(&self) -> Option<usize> {
        Some(self.idx)
    }
    #[getter]
    fn name(&self) -> String {
        self.seg.node_info(self.idx).map(|n| n.name).unwrap_or_default()
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.seg.node_info(self.idx).map_or(NodeKind::Step, |n| NodeKind::from_code(n.kind)).as_str()
    }
    /// Inside a worker a shared node is always running; the parent decides how it ends.
    #[getter]
    fn state(&self) -> &'static str {
        "running"
    }
    #[getter]
    fn total(&self) -> Option<u64> {
        self.seg.node_info(self.idx).and_then(|n| n.total)
    }
    /// Counts of this worker process (the parent's snapshot sums every worker).
    #[getter]
    fn done(&self) -> u64 {
        self.own(C_DONE) + self.own(Tally::ItemDone.shm_field())
    }
    #[getter]
    fn failed(&self) -> u64 {
        self.own(C_FAILED)
    }
    #[getter]
    fn skipped(&self) -> u64 {
        self.own(C_SKIPPED) + self.own(Tally::ItemSkipped.shm_field())
    }
    #[getter]
    fn retried(&self) -> u64 {
        self.own(C_RETRIED)
    }
    #[getter]
    fn in_flight(&self) -> i64 {
        self.own(C_IN_FLIGHT) as i64
    }
}
