//! milepost's native core: the progress model (`core`), the terminal renderer (`render`) and,
//! with the `python` feature, the `PyO3` bindings (`py`).

pub mod core;
#[cfg(feature = "python")]
mod py;
pub mod render;

/// `milepost._milepost`: the bindings' classes and functions, and the core's limits (see
/// `core::limits::EXPORTED`), which the Python package reads here instead of keeping copies.
#[cfg(feature = "python")]
#[pyo3::pymodule]
mod _milepost {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py::{
        PyBarBase, PyEstimator, PyItemBase, PyItemPath, PyLane, PyNode, PyRowBuffer, PyRunCore, PySharedRun,
        PySnapshot, PyTakenRows, PyTaskBase, PyTracker,
    };

    #[pymodule_export]
    use crate::py::{
        after_fork_in_child, format_amounts, format_bytes, format_cost_outlook, format_count, format_cpu,
        format_duration, format_eta, format_metric, format_rate,
    };

    #[pymodule_export]
    use crate::py::{current_item, is_money, item_key, process_now, resource_options, sanitize, set_colors};

    #[pymodule_export]
    use crate::py::{encode_recent, extend_rows, run_items};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("Tracker", crate::py::tracker_type(m.py())?)?;
        for (name, value) in crate::core::limits::EXPORTED {
            m.add(name, value)?;
        }
        Ok(())
    }
}
