//! milepost's native core: the progress model (`core`), the terminal renderer (`render`) and,
//! with the `python` feature, the `PyO3` bindings (`py`).

pub mod core;
pub mod render;
#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _milepost(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}
