//! A pool chunk's newest items for the run's recent list, in one `bytes`: the worker encodes
//! them natively as they end, the bytes cross to the parent with the chunk's results, and one
//! call keeps them all (`Node.record_recent`).
//!
//! Each item is its status (a byte), its duration and its end (Unix time; each an `f64`,
//! little-endian, the duration NaN when there is none), its name's length in bytes (a `u32`,
//! little-endian) and its name (UTF-8, clipped as the recent list clips it). The parent
//! reads every chunk's items while the workers keep both cores busy: as JSON (`[[name,
//! status, duration, end], ...]`), reading one chunk's 32 items cost it about 80,000
//! instructions (callgrind), nearly all in parsing the floats back, and writing them cost the
//! worker about 1,500 an item; copied as bytes, a few hundred each way.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::Obj;
use super::item::NameText;
use crate::core::kinds::ItemStatus;
use crate::core::limits::MAX_NAME_CHARS;
use crate::core::text::clip;

/// Bytes of an item before its name: status, duration, end, the name's length.
const HEAD: usize = 1 + 8 + 8 + 4;

/// A status as the bytes encode it: its place in `ItemStatus::ALL`.
fn code(status: ItemStatus) -> u8 {
    let at = ItemStatus::ALL.iter().position(|s| *s == status).expect("every status is in ALL");
    u8::try_from(at).expect("four statuses")
}

/// The encoder: items pushed oldest first.
#[derive(Default)]
pub(crate) struct RecentItems(Vec<u8>);

impl RecentItems {
    pub(crate) fn push(&mut self, name: &str, status: ItemStatus, duration: Option<f64>, end: f64) {
        // The recent list keeps a name clipped to MAX_NAME_CHARS characters: a name that has
        // no more bytes than that is never clipped, and crosses as it is.
        let name =
            if name.len() <= MAX_NAME_CHARS { Cow::Borrowed(name) } else { Cow::Owned(clip(name, MAX_NAME_CHARS)) };
        // A clipped name is at most MAX_NAME_CHARS characters of at most 4 bytes, and a '…'.
        let len = u32::try_from(name.len()).expect("a clipped name is short");
        self.0.reserve(HEAD + name.len());
        self.0.push(code(status));
        self.0.extend_from_slice(&duration.unwrap_or(f64::NAN).to_le_bytes());
        self.0.extend_from_slice(&end.to_le_bytes());
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(name.as_bytes());
    }

    pub(crate) fn into_bytes(self, py: Python<'_>) -> Bound<'_, PyBytes> {
        PyBytes::new(py, &self.0)
    }
}

/// One item of the bytes: name, status, duration, end.
pub(crate) type Recent<'a> = (&'a str, ItemStatus, Option<f64>, f64);

/// The items of bytes `RecentItems` made, oldest first; anything else is an error saying
/// where it stops being such items.
pub(crate) fn parse(data: &[u8]) -> PyResult<Vec<Recent<'_>>> {
    let bad = |at: usize, what: &str| PyValueError::new_err(format!("not a chunk's recent items: {what} at byte {at}"));
    let mut items = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let head = data.get(at..at + HEAD).ok_or_else(|| bad(at, "an item cut short"))?;
        let status = *ItemStatus::ALL.get(usize::from(head[0])).ok_or_else(|| bad(at, "an unknown status"))?;
        let float = |k: usize| f64::from_le_bytes(head[k..k + 8].try_into().expect("8 bytes"));
        let (duration, end) = (float(1), float(9));
        let len = u32::from_le_bytes(head[17..21].try_into().expect("4 bytes"));
        let start = at + HEAD;
        let stop = usize::try_from(len).ok().and_then(|n| start.checked_add(n)).filter(|&s| s <= data.len());
        let stop = stop.ok_or_else(|| bad(at, "a name cut short"))?;
        let name = std::str::from_utf8(&data[start..stop]).map_err(|_| bad(start, "a name that is not UTF-8"))?;
        // A duration that is not a time (NaN: none) is none, as a JSON null was.
        items.push((name, status, Some(duration).filter(|d| d.is_finite()), end));
        at = stop;
    }
    Ok(items)
}

/// The bytes of `items` (name: an item's name as the pool gave it, made text as the native
/// loop makes it; status: "done" or "skipped"; duration; end, Unix time): what a chunk whose
/// items ran in Python hands the parent.
#[pyfunction]
pub fn encode_recent<'py>(
    py: Python<'py>, items: Vec<(Obj<'py>, String, Option<f64>, f64)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = RecentItems::default();
    for (name, status, duration, end) in items {
        out.push(NameText::of(&name)?.as_str(), ItemStatus::parse(&status)?, duration, end);
    }
    Ok(out.into_bytes(py))
}
