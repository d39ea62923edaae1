//! A pool chunk's newest items for the run's recent list, as one JSON text: `[[name, status,
//! duration, end], ...]` (end in Unix time). The worker encodes them natively as they end and
//! the text crosses to the parent as one string, where one call keeps them all
//! (`Node.record_recent`). A list of 32 tuples a chunk cost the worker about 70,000
//! instructions to build and pickle, and the parent a Python call an item to keep
//! (callgrind: a third of what a chunk of `process_map` cost a worker beyond the executor's).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert::Obj;
use super::item::NameText;
use crate::core::kinds::ItemStatus;

/// The encoder: items pushed oldest first.
#[derive(Default)]
pub(crate) struct RecentText(Vec<u8>);

impl RecentText {
    pub(crate) fn push(&mut self, name: &str, status: ItemStatus, duration: Option<f64>, end: f64) {
        self.0.push(if self.0.is_empty() { b'[' } else { b',' });
        // serde_json writes what JSON needs (escapes; a float's shortest text; null for a
        // float that is not finite); writing into a Vec cannot fail.
        serde_json::to_writer(&mut self.0, &(name, status.as_str(), duration, end)).expect("an item encodes");
    }

    pub(crate) fn text(mut self) -> String {
        if self.0.is_empty() {
            return "[]".to_owned();
        }
        self.0.push(b']');
        String::from_utf8(self.0).expect("serde_json writes UTF-8")
    }
}

/// One item of the text: name, status, duration, end.
pub(crate) type Recent = (String, String, Option<f64>, Option<f64>);

/// The items of a text `RecentText` made; anything else is an error naming what it is.
pub(crate) fn parse(text: &str) -> PyResult<Vec<Recent>> {
    serde_json::from_str(text).map_err(|e| {
        let start: String = text.chars().take(80).collect();
        PyValueError::new_err(format!("not a list of recent items ({e}): {start:?}"))
    })
}

/// `[[name, status, duration, end], ...]` of `items` (name: an item's name as the pool gave
/// it, made text as the native loop makes it; status: "done" or "skipped"): what a chunk whose
/// items ran in Python hands the parent.
#[pyfunction]
pub fn encode_recent(items: Vec<(Obj<'_>, String, Option<f64>, f64)>) -> PyResult<String> {
    let mut out = RecentText::default();
    for (name, status, duration, end) in items {
        out.push(NameText::of(&name)?.as_str(), ItemStatus::parse(&status)?, duration, end);
    }
    Ok(out.text())
}
