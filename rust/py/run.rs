//! `RunCore`: the run's tree, its sampling and snapshot, the ticker thread (sampling and
//! native drawing) and the resource sampling thread. Long calls release the GIL.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::convert::{count, text, Obj};
use super::node::{PyLane, PyNode};
use super::shared::PySharedRun;
use super::snapshot::PySnapshot;
use crate::core::clock::Clock;
use crate::core::kinds::{NodeKind, NodeState};
use crate::core::resources::{ResourceOptions, ResourceSampler};
use crate::core::run::RunCore;
use crate::render::native::{NativeOptions, TickerSlot};

#[pyclass(frozen, name = "RunCore", module = "milepost._milepost")]
pub struct PyRunCore {
    core: Arc<RunCore>,
    ticker: TickerSlot,
    resources: Mutex<Option<ResourceSampler>>,
}

#[pymethods]
impl PyRunCore {
    #[new]
    #[pyo3(signature = (run_id, name, manual_clock=false, started_at_unix=0.0))]
    fn py_new(run_id: &str, name: &Obj<'_>, manual_clock: bool, started_at_unix: f64) -> PyResult<Self> {
        let clock = if manual_clock { Clock::manual() } else { Clock::system() };
        let core = RunCore::try_new(run_id, &text(name, "run name")?, clock, started_at_unix)?;
        Ok(Self { core: Arc::new(core), ticker: TickerSlot::default(), resources: Mutex::new(None) })
    }
    #[pyo3(signature = (parent, kind, name, total=None, unit="it"))]
    fn add_node(
        &self, parent: &PyNode, kind: &str, name: &Obj<'_>, total: Option<&Obj<'_>>, unit: &str,
    ) -> PyResult<PyNode> {
        let (kind, name) = (NodeKind::parse_child(kind)?, text(name, "name")?);
        let total = total.map(|t| count(t, "total")).transpose()?;
        Ok(PyNode { handle: self.core.add_child(&parent.handle, kind, &name, unit, total)? })
    }
    fn add_lane(&self, name: &Obj<'_>) -> PyResult<PyLane> {
        Ok(PyLane { lane: self.core.add_lane(&text(name, "lane name")?) })
    }
    /// Takes in what happened since the last sample (see `RunCore::sample`): before a
    /// snapshot that is shown, and a few times a second from the ticker.
    fn sample(&self, py: Python<'_>) {
        py.detach(|| self.core.sample(self.core.clock.now()));
    }
    /// The run now, as of the last sample; reading it changes nothing.
    fn snapshot(&self, py: Python<'_>) -> PySnapshot {
        PySnapshot { snap: py.detach(|| self.core.snapshot(self.core.clock.now())) }
    }
    #[pyo3(signature = (hz=10.0, native=false, max_lanes=8, leave=true, stdout=false))]
    fn start_ticker(&self, hz: f64, native: bool, max_lanes: usize, leave: bool, stdout: bool) -> bool {
        self.ticker.start(&self.core, hz, native.then_some(NativeOptions { max_lanes, leave, stdout }))
    }
    fn stop_ticker(&self, py: Python<'_>) {
        if let Some(mut ticker) = self.ticker.take() {
            py.detach(move || ticker.stop());
        }
    }
    /// Samples the run's processes and the free space of `dirs` now, and every `interval`
    /// seconds once `spawn_resources` starts the sampling thread (once; false if already
    /// started).
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python list into an owned Vec
    fn start_resources(&self, py: Python<'_>, interval: f64, disk_warn: f64, dirs: Vec<String>) -> PyResult<bool> {
        let options = ResourceOptions::new(interval, disk_warn, dirs.iter().map(std::path::PathBuf::from).collect())?;
        py.detach(|| {
            let mut slot = self.resources.lock();
            if slot.is_some() {
                return Ok(false);
            }
            *slot = Some(ResourceSampler::start(&self.core, &options));
            Ok(true)
        })
    }
    /// Starts the resource sampling thread (a run that lived a moment; see `start_resources`).
    fn spawn_resources(&self, py: Python<'_>) {
        py.detach(|| {
            if let Some(sampler) = self.resources.lock().as_mut() {
                sampler.spawn();
            }
        });
    }
    /// Takes a last sample and stops the resource thread, if it was started.
    fn stop_resources(&self, py: Python<'_>) {
        if let Some(mut sampler) = self.resources.lock().take() {
            py.detach(move || sampler.stop());
        }
    }
    /// Warnings of the resource sampling (low disk space, sampling stopped) not taken yet.
    fn take_resource_warnings(&self) -> Vec<String> {
        self.core.resources.take_warnings()
    }
    fn println(&self, py: Python<'_>, text: &str) -> bool {
        self.ticker.handle().is_some_and(|h| py.detach(|| h.println(text)))
    }
    fn pause(&self, py: Python<'_>, paused: bool) {
        if let Some(h) = self.ticker.handle() {
            py.detach(|| if paused { h.pause() } else { h.resume() });
        }
    }
    #[pyo3(signature = (dir, stall_after=60.0))]
    fn enable_sharing(&self, py: Python<'_>, dir: &str, stall_after: f64) -> PyResult<String> {
        let path = py.detach(|| self.core.enable_sharing(std::path::Path::new(dir), stall_after))?;
        Ok(path.to_string_lossy().into_owned())
    }
    fn shared(&self) -> Option<PySharedRun> {
        self.core.segment().map(|seg| PySharedRun { seg })
    }
    fn end_running(&self, state: &str) -> PyResult<()> {
        self.core.end_running(NodeState::parse(state)?);
        Ok(())
    }
    fn node_states(&self) -> Vec<&'static str> {
        self.core.node_states().into_iter().map(NodeState::as_str).collect()
    }
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python list into an owned Vec
    fn stopping_workers(&self, pids: Vec<u32>) {
        self.core.stopping_workers(&pids);
    }
    /// `(path, json, pid)` of each event sent by a worker that sampling took in.
    fn take_worker_events(&self) -> Vec<(Vec<String>, String, u32)> {
        self.core.take_worker_events().into_iter().map(|e| (e.path, e.json, e.pid)).collect()
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
        PyNode { handle: self.core.root_handle() }
    }
    #[getter]
    fn cancelled(&self) -> bool {
        self.core.is_cancelled()
    }
    #[getter]
    fn events_dropped(&self) -> u64 {
        self.core.events_dropped()
    }
    fn note_events_dropped(&self, total: u64) {
        self.core.note_events_dropped(total);
    }
    fn now(&self) -> f64 {
        self.core.clock.now()
    }
    fn set_time(&self, now: f64) {
        self.core.clock.set(now);
    }
    fn stop_sharing(&self) {
        self.core.stop_sharing();
    }
    fn finish(&self) {
        self.core.finish();
    }
    fn cancel(&self) {
        self.core.cancel();
    }
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python list into an owned Vec
    fn workers_left(&self, pids: Vec<u32>) -> Option<bool> {
        self.core.workers_left(&pids)
    }
    fn stopped_workers(&self) {
        self.core.stopped_workers();
    }
    fn stop_pool(&self, pool: usize, stop: bool) {
        self.core.stop_pool(pool, stop);
    }
}
