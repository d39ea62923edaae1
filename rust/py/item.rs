//! `ItemBase`, the native half of `milepost.Item`, and `ItemPath`, what a task's items need of
//! their run to be handled natively.
//!
//! A plain item (`with task.item(name): ...` whose block neither raises nor streams, reports,
//! costs or records metrics) is made, entered and left here: the run clock's readings (the
//! core's own, one at each end), the worker lane (the run's context variable), the current
//! item (see `current`), the count, the lane's and the recent list's record and the history
//! row, with no Python frame and, in a loop, no Python object made at all (the task's last
//! item is made again: see `make_item`). Measured in `benches/test_item.py` and under
//! callgrind (docs/benchmarks.md). Anything else
//! is the subclass's Python (`Item._enter`, `Item._exit_slow`), which keeps every rule: a task
//! whose run has no `ItemPath` (a manual clock, budgets) takes it for every
//! item, and a natively entered item takes it at its end when the block raised or the item
//! holds more than its counts.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt, PyString, PyType};
use pyo3::PyClassInitializer;
use pyo3::PyTraverseError;

use super::convert::{text, Obj};
use super::counting::PyTaskBase;
use super::current::{context_get, in_coroutine, make_current, unset_current, Current, GREENLETS};
use super::node::PyLane;
use super::rows::PyRowBuffer;
use crate::core::handle::RowExtra;
use crate::core::kinds::ItemStatus;
use crate::core::lanes::Lane;
use crate::core::run::ItemEnd;

/// `Item._live` bits the native side reads and sets (the rest are the subclass's, task.py).
const STREAMED: u32 = 1;
const REPORTED: u32 = 4;
const ENDED: u32 = 8;
const COSTED: u32 = 16;
const METRICS: u32 = 64;
/// What a native end cannot settle: the subclass's `_exit_slow` ends such an item.
const SLOW: u32 = STREAMED | REPORTED | COSTED | METRICS;

/// The run's side of native items, made once a run by its context (`Owner.item_path`).
#[pyclass(frozen, name = "ItemPath", module = "milepost._milepost")]
pub struct PyItemPath {
    /// Unix time at the zero of the core's run clock, which times native items.
    wall_origin: f64,
    /// The context variable holding the calling context's worker lane, if the run has lanes.
    lanes: Option<Py<PyAny>>,
    /// Where the run keeps item rows (the store, a `RowSink`), if it keeps them. Without one,
    /// rows go to the buffer last given (`use_buffer`), if any: a pool's worker process.
    sink: Option<Py<PyAny>>,
    /// An ended item keeps its row to be read (`item.row`) though no sink takes it: a pool's
    /// worker process, which sends its chunk's rows back to the parent.
    keep_rows: bool,
    /// Rows waiting from which the sink is told (`pushed`), so that its writer wakes.
    eager: usize,
    /// The sink's row buffer as last asked (asked again once the store closed it), or the one
    /// given (`use_buffer`).
    buffer: Mutex<Option<Py<PyRowBuffer>>>,
}

#[pymethods]
impl PyItemPath {
    #[new]
    #[pyo3(signature = (wall_origin, lanes, sink, eager, keep_rows=false))]
    fn py_new(
        py: Python<'_>, wall_origin: f64, lanes: Option<Py<PyAny>>, sink: Option<Py<PyAny>>, eager: usize,
        keep_rows: bool,
    ) -> PyResult<Self> {
        if !wall_origin.is_finite() {
            return Err(PyTypeError::new_err(format!("ItemPath needs a finite wall_origin, got {wall_origin}")));
        }
        if py.import("sys")?.getattr("modules")?.contains("greenlet")? {
            GREENLETS.store(true, Ordering::Relaxed);
        }
        let keep_rows = keep_rows || sink.is_some();
        Ok(Self { wall_origin, lanes, sink, keep_rows, eager, buffer: Mutex::new(None) })
    }

    /// Where the rows of items ending from now on go, for a path that keeps rows without a
    /// sink (a pool's worker process, which gives each chunk a buffer of its own): `buffer`, or
    /// nowhere. The items ask no Python object for it: a worker without history does nothing
    /// an item, and a path that keeps no rows never looks.
    fn use_buffer(&self, py: Python<'_>, buffer: Option<Py<PyRowBuffer>>) -> PyResult<()> {
        if self.sink.is_some() || !self.keep_rows {
            return Err(PyRuntimeError::new_err("use_buffer is for an ItemPath that keeps rows without a sink"));
        }
        let earlier = std::mem::replace(&mut *self.buffer.lock(), buffer);
        drop(earlier.map(|b| b.into_bound(py)));
        Ok(())
    }
}

impl PyItemPath {
    /// The row buffer an ending item queues its row in: the one asked last, unless the store
    /// closed it (it bound its run, or turned itself off); then the sink's `buffer` again.
    fn buffer<'py>(&self, py: Python<'py>, sink: &Py<PyAny>) -> PyResult<Option<Bound<'py, PyRowBuffer>>> {
        if let Some(buffer) = &*self.buffer.lock() {
            if !buffer.get().is_closed() {
                return Ok(Some(buffer.bind(py).clone()));
            }
        }
        let asked = sink.bind(py).getattr(pyo3::intern!(py, "buffer"))?;
        let buffer = if asked.is_none() { None } else { Some(asked.cast_into::<PyRowBuffer>()?) };
        let earlier = std::mem::replace(&mut *self.buffer.lock(), buffer.as_ref().map(|b| b.clone().unbind()));
        drop(earlier.map(|b| b.into_bound(py)));
        Ok(buffer)
    }

    /// The row buffer an ending item queues its row in: `kept` (the one found for an item
    /// before) while it is open, else as `buffer` finds it for a path with a sink, else the
    /// one given (`use_buffer`) while it is open. A path that keeps no rows (a run without
    /// history) takes no lock here.
    pub(crate) fn rows_buffer<'py>(
        &self, py: Python<'py>, kept: Option<Bound<'py, PyRowBuffer>>,
    ) -> PyResult<Option<Bound<'py, PyRowBuffer>>> {
        if let Some(kept) = kept.filter(|b| !b.get().is_closed()) {
            return Ok(Some(kept));
        }
        Ok(match &self.sink {
            Some(sink) => self.buffer(py, sink)?,
            None if self.keep_rows => {
                self.buffer.lock().as_ref().filter(|b| !b.get().is_closed()).map(|b| b.bind(py).clone())
            }
            None => None,
        })
    }

    /// A plain item of `task` named `name`, started at `t0` on the core's clock, ends at
    /// `now` with `status`: counted, its lane's record made and (given `rows`) its row queued,
    /// in one core call. Returns its start (Unix time), its duration and how many rows wait.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish(
        &self, task: &PyTaskBase, name: &str, lane: Option<&Lane>, rows: Option<&Bound<'_, PyRowBuffer>>,
        status: ItemStatus, t0: f64, now: f64,
    ) -> PyResult<(f64, f64, usize)> {
        let (started, duration) = (self.wall_origin + t0, now - t0);
        let end = ItemEnd { name, status, duration: Some(duration), error: None };
        let extra = RowExtra { started_at: started, metrics: None };
        let rows = rows.map(|b| &b.get().rows);
        let waiting = task.node.get()?.item_finished_at(&end, lane, rows, extra, Some(now))?;
        Ok((started, duration, waiting))
    }

    /// Tells the sink that `waiting` rows wait after an item's end (`queued`: its row went to
    /// a buffer): the store counts a row it could not keep, and wakes its writer for a batch.
    pub(crate) fn pushed(&self, py: Python<'_>, queued: bool, waiting: usize) -> PyResult<()> {
        match &self.sink {
            Some(sink) if !queued || waiting >= self.eager => {
                sink.bind(py).call_method1(pyo3::intern!(py, "pushed"), (waiting,)).map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Whether an ended item keeps its row to be read (`item.row`).
    pub(crate) fn keeps_rows(&self) -> bool {
        self.keep_rows
    }

    /// The context variable holding the calling context's worker lane, if the run has lanes.
    pub(crate) fn lanes(&self) -> Option<&Py<PyAny>> {
        self.lanes.as_ref()
    }
}

/// The item's history row once it ended natively (built as a tuple only when asked), or the
/// tuple its Python end set.
enum Row {
    None,
    Ended { status: ItemStatus, started: f64, duration: f64 },
    Set(Py<PyAny>),
}

/// The native half of `milepost.Item` (see the module's docs).
#[pyclass(subclass, name = "ItemBase", module = "milepost._milepost")]
pub struct PyItemBase {
    task: Py<PyTaskBase>,
    name: Py<PyAny>,
    /// None: the item is entered and left by the subclass's Python.
    path: Option<Py<PyItemPath>>,
    /// Its lane, once entered (`Some(None)`: entered without one).
    lane: Option<Py<PyLane>>,
    /// It was entered (`_lane` is an `AttributeError` until then).
    entered: bool,
    t0: f64,
    live: u32,
    skipped: bool,
    current: Current,
    /// When it was made current (`ORDER`), and whether by a coroutine's `with`.
    pub(crate) order: u64,
    in_coroutine: bool,
    /// An `int` name's digits as `enter` wrote them (from `digits_at`; 20: none), for `exit`.
    digits: [u8; 20],
    digits_at: u8,
    row: Row,
}

/// The subclass items are made of (`milepost.task.Item`) and the context variable of the
/// current item (`milepost.task._current_item`), given once (`ItemBase._use`).
pub(crate) static ITEM_CLASS: PyOnceLock<(Py<PyType>, Py<PyAny>)> = PyOnceLock::new();

/// A new item of `task` named `name`: the subclass's instance, with no `__init__` run.
///
/// The task's last item is made again when nothing but the task holds it any more (its
/// reference count is the task's one) and it was a plain item that ended (it holds nothing in
/// the subclass's slots, which only a stream, a report, a cost, metrics or a budget fill):
/// no object is made or freed for an item of a loop (callgrind: about 1,400 instructions an
/// item of the 4,500 it took). Nothing can tell the two apart: no one else has a reference.
#[allow(unsafe_code)]
pub fn make_item<'py>(task: &Bound<'py, PyTaskBase>, name: &Obj<'py>) -> PyResult<Bound<'py, PyItemBase>> {
    let py = task.py();
    let base = task.get();
    // One lock for all the task keeps (a lock taken and let go is two atomic operations), the
    // spare looked at where it is kept: nothing here runs Python code, and the old values
    // are dropped after.
    let kept = base.kept.lock();
    let path = kept.items.as_ref().map(|p| p.clone_ref(py));
    if let Some(spare) = kept.spare.as_ref().map(|s| s.bind(py)) {
        let alone = super::bound::spare_alone(&kept.bound, spare);
        if let Some(mut item) = spare.try_borrow_mut().ok().filter(|i| alone && i.live == ENDED) {
            // The old values are dropped after the item is whole again: a name's `__del__`
            // may run any code, this very call included.
            let old_name = std::mem::replace(&mut item.name, name.clone().unbind());
            let old_path = std::mem::replace(&mut item.path, path);
            let old_lane = item.lane.take();
            item.entered = false;
            let old_row = std::mem::replace(&mut item.row, Row::None);
            item.t0 = 0.0;
            item.live = 0;
            item.skipped = false;
            let old_current = std::mem::replace(&mut item.current, Current::No);
            item.order = 0;
            item.in_coroutine = false;
            item.digits_at = NO_DIGITS;
            drop(item);
            let spare = spare.clone();
            drop(kept);
            // As `Bound`s: a `Py` dropped here, where PyO3 does not know the thread attached
            // (`fast::item`), would be queued for a later decref.
            drop((old_name.into_bound(py), old_path.map(|p| p.into_bound(py))));
            drop(old_lane.map(|l| l.into_bound(py)));
            if let Current::Token(token) = old_current {
                drop(token.into_bound(py));
            }
            if let Row::Set(row) = old_row {
                drop(row.into_bound(py));
            }
            return Ok(spare);
        }
    }
    drop(kept);
    let item = PyItemBase::fresh(task, name, path);
    let Some((cls, _)) = ITEM_CLASS.get(py) else {
        return Err(PyRuntimeError::new_err("milepost.task.Item was not given to ItemBase._use"));
    };
    // SAFETY: `cls` is a subclass of `ItemBase` (checked by `_use`).
    let made = unsafe {
        pyo3::impl_::pymethods::tp_new_impl::<_, PyItemBase>(py, PyClassInitializer::from(item), cls.as_ptr().cast())
    }?;
    // SAFETY: `tp_new_impl` returns a new reference to an instance of `cls`.
    let made: Bound<'py, PyItemBase> = unsafe { Bound::from_owned_ptr(py, made).cast_into_unchecked() };
    let mut kept = base.kept.lock();
    let earlier = kept.spare.replace(made.clone().unbind());
    // The earlier spare's bound methods go with it, outside the lock (freeing an item drops
    // its name, which may run any code).
    let bound = std::mem::take(&mut kept.bound);
    drop(kept);
    drop((earlier.map(|e| e.into_bound(py)), bound.map(|b| b.map(|b| b.into_bound(py)))));
    Ok(made)
}

/// An item of `task` named `name` as `enter_as` leaves it, for one that a pool chunk's native
/// loop entered with no object (`current::Pending`): started at `t0` in `lane`, made current
/// at `order` as `current` says.
pub(crate) fn entered_item<'py>(
    task: &Bound<'py, PyTaskBase>, name: &Obj<'py>, lane: Option<Bound<'py, PyLane>>, t0: f64, order: u64,
    current: Current,
) -> PyResult<Bound<'py, PyItemBase>> {
    let item = make_item(task, name)?;
    set_entered(&item, lane, t0, order, current);
    Ok(item)
}

/// `digits_at` of an item whose name has no digits kept.
const NO_DIGITS: u8 = 20;

/// `n` in decimal, as `str(n)` writes it, at the end of `buf` (20 bytes hold any `i64`): the
/// loop the formatting machinery would take several times as long over (callgrind). Returns
/// where it begins.
fn decimal_at(n: i64, buf: &mut [u8; 20]) -> usize {
    // Two digits a division, from a table of all 100 pairs.
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let pair = |v: u64| usize::try_from(v % 100).unwrap_or(0) * 2;
    let mut at = buf.len();
    let mut rest = n.unsigned_abs();
    while rest >= 100 {
        let p = pair(rest);
        rest /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
    if rest >= 10 {
        let p = pair(rest);
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + u8::try_from(rest).unwrap_or(0);
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    at
}

/// The digits `decimal_at` wrote from `at` on, as text.
#[allow(unsafe_code)]
fn digits(buf: &[u8; 20], at: usize) -> &str {
    // SAFETY: `decimal_at` writes only ASCII digits and '-' from `at` on.
    unsafe { std::str::from_utf8_unchecked(&buf[at.min(buf.len())..]) }
}

/// An item's name as the core keeps it, handed to `f` (see `NameText`).
fn with_name<R>(name: &Obj<'_>, f: impl FnOnce(&str) -> R) -> PyResult<R> {
    Ok(f(NameText::of(name)?.as_str()))
}

/// An item's name as the core keeps it: a `str` borrowed when it is UTF-8, an `int` formatted
/// without a Python object, anything else as `text` converts it (a float by `str()`, as `Item`
/// names it). Made once for an item's start and its end (`bulk::run_items`).
pub(crate) enum NameText<'a> {
    Borrowed(&'a str),
    Digits([u8; 20], usize),
    Owned(String),
}

impl<'a> NameText<'a> {
    pub(crate) fn of(name: &'a Obj<'_>) -> PyResult<Self> {
        if let Ok(s) = name.cast::<PyString>() {
            return Ok(match s.to_str() {
                Ok(t) => Self::Borrowed(t),
                Err(_) => Self::Owned(s.to_string_lossy().into_owned()),
            });
        }
        if name.is_exact_instance_of::<PyInt>() {
            if let Ok(n) = name.extract::<i64>() {
                let mut buf = [0u8; 20];
                let at = decimal_at(n, &mut buf);
                return Ok(Self::Digits(buf, at));
            }
        }
        if name.is_exact_instance_of::<PyInt>() || name.is_exact_instance_of::<PyFloat>() {
            return Ok(Self::Owned(name.str()?.to_string_lossy().into_owned()));
        }
        Ok(Self::Owned(text(name, "item name")?))
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(t) => t,
            Self::Digits(buf, at) => digits(buf, *at),
            Self::Owned(t) => t,
        }
    }
}

impl PyItemBase {
    /// Its task.
    pub(crate) fn task(&self) -> &Py<PyTaskBase> {
        &self.task
    }

    /// An item of `task` named `name`, not entered yet (`make_item` and `Item(task, name)`).
    fn fresh(task: &Bound<'_, PyTaskBase>, name: &Obj<'_>, path: Option<Py<PyItemPath>>) -> Self {
        Self {
            task: task.clone().unbind(),
            name: name.clone().unbind(),
            path,
            lane: None,
            entered: false,
            t0: 0.0,
            live: 0,
            skipped: false,
            current: Current::No,
            order: 0,
            in_coroutine: false,
            digits: [0; 20],
            digits_at: NO_DIGITS,
            row: Row::None,
        }
    }
}

#[pymethods]
impl PyItemBase {
    /// `Item(task, name)`, as `task.item(name)` makes it.
    #[new]
    fn py_new(task: &Bound<'_, PyTaskBase>, name: &Obj<'_>) -> Self {
        let path = task.get().kept.lock().items.as_ref().map(|p| p.clone_ref(task.py()));
        Self::fresh(task, name, path)
    }

    // An item refers to its task, which keeps its last item (`make_item`): a cycle only the
    // collector can free.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.task)?;
        visit.call(&self.name)?;
        visit.call(self.path.as_ref())?;
        visit.call(self.lane.as_ref())?;
        if let Current::Token(token) = &self.current {
            visit.call(token)?;
        }
        if let Row::Set(row) = &self.row {
            visit.call(row)?;
        }
        Ok(())
    }
    fn __clear__(&mut self) {
        self.path = None;
        self.lane = None;
        self.current = Current::No;
        self.row = Row::None;
    }

    /// A subclass gets entry points of its own for `with` (see `fast`).
    #[classmethod]
    fn __init_subclass__(cls: &Bound<'_, PyType>) -> PyResult<()> {
        super::fast::own_methods(cls)
    }

    /// The class `task.item()` makes (`milepost.task.Item`) and the context variable of the
    /// current item, given once.
    #[staticmethod]
    #[pyo3(name = "_use")]
    fn use_class(cls: &Bound<'_, PyType>, current: &Obj<'_>) -> PyResult<()> {
        if !cls.is_subclass_of::<PyItemBase>()? {
            return Err(PyTypeError::new_err(format!("ItemBase._use needs a subclass of ItemBase, got {cls}")));
        }
        let py = cls.py();
        let given = ITEM_CLASS.get_or_init(py, || (cls.clone().unbind(), current.clone().unbind()));
        if !given.0.bind(py).is(cls) || !given.1.bind(py).is(current) {
            return Err(PyRuntimeError::new_err(format!("ItemBase._use was given {} already, not {cls}", given.0)));
        }
        Ok(())
    }

    /// Makes the item current in the calling context (`milepost.current_item()`).
    #[pyo3(name = "_set_current")]
    fn set_current(slf: &Bound<'_, Self>) -> PyResult<()> {
        let in_coroutine = slf.borrow().in_coroutine;
        let (order, current) = make_current(slf, in_coroutine)?;
        let mut this = slf.borrow_mut();
        (this.order, this.current) = (order, current);
        Ok(())
    }

    /// The item is no longer current (it ends).
    #[pyo3(name = "_leave")]
    fn leave(slf: &Bound<'_, Self>) -> PyResult<()> {
        let current = std::mem::replace(&mut slf.borrow_mut().current, Current::No);
        unset_current(slf, current)
    }

    #[getter(_task)]
    fn get_task(&self, py: Python<'_>) -> Py<PyTaskBase> {
        self.task.clone_ref(py)
    }
    /// The item's name: a number names an item as it does in the pools (`item(3)` is "3").
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let name = self.name.bind(py);
        if name.is_exact_instance_of::<PyInt>() || name.is_exact_instance_of::<PyFloat>() {
            return Ok(name.str()?.into_any());
        }
        Ok(name.clone())
    }
    #[setter]
    fn set_name(&mut self, name: Py<PyAny>) {
        self.name = name;
        self.digits_at = NO_DIGITS;
    }
    /// The lane it was entered in; an `AttributeError` before it was entered.
    #[getter(_lane)]
    fn get_lane(&self, py: Python<'_>) -> PyResult<Option<Py<PyLane>>> {
        if !self.entered {
            return Err(PyAttributeError::new_err("_lane: the item was not entered"));
        }
        Ok(self.lane.as_ref().map(|l| l.clone_ref(py)))
    }
    #[setter(_lane)]
    fn set_lane(&mut self, lane: Option<Py<PyLane>>) {
        self.lane = lane;
        self.entered = true;
    }
    #[getter(_t0)]
    fn get_t0(&self) -> f64 {
        self.t0
    }
    #[setter(_t0)]
    fn set_t0(&mut self, t0: f64) {
        self.t0 = t0;
    }
    #[getter(_live)]
    fn get_live(&self) -> u32 {
        self.live
    }
    #[setter(_live)]
    fn set_live(&mut self, live: u32) {
        self.live = live;
    }
    #[getter(_skipped)]
    fn get_skipped(&self) -> bool {
        self.skipped
    }
    /// The item's history row once it ended, when its run keeps rows: status, start (Unix
    /// time), duration, error text, metrics as JSON (see `ItemRow`).
    #[getter]
    pub(crate) fn row(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(match &self.row {
            Row::None => None,
            Row::Set(row) => Some(row.clone_ref(py)),
            Row::Ended { status, started, duration } => {
                let row = (status.as_str(), *started, *duration, py.None(), py.None());
                Some(row.into_pyobject(py)?.into_any().unbind())
            }
        })
    }
    #[setter]
    fn set_row(&mut self, row: Option<Py<PyAny>>) {
        self.row = row.map_or(Row::None, Row::Set);
    }

    /// Counts the item skipped instead of done when it ends (once it ended, its count is
    /// taken: the item stays as it was counted).
    fn skip(&mut self) {
        if self.live & ENDED == 0 {
            self.skipped = true;
        }
    }

    /// Seconds on the clock the item's start was read on: the core's run clock for an item
    /// entered natively, else the context's.
    #[pyo3(name = "_now")]
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        match &self.path {
            Some(_) => core_now(self.task.bind(py).get()),
            None => self.task.bind(py).getattr(pyo3::intern!(py, "context"))?.call_method0("now")?.extract(),
        }
    }

    /// Unix time of second `t` on that clock.
    #[pyo3(name = "_wall")]
    fn wall(&self, py: Python<'_>, t: f64) -> PyResult<f64> {
        match &self.path {
            Some(path) => Ok(path.get().wall_origin + t),
            None => self.task.bind(py).getattr(pyo3::intern!(py, "context"))?.call_method1("wall", (t,))?.extract(),
        }
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        enter(slf)
    }

    #[pyo3(signature = (exc_type, exc, tb))]
    fn __exit__(slf: &Bound<'_, Self>, exc_type: &Obj<'_>, exc: &Obj<'_>, tb: &Obj<'_>) -> PyResult<()> {
        exit(slf, exc_type, exc, tb)
    }
}

// `enter` and `exit` are also called by `fast`'s own entry points, where PyO3 does not know
// that the thread is attached: a `Py` dropped there would be queued for a later decref, so
// what they drop is a `Bound`.

/// `item.__enter__()`: natively with an item path, else the subclass's `_enter`.
pub fn enter<'py>(slf: &Bound<'py, PyItemBase>) -> PyResult<Bound<'py, PyAny>> {
    // Before any Python runs: the frame read is the one whose `with` enters the item.
    enter_as(slf, in_coroutine(slf.py())?)
}

/// `enter`, told whether the item is entered where other tasks may run before it ends (see
/// `in_coroutine`: a caller entering many items from one frame asks once).
pub fn enter_as<'py>(slf: &Bound<'py, PyItemBase>, in_coroutine: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    // Each borrow of the item is an atomic compare-and-swap (and a shared one an atomic
    // decrement too): what no Python code can run during is done in one exclusive borrow,
    // with what the rest needs taken out of it, so that no borrow is held while a name's
    // `__fspath__` runs.
    let (path, task, name, digits, digits_at) = {
        let mut this = slf.borrow_mut();
        this.in_coroutine = in_coroutine;
        let Some(path) = this.path.as_ref().map(|p| p.bind(py).clone()) else {
            drop(this);
            return slf.call_method0(pyo3::intern!(py, "_enter"));
        };
        let name = this.name.bind(py).clone();
        if name.is_exact_instance_of::<PyInt>() {
            if let Ok(n) = name.extract::<i64>() {
                let mut buf = [0u8; 20];
                let at = decimal_at(n, &mut buf);
                (this.digits, this.digits_at) = (buf, u8::try_from(at).unwrap_or(NO_DIGITS));
            }
        }
        (path, this.task.bind(py).clone(), name, this.digits, this.digits_at)
    };
    let path = path.get();
    let lane = match &path.lanes {
        Some(lanes) => context_get(lanes.bind(py))?,
        None => None,
    };
    // The item starts at the run clock's reading the core took for it.
    let t0 = {
        let task = task.get();
        let lane = lane.as_ref().map(|l| &*l.get().lane);
        let started = |name: &str| task.node.get()?.item_started(name, lane).map_err(PyErr::from);
        if digits_at < NO_DIGITS {
            started(self::digits(&digits, digits_at.into()))?
        } else {
            with_name(&name, started)??
        }
    };
    let (order, current) = make_current(slf, in_coroutine)?;
    set_entered(slf, lane, t0, order, current);
    Ok(slf.clone().into_any())
}

/// Writes into `item` that it was entered at `t0` in `lane` and made current at `order` as
/// `current` says, in one borrow (the lane it had is dropped after).
fn set_entered(item: &Bound<'_, PyItemBase>, lane: Option<Bound<'_, PyLane>>, t0: f64, order: u64, current: Current) {
    let mut this = item.borrow_mut();
    let earlier = std::mem::replace(&mut this.lane, lane.map(Bound::unbind));
    (this.entered, this.t0, this.order, this.current) = (true, t0, order, current);
    drop(this);
    drop(earlier.map(|l| l.into_bound(item.py())));
}

/// `item.__exit__(exc_type, exc, tb)`: a plain item natively, anything else by the subclass's
/// `_exit_slow`.
pub fn exit(slf: &Bound<'_, PyItemBase>, exc_type: &Obj<'_>, exc: &Obj<'_>, tb: &Obj<'_>) -> PyResult<()> {
    let py = slf.py();
    // As in `enter_as`: one exclusive borrow marks it ended and takes out what the end needs
    // (an atomic operation a borrow), one more keeps its row when rows are kept, and none is
    // held while Python code may run (a name's `__fspath__`, the sink).
    let (path, task, name, digits, digits_at, t0, lane, current, skipped) = {
        let mut this = slf.borrow_mut();
        let path = match &this.path {
            Some(path) if exc_type.is_none() && this.live & SLOW == 0 && this.entered => path.bind(py).clone(),
            _ => {
                drop(this);
                slf.call_method1(pyo3::intern!(py, "_exit_slow"), (exc_type, exc, tb))?;
                return Ok(());
            }
        };
        // Ended before any Python code runs on the way out (a name's `__fspath__`, the sink):
        // what it asks of the item then (a stream, a skip) is refused, as on Python's path.
        this.live |= ENDED;
        let current = std::mem::replace(&mut this.current, Current::No);
        let lane = this.lane.as_ref().map(|l| l.bind(py).clone());
        let (task, name) = (this.task.bind(py).clone(), this.name.bind(py).clone());
        (path, task, name, this.digits, this.digits_at, this.t0, lane, current, this.skipped)
    };
    let path = path.get();
    let now = core_now(task.get())?;
    unset_current(slf, current)?;
    let buffer = path.rows_buffer(py, None)?;
    let status = if skipped { ItemStatus::Skipped } else { ItemStatus::Done };
    let lane = lane.as_ref().map(|l| &*l.get().lane);
    let finish = |name: &str| path.finish(task.get(), name, lane, buffer.as_ref(), status, t0, now);
    let (started, duration, waiting) = if digits_at < NO_DIGITS {
        finish(self::digits(&digits, digits_at.into()))?
    } else {
        with_name(&name, finish)??
    };
    if path.keep_rows {
        slf.borrow_mut().row = Row::Ended { status, started, duration };
    }
    path.pushed(py, buffer.is_some(), waiting)
}

/// The clock reading now that the task's node times items by: the run's clock, or in a
/// worker process its own (`Handle::now`).
fn core_now(task: &PyTaskBase) -> PyResult<f64> {
    Ok(task.node.get()?.now())
}

#[cfg(test)]
mod tests {
    use super::{decimal_at, digits};

    #[test]
    fn decimal_writes_what_str_writes() {
        for n in [0, 7, 9, 10, 99, 100, 101, 12_345, -1, -10, -100, -12_345, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            let at = decimal_at(n, &mut buf);
            assert_eq!(digits(&buf, at), n.to_string());
        }
    }
}
