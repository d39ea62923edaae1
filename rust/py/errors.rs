//! Maps the core's error enum to Python exceptions, in one place. The classes are defined in
//! `milepost/errors.py` so that they can subclass both `MilepostError` and the standard
//! exception of the same meaning.

use pyo3::PyErr;

use crate::core::error::Error;

pyo3::import_exception!(milepost.errors, InvalidValueError);
pyo3::import_exception!(milepost.errors, Cancelled);
pyo3::import_exception!(milepost.errors, RunEndedError);

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownNode { .. } => pyo3::exceptions::PyKeyError::new_err(e.to_string()),
            Error::RunEnded { .. } => RunEndedError::new_err(e.to_string()),
            _ => InvalidValueError::new_err(e.to_string()),
        }
    }
}
