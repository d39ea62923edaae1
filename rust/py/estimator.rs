//! `Estimator`: the core's rate/ETA window on its own, for replaying traces (benchmarks) and
//! for callers that keep their own counts.

use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::core::eta::RateWindow;

#[pyclass(frozen, name = "Estimator", module = "milepost._milepost")]
pub struct PyEstimator {
    window: Mutex<RateWindow>,
}

#[pymethods]
impl PyEstimator {
    #[new]
    fn py_new() -> Self {
        Self { window: Mutex::new(RateWindow::default()) }
    }
    fn observe(&self, now: f64, count: u64) {
        self.window.lock().observe(now, count);
    }
    /// `(rate, eta, eta_low, eta_high)`, `None` where unknown.
    #[pyo3(signature = (now, count, total=None))]
    fn estimate(
        &self, now: f64, count: u64, total: Option<u64>,
    ) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
        let e = self.window.lock().estimate(now, count, total);
        (e.rate, e.eta, e.eta_low, e.eta_high)
    }
    fn __len__(&self) -> usize {
        self.window.lock().len()
    }
}
