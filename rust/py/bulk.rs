//! A pool chunk's history rows in bulk: in the worker process each item's row is encoded as
//! the item ends, natively (into the chunk's `RowBuffer`); the parent queues the chunk's rows
//! for the store in one call (`extend_rows`), so that it makes no call per item.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use super::convert::Obj;
use super::counting::PyTaskBase;
use super::current::{context_get, in_coroutine, push_pending, take_pending, Current};
use super::item::{enter_as, exit, make_item, NameText, PyItemBase, PyItemPath};
use super::node::PyLane;
use super::recent::RecentItems;
use super::rows::PyRowBuffer;
use super::shared::PySharedRun;
use crate::core::handle::Handle;
use crate::core::kinds::ItemStatus;
use crate::core::rows::{Shared, StatusCounts};

/// Queues a chunk of `n` rows (`done`, `failed` and `skipped` of them) another buffer of run
/// `run_id` encoded (`RowBuffer.take()` in a worker), with the phase and start its rows share
/// when it was encoded short (joined to the chunk before when that is a pool's with the same:
/// `RowBuffer::extend_encoded`); returns how many rows are waiting. Text that is not such
/// a chunk of this buffer's run is a `ValueError`.
#[pyfunction]
#[pyo3(signature = (buffer, run_id, rows, n, done, failed, skipped, phase=None, t0=None))]
#[allow(clippy::too_many_arguments)]
pub fn extend_rows(
    buffer: &PyRowBuffer, run_id: &str, rows: &str, n: usize, done: usize, failed: usize, skipped: usize,
    phase: Option<String>, t0: Option<f64>,
) -> PyResult<usize> {
    let counts = StatusCounts { done, failed, skipped };
    let shared = match (phase, t0) {
        (Some(phase), Some(t0)) => Some(Shared { phase, t0 }),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("a short chunk's rows need both their phase and their t0")),
    };
    buffer.rows.extend_encoded(rows, n, counts, run_id, shared).map_err(PyValueError::new_err)
}

/// What `run_items` did with a chunk: each item's result in chunk order (for an item whose
/// `with` raised, the exception as raised), the positions of those that raised with whether
/// each ran (it has a row), how many items it started before the pool was told to stop (the
/// rest did not start), and of the items from position `tail_from` on, those that ran and did
/// not fail, for the run's recent list (`recent::RecentItems`).
type Ran<'py> = (Bound<'py, PyList>, Vec<(usize, bool)>, usize, Bound<'py, PyBytes>);

/// A pool chunk's items in a worker process, one native loop: for each item, unless the run
/// was cancelled or pool `pool` told to stop, `with task.item(name): func(items[k])`, with the
/// very entry points a Python `with` calls (`item::enter`, `item::exit`), minus the
/// interpreter's work around them, or where the run's items are handled natively, what those
/// do without an object made for the item (see `Plain`). An `Exception` raised by the block
/// (or by the item's own entry or exit, as in a `with` inside a `try`) is kept as the item's
/// result; anything else (`SystemExit`, `KeyboardInterrupt`) propagates, the item ended as a
/// `with` would end it.
///
/// An item's name is `names[k]`; without `names`, its default name: an exact `str`, `int` or
/// `float` item names itself (an item keeps a number as its name and gives it as text, as
/// `str()` does: no text is made for it here), anything else is `make_name(item, indices[k])`.
#[pyfunction]
#[pyo3(signature = (task, func, items, names, shared, pool, tail_from, make_name=None, indices=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_items<'py>(
    task: &Bound<'py, PyTaskBase>, func: &Obj<'py>, items: &Bound<'py, PyList>, names: Option<&Bound<'py, PyList>>,
    shared: &PySharedRun, pool: usize, tail_from: usize, make_name: Option<&Obj<'py>>, indices: Option<&Obj<'py>>,
) -> PyResult<Ran<'py>> {
    let py = task.py();
    if let Some(names) = names {
        if items.len() != names.len() {
            return Err(PyValueError::new_err(format!("{} items for {} names", items.len(), names.len())));
        }
    } else if make_name.is_none() || indices.is_none() {
        return Err(PyValueError::new_err("run_items needs names, or make_name and the items' indices"));
    }
    let name_of = |k: usize, item: &Bound<'py, PyAny>| -> PyResult<Bound<'py, PyAny>> {
        if let Some(names) = names {
            return names.get_item(k);
        }
        if item.is_exact_instance_of::<PyString>()
            || item.is_exact_instance_of::<PyInt>()
            || item.is_exact_instance_of::<PyFloat>()
        {
            return Ok(item.clone());
        }
        let (Some(make_name), Some(indices)) = (make_name, indices) else { unreachable!("checked above") };
        make_name.call1((item, indices.get_item(k)?))
    };
    let values = PyList::empty(py);
    let mut recent = RecentItems::default();
    let mut call = OneArg::new(func);
    let mut raised = Vec::new();
    // Asked once a chunk, not once an item: every item of it is entered from this same call,
    // which no coroutine made and in which no event loop can start before the next item.
    let in_coroutine = in_coroutine(py)?;
    let path = task.get().kept.lock().items.as_ref().map(|p| p.clone_ref(py));
    let mut plain = match path {
        Some(path) if !in_coroutine => Some(Plain::new(task, path.into_bound(py))?),
        _ => None,
    };
    for (k, value) in items.iter().enumerate() {
        if shared.stopping(pool) {
            return Ok((values, raised, k, recent.into_bytes(py)));
        }
        // A name that cannot be made (a path whose text raises) is that item's error: it does
        // not run, and the chunk's other items do, as when it is made in the parent.
        let name = match name_of(k, &value) {
            Ok(name) => name,
            Err(e) if e.is_instance_of::<PyException>(py) => {
                raised.push((k, false));
                values.append(e.into_value(py))?;
                if let Some(plain) = &mut plain {
                    plain.last_end = None; // the time making the name took is nobody's
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let ended = if let Some(plain) = &mut plain {
            plain.run(&mut call, &value, &name)
        } else {
            let it = make_item(task, &name)?;
            let outcome = enter_as(&it, in_coroutine).and_then(|_| end(&it, call.call(&value)));
            Ended { outcome, item: Some(it), plain: None }
        };
        if k >= tail_from {
            // What a display shows: an item whose row or name cannot be read again (no memory
            // left, a path whose text fails the second time) is left out of it, and the
            // chunk's results and rows go back all the same.
            let kept = ended.kept(py).ok().flatten().filter(|(status, ..)| *status != ItemStatus::Failed);
            if let Some((status, started, duration)) = kept {
                if let Ok(text) = NameText::of(&name) {
                    recent.push(text.as_str(), status, duration, started + duration.unwrap_or(0.0));
                }
            }
        }
        // Only for an item that raised: it ran if it has a row (an item the run refused did not).
        let ran = ended.outcome.is_err() && ended.row(py)?.is_some();
        match ended.outcome {
            Ok(got) => values.append(got)?,
            Err(e) if e.is_instance_of::<PyException>(py) => {
                raised.push((k, ran));
                values.append(e.into_value(py))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((values, raised, items.len(), recent.into_bytes(py)))
}

fn none(py: Python<'_>) -> Bound<'_, PyAny> {
    py.None().into_bound(py)
}

/// What became of an item of a chunk: its block's result (or the exception it, or the item's
/// entry or exit, raised), the item's object if one was made (its row is there), else the
/// status, start (Unix time) and duration of an item ended natively with its row kept (see
/// `Plain`).
struct Ended<'py> {
    outcome: PyResult<Bound<'py, PyAny>>,
    item: Option<Bound<'py, PyItemBase>>,
    plain: Option<(ItemStatus, f64, f64)>,
}

impl Ended<'_> {
    /// The status, start (Unix time) and duration its row keeps, if it keeps one.
    fn kept(&self, py: Python<'_>) -> PyResult<Option<(ItemStatus, f64, Option<f64>)>> {
        if let (None, Some((status, started, duration))) = (&self.item, self.plain) {
            return Ok(Some((status, started, Some(duration))));
        }
        let Some(row) = self.row(py)? else { return Ok(None) };
        let row = row.bind(py);
        let status: String = row.get_item(0)?.extract()?;
        let (started, duration): (f64, Option<f64>) = (row.get_item(1)?.extract()?, row.get_item(2)?.extract()?);
        Ok(Some((ItemStatus::parse(&status)?, started, duration)))
    }

    /// The item's history row, if it keeps one.
    fn row(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match (&self.item, self.plain) {
            (Some(it), _) => it.borrow().row(py),
            (None, Some((status, started, duration))) => {
                let row = (status.as_str(), started, duration, py.None(), py.None());
                Ok(Some(row.into_pyobject(py)?.into_any().unbind()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Ends entered item `it` as a `with` does, after its block gave `result`.
fn end<'py>(it: &Bound<'py, PyItemBase>, result: PyResult<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    let py = it.py();
    match result {
        Ok(got) => exit(it, &none(py), &none(py), &none(py)).map(|()| got),
        Err(e) => {
            let (kind, err, tb) = (e.get_type(py).into_any(), e.value(py).clone().into_any(), e.traceback(py));
            exit(it, &kind, &err, &tb.map_or_else(|| none(py), Bound::into_any))?;
            Err(e)
        }
    }
}

/// A chunk's items where its run handles items natively (an `ItemPath`), each entered and
/// ended as `item::enter_as` and `item::exit` would, but with no object made for it unless the
/// block asks for it (`current_item()`: see `current::Pending`) or raises; and one clock
/// reading between two items, the end of the one and the start of the next (an item's time
/// runs from the end of the one before it in the chunk). In a worker, an item that the block
/// does not ask for costs no borrow, no lock and no Python object (`perf`: about half of what
/// an item of `process_map` cost a worker).
struct Plain<'py> {
    task: Bound<'py, PyTaskBase>,
    path: Bound<'py, PyItemPath>,
    /// The calling context's worker lane (none in a worker process: the worker is its lane).
    lane: Option<Bound<'py, PyLane>>,
    /// The row buffer found for the items before (see `PyItemPath::rows_buffer`).
    rows: Option<Bound<'py, PyRowBuffer>>,
    /// The clock reading the item before ended at, if it ended here (see above).
    last_end: Option<f64>,
}

impl<'py> Plain<'py> {
    fn new(task: &Bound<'py, PyTaskBase>, path: Bound<'py, PyItemPath>) -> PyResult<Self> {
        let lane = match path.get().lanes() {
            Some(lanes) => context_get(lanes.bind(task.py()))?,
            None => None,
        };
        Ok(Self { task: task.clone(), path, lane, rows: None, last_end: None })
    }

    /// `with task.item(name): func(value)`.
    fn run(&mut self, call: &mut OneArg<'py>, value: &Obj<'py>, name: &Obj<'py>) -> Ended<'py> {
        let py = self.task.py();
        // Taken first: after an item that did not start, the next one reads the clock.
        let last_end = self.last_end.take();
        let refused = |e: PyErr| Ended { outcome: Err(e), item: None, plain: None };
        let text = match NameText::of(name) {
            Ok(text) => text,
            Err(e) => return refused(e),
        };
        let (task, lane) = (self.task.get(), self.lane.as_ref().map(|l| &*l.get().lane));
        let started = task.node.get().and_then(|node| Ok(node.item_started_at(text.as_str(), lane, last_end)?));
        let t0 = match started {
            Ok(t0) => t0,
            Err(e) => return refused(e),
        };
        let id = push_pending(&self.task, name, self.lane.as_ref(), t0);
        let result = call.call(value);
        let now = task.node.get().map(Handle::now);
        let Some(pending) = take_pending(id) else {
            unreachable!("only this loop takes its pending item out of the thread's ENTERED")
        };
        // Made by `current_item()` or now for an end the core does not settle (the block
        // raised): the item's object ends as `exit` ends it.
        let item = match (pending.made(py), &result) {
            (Some(item), _) => Some(Ok(item)),
            (None, Err(_)) => Some(pending.make(py, Current::No)),
            (None, Ok(_)) => None,
        };
        pending.drop_in(py);
        let status = match item {
            Some(Ok(item)) => return Ended { outcome: end(&item, result), item: Some(item), plain: None },
            // No object could be made for an item that raised (no memory left): it started,
            // so it ends here all the same, failed, and what its block raised stays its
            // result (a Ctrl-C stays a Ctrl-C).
            Some(Err(_)) => ItemStatus::Failed,
            None => ItemStatus::Done,
        };
        let now = match now {
            Ok(now) => now,
            Err(e) => return refused(e),
        };
        let path = self.path.get();
        let rows = match path.rows_buffer(py, self.rows.take()) {
            Ok(rows) => rows,
            Err(e) => return refused(e),
        };
        let ended = path.finish(task, text.as_str(), lane, rows.as_ref(), status, t0, now);
        self.rows = rows;
        let (started, duration, waiting) = match ended {
            Ok(ended) => ended,
            Err(e) => return refused(e),
        };
        if status == ItemStatus::Done {
            self.last_end = Some(now);
        }
        // Counted and its row kept: a sink that fails now is the item's error, as in `exit`.
        let plain = path.keeps_rows().then_some((status, started, duration));
        Ended { outcome: path.pushed(py, self.rows.is_some(), waiting).and(result), item: None, plain }
    }
}

/// `func(arg)` for each item of a chunk. Where the callee never sees the tuple of its
/// arguments itself (`tuple_stays_hidden`), through one tuple made once and given the next item
/// while nobody else holds it: `PyObject_Call` with a tuple is the executor's own `fn(*args)`,
/// and a Python function takes the tuple's items as they are, where the C API's call with a
/// list of arguments counted them through a `va_list` first and, for a `functools.partial` with
/// keywords (it has no vector call), made and freed a tuple an item (callgrind: about 200
/// instructions of an item of a pool's worker). Any other callee gets the C API's call: one
/// that sees the tuple may keep it, hash it (Python 3.14 keeps a tuple's hash in it) or leave
/// it untracked by the collector, none of which a tuple whose item changes under it survives.
struct OneArg<'py> {
    func: Obj<'py>,
    reuse: bool,
    /// The last call's tuple.
    tuple: Option<Bound<'py, PyTuple>>,
}

impl<'py> OneArg<'py> {
    fn new(func: &Obj<'py>) -> Self {
        Self { func: func.clone(), reuse: tuple_stays_hidden(func), tuple: None }
    }

    #[allow(unsafe_code)]
    fn call(&mut self, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let func = &self.func;
        if !self.reuse {
            return call_one(func, arg);
        }
        let py = func.py();
        let tuple = match self.tuple.take() {
            // SAFETY: a tuple only this call holds (a callee that kept it holds it too) may
            // have its item replaced: `PyTuple_SetItem` takes the new reference and lets go of
            // the old item; it fails only for a tuple someone else holds.
            Some(t) if unsafe { ffi::Py_REFCNT(t.as_ptr()) } == 1 => {
                if unsafe { ffi::PyTuple_SetItem(t.as_ptr(), 0, arg.clone().into_ptr()) } != 0 {
                    return Err(PyErr::fetch(py));
                }
                t
            }
            _ => PyTuple::new(py, [arg])?,
        };
        // SAFETY: `func` and `tuple` are live objects, the tuple of the call's one argument; a
        // new reference, or NULL with an exception set.
        let result = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyObject_Call(func.as_ptr(), tuple.as_ptr(), std::ptr::null_mut()))
        };
        self.tuple = Some(tuple);
        result
    }
}

/// Whether `func`, called with a tuple, hands nothing the tuple itself: a Python function takes
/// its items (a `*args` parameter is a new tuple), and a `functools.partial` of one passes the
/// tuple on to it (or makes a new one, its own arguments first). Subclasses and anything else
/// may keep the tuple, or hash it (`functools.lru_cache` makes it its key).
fn tuple_stays_hidden(func: &Obj<'_>) -> bool {
    static TYPES: PyOnceLock<(Py<PyType>, Py<PyType>)> = PyOnceLock::new();
    let py = func.py();
    let types = TYPES.get_or_try_init(py, || -> PyResult<_> {
        let function = py.import("types")?.getattr("FunctionType")?.cast_into::<PyType>()?.unbind();
        let partial = py.import("functools")?.getattr("partial")?.cast_into::<PyType>()?.unbind();
        Ok((function, partial))
    });
    let Ok((function, partial)) = types else { return false };
    let function = function.bind(py).as_any();
    func.is_exact_instance(function)
        || (func.is_exact_instance(partial.bind(py).as_any())
            && func.getattr(pyo3::intern!(py, "func")).is_ok_and(|f| f.is_exact_instance(function)))
}

/// `func(arg)` without a tuple for its argument: the C API's call with a list of arguments
/// hands them to `vectorcall` from the stack where the callable has one.
#[allow(unsafe_code)]
fn call_one<'py>(func: &Obj<'py>, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let end: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `func` and `arg` are live objects, and the list ends with NULL; a new reference,
    // or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(func.py(), ffi::PyObject_CallFunctionObjArgs(func.as_ptr(), arg.as_ptr(), end))
    }
}
