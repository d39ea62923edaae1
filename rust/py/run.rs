//! `RunCore`: the run's tree, its snapshot, and the ticker thread (sampling and native drawing).

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::convert::{count, text};
use super::node::{PyLane, PyNode};
use super::snapshot::PySnapshot;
use crate::core::clock::Clock;
use crate::core::node::NodeKind;
use crate::core::run::RunCore;
use crate::render::native::{NativeOptions, Ticker, TickerHandle};

#[pyclass(frozen, name = "RunCore", module = "milepost._milepost")]
pub struct PyRunCore {
    core: Arc<RunCore>,
    ticker: Mutex<Option<Ticker>>,
    /// A clone of the ticker's handle. Callers copy it out and let go of the lock before
    /// they wait on the terminal without the GIL: holding a lock across `detach` would let a
    /// second thread block on it while holding the GIL the first one needs back.
    handle: Mutex<Option<TickerHandle>>,
}

#[pymethods]
impl PyRunCore {
    #[new]
    #[pyo3(signature = (run_id, name, manual_clock=false, started_at_unix=0.0))]
    fn py_new(run_id: &str, name: &Bound<'_, PyAny>, manual_clock: bool, started_at_unix: f64) -> PyResult<Self> {
        let name = text(name, "run name")?;
        if name.is_empty() {
            return Err(crate::core::error::Error::EmptyName { what: "run name" }.into());
        }
        let clock = if manual_clock { Clock::manual() } else { Clock::system() };
        Ok(Self {
            core: Arc::new(RunCore::new(run_id, &name, clock, started_at_unix)),
            ticker: Mutex::new(None),
            handle: Mutex::new(None),
        })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.core.id
    }

    #[getter]
    fn name(&self) -> &str {
        &self.core.name
    }

    #[getter]
    fn root(&self) -> PyNode {
        PyNode { node: self.core.root(), run: Arc::clone(&self.core) }
    }

    /// Adds a `phase` or `step` under `parent`.
    #[pyo3(signature = (parent, kind, name, total=None, unit="it"))]
    fn add_node(
        &self,
        parent: &PyNode,
        kind: &str,
        name: &Bound<'_, PyAny>,
        total: Option<&Bound<'_, PyAny>>,
        unit: &str,
    ) -> PyResult<PyNode> {
        let kind = match kind {
            "phase" => NodeKind::Phase,
            "step" => NodeKind::Step,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "node kind must be 'phase' or 'step', got {kind:?}"
                )))
            }
        };
        let name = text(name, "name")?;
        let total = total.map(|t| count(t, "total")).transpose()?;
        let node = self.core.add_node(parent.node.id, kind, &name, unit, total)?;
        Ok(PyNode { node, run: Arc::clone(&self.core) })
    }

    fn add_lane(&self, name: &Bound<'_, PyAny>) -> PyResult<PyLane> {
        Ok(PyLane { lane: self.core.add_lane(&text(name, "lane name")?) })
    }

    /// Seconds since the run started, on the run's clock.
    fn now(&self) -> f64 {
        self.core.clock.now()
    }

    /// Sets the time of a manual clock (ignored by the system clock).
    fn set_time(&self, now: f64) {
        self.core.clock.set(now);
    }

    /// Records a rate observation for every running node.
    fn sample(&self) {
        self.core.sample(self.core.clock.now());
    }

    /// A consistent snapshot of the whole run.
    fn snapshot(&self, py: Python<'_>) -> PySnapshot {
        let core = Arc::clone(&self.core);
        PySnapshot { snap: py.detach(move || core.snapshot(core.clock.now())) }
    }

    /// Starts the background thread: it samples rates at `hz` and, with `native`, draws the
    /// frame on standard error. A second call replaces nothing and returns False.
    #[pyo3(signature = (hz=10.0, native=false, max_lanes=8, leave=true, stdout=false))]
    fn start_ticker(&self, hz: f64, native: bool, max_lanes: usize, leave: bool, stdout: bool) -> bool {
        let mut slot = self.ticker.lock();
        if slot.is_some() {
            return false;
        }
        let opts = native.then_some(NativeOptions { max_lanes, leave, stdout });
        let ticker = Ticker::start(&self.core, hz, opts);
        *self.handle.lock() = Some(ticker.handle());
        *slot = Some(ticker);
        true
    }

    /// Stops the thread after a final frame; waits for it without holding the GIL.
    fn stop_ticker(&self, py: Python<'_>) {
        self.handle.lock().take();
        let ticker = self.ticker.lock().take();
        if let Some(mut t) = ticker {
            py.detach(move || t.stop());
        }
    }

    /// Prints `text` above the native display; False when no native display took it.
    fn println(&self, py: Python<'_>, text: &str) -> bool {
        let handle = self.handle.lock().clone();
        match handle {
            Some(h) => py.detach(|| h.println(text)),
            None => false,
        }
    }

    /// Shares the run with worker processes through a segment file in `dir`; its path.
    #[pyo3(signature = (dir, stall_after=60.0))]
    fn enable_sharing(&self, py: Python<'_>, dir: &str, stall_after: f64) -> PyResult<String> {
        let core = Arc::clone(&self.core);
        let dir = std::path::PathBuf::from(dir);
        py.detach(move || core.enable_sharing(&dir, stall_after))
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot share the run with workers: {e}")))
    }

    /// This run's segment, as a worker in a forked child uses it.
    fn shared(&self) -> Option<super::shared::PySharedRun> {
        self.core.segment().map(super::shared::PySharedRun::wrap)
    }

    /// Ends the run's counting: every later update raises `RunEndedError` (workers' too).
    fn finish(&self) {
        self.core.finish();
    }

    /// Asks the job to stop taking new items (loops, pools, worker processes).
    fn cancel(&self) {
        self.core.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.core.is_cancelled()
    }

    /// Ends every node still running with `state` (at the end of the run).
    fn end_running(&self, state: &str) -> PyResult<()> {
        let st = crate::core::node::NodeState::parse(state)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("unknown state {state:?}")))?;
        self.core.end_running(st);
        Ok(())
    }

    /// Worker processes about to be stopped (a second Ctrl-C): not deaths.
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python list into an owned Vec
    fn stopping_workers(&self, pids: Vec<u32>) {
        self.core.stopping_workers(&pids);
    }

    /// The stopped workers are gone: their items in flight leave flight uncounted.
    fn stopped_workers(&self) {
        self.core.stopped_workers();
    }

    /// Tells pool `pool`'s workers to stop handing out items (`stop=False`: frees the bit).
    fn stop_pool(&self, pool: usize, stop: bool) {
        self.core.stop_pool(pool, stop);
    }

    /// The state of every phase and step (workers' included), for the run's end state.
    fn node_states(&self) -> Vec<&'static str> {
        self.core.node_states().into_iter().map(crate::core::node::NodeState::as_str).collect()
    }

    /// Removes the segment file.
    fn stop_sharing(&self) {
        self.core.stop_sharing();
    }

    /// `(path, json, pid)` of each event sent by a worker since the last call.
    fn take_worker_events(&self) -> Vec<(Vec<String>, String, u32)> {
        self.core.take_worker_events().into_iter().map(|e| (e.path, e.json, e.pid)).collect()
    }

    /// Clears the native display and stops drawing (`True`) or starts again (`False`).
    fn pause(&self, py: Python<'_>, paused: bool) {
        let handle = self.handle.lock().clone();
        if let Some(h) = handle {
            py.detach(|| if paused { h.pause() } else { h.resume() });
        }
    }
}
