//! The core's error enum as Python exceptions, in one place (classes: `milepost/errors.py`).

use crate::core::error::Error;

pyo3::import_exception!(milepost.errors, InvalidValueError);
pyo3::import_exception!(milepost.errors, Cancelled);
pyo3::import_exception!(milepost.errors, RunEndedError);
pyo3::import_exception!(milepost.errors, SharingError);

impl From<Error> for pyo3::PyErr {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::UnknownNode { .. } => pyo3::exceptions::PyKeyError::new_err(message),
            Error::RunEnded { .. } => RunEndedError::new_err(message),
            Error::Cancelled => Cancelled::new_err(message),
            Error::Sharing(_) => SharingError::new_err(message),
            _ => InvalidValueError::new_err(message),
        }
    }
}
