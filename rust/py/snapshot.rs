//! `Snapshot`: one consistent view of a run, with its JSON form and its text lines.

use pyo3::prelude::*;

use crate::core::snapshot::Snapshot;
use crate::render::frame::{frame, run_line, FrameOptions};
use crate::render::lines;

#[pyclass(frozen, name = "Snapshot", module = "milepost._milepost")]
pub struct PySnapshot {
    pub(crate) snap: Snapshot,
}

#[pymethods]
impl PySnapshot {
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(Self { snap: Snapshot::from_json(text)? })
    }
    fn json(&self) -> String {
        self.snap.to_json()
    }
    /// The run's tree, lanes and resources as JSON (`{"root", "lanes", "resources"}`, as in
    /// `json()`), without the recent items and failures.
    fn kept_json(&self) -> String {
        self.snap.kept_json()
    }
    fn explicit_counts(&self) -> Vec<(String, &'static str, u64, u64)> {
        self.snap.explicit_counts()
    }
    #[getter]
    fn now(&self) -> f64 {
        self.snap.now
    }
    /// The run's state (its root node's), read without the JSON.
    #[getter]
    fn state(&self) -> &'static str {
        self.snap.root.state.as_str()
    }
    /// The items the run counts failed (its root's), read without the JSON.
    #[getter]
    fn failed(&self) -> u64 {
        self.snap.root.failed
    }
    #[getter]
    fn events_dropped(&self) -> u64 {
        self.snap.events_dropped
    }
    fn run_line(&self) -> String {
        run_line(&self.snap)
    }
    fn node_lines(&self) -> Vec<(usize, String, &'static str, String)> {
        lines::node_lines(&self.snap)
    }
    fn lane_lines(&self, max_lanes: usize) -> Vec<String> {
        lines::lane_lines(&self.snap, max_lanes)
    }
    fn failure_line(&self) -> Option<String> {
        lines::failure_line(&self.snap)
    }
    #[pyo3(signature = (width=100, height=40, max_lanes=8))]
    fn frame(&self, width: usize, height: usize, max_lanes: usize) -> Vec<String> {
        frame(&self.snap, &FrameOptions { width, height, max_lanes, tick: 0 })
    }
}
