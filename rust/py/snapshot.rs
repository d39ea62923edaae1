//! `Snapshot`: one consistent view of a run, with its JSON form and its text lines.

use pyo3::prelude::*;

use crate::core::snapshot::Snapshot;
use crate::render::frame::{frame, node_stats, run_line, FrameOptions};

#[pyclass(frozen, name = "Snapshot", module = "milepost._milepost")]
pub struct PySnapshot {
    pub(crate) snap: Snapshot,
}

#[pymethods]
impl PySnapshot {
    /// A snapshot read back from its JSON (a `.progress.json` file, a JSON-lines stream).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Snapshot::from_json(text)
            .map(|snap| Self { snap })
            .map_err(|e| crate::py::errors::InvalidValueError::new_err(format!("not a milepost snapshot: {e}")))
    }

    /// The snapshot as JSON text (schema documented in the README).
    fn json(&self) -> String {
        self.snap.to_json()
    }

    /// `(path, kind, done, skipped)` for the run and every phase and step: the node's own
    /// done and skipped counted without an item context (`advance`, `skip`, loops), as they
    /// were at this snapshot. The history keeps them so a resumed run can take them over
    /// (the items counted in an item context it takes from their rows).
    fn explicit_counts(&self) -> Vec<(String, String, u64, u64)> {
        self.snap
            .walk()
            .into_iter()
            .map(|(_, n)| (n.path.clone(), n.kind.to_string(), n.explicit.0, n.explicit.1))
            .collect()
    }

    #[getter]
    fn now(&self) -> f64 {
        self.snap.now
    }

    /// The run's one-line summary.
    fn run_line(&self) -> String {
        run_line(&self.snap)
    }

    /// `(depth, name, state, stats text)` for every phase and step, depth-first.
    fn node_lines(&self) -> Vec<(usize, String, String, String)> {
        self.snap
            .walk()
            .into_iter()
            .skip(1)
            .map(|(d, n)| (d, crate::core::text::sanitize(&n.name), n.state.to_string(), node_stats(n)))
            .collect()
    }

    /// The native renderer's frame for a `width` x `height` terminal, colours included
    /// unless disabled (`NO_COLOR`).
    #[pyo3(signature = (width=100, height=40, max_lanes=8))]
    fn frame(&self, width: usize, height: usize, max_lanes: usize) -> Vec<String> {
        frame(&self.snap, &FrameOptions { width, height, max_lanes, tick: 0 })
    }
}
