//! The current item (`milepost.current_item()`): how an item is made current where it is
//! entered, and undone at its end, and how a pool chunk's items are current without an object
//! made for each (`Pending`).

use std::cell::{Cell, RefCell};
#[cfg(not(windows))]
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use super::counting::PyTaskBase;
use super::item::{entered_item, PyItemBase, ITEM_CLASS};
use super::node::PyLane;

/// How the item was made current (see `ENTERED`).
pub(crate) enum Current {
    No,
    /// Through the context variable: its token.
    Token(Py<PyAny>),
    /// On this thread's `ENTERED`.
    Entered,
}

/// Greenlets were imported by the time a run began: their switches share a thread, so items
/// are made current through the context variable alone (each greenlet has its own context).
pub(crate) static GREENLETS: AtomicBool = AtomicBool::new(false);

/// The order items were made current in, over all threads: of this thread's innermost item
/// and the context variable's, the later one is the innermost (see `current_item`).
static ORDER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The items made current in this thread outside coroutines and event loops, innermost
    /// last.
    ///
    /// `milepost.current_item()` is the item entered in the calling context. A block entered
    /// by a function that is not a coroutine, in a thread running no event loop, cannot await:
    /// nothing runs on this thread before it ends but what it calls (greenlets aside), so the
    /// innermost item entered so is the calling context's. A push and a pop, where a context
    /// variable costs a new context mapping and a token an item (callgrind: about 2,000
    /// instructions of the 7,000 an item took). An item entered where other tasks may run
    /// before it ends (see `in_coroutine`) is set in the context variable as before.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
    /// The last `Pending::id` given in this thread.
    static PENDING_IDS: Cell<u64> = const { Cell::new(0) };
    /// The code of the last frame that entered an item, and whether it is a coroutine's.
    static LAST_CODE: RefCell<Option<(Py<PyAny>, bool)>> = const { RefCell::new(None) };
}

/// `co_flags` of a coroutine, an old-style (iterable) coroutine and an async generator.
const CO_ASYNC: i64 = 0x80 | 0x100 | 0x200;

/// `asyncio.events._get_running_loop` (C: a look-up in the thread's state), and the key of the
/// thread state's dict where it looks, on the Pythons that keep it there (see
/// `never_ran_a_loop`).
static RUNNING_LOOP: PyOnceLock<(Py<PyAny>, Option<Py<PyString>>)> = PyOnceLock::new();

/// Whether the item is entered where other tasks may run on this thread before it ends: then
/// it is made current through the context variable. That is when the Python frame calling
/// now (the one whose `with` enters the item) is a coroutine's or an async generator's (a
/// `with` in an `async def`, trio's included), when an asyncio event loop runs in this thread
/// (a `with` reached through a helper such as `ExitStack.enter_context`), when there is no
/// Python frame, or when greenlets switch this thread.
#[allow(unsafe_code)]
pub(crate) fn in_coroutine(py: Python<'_>) -> PyResult<bool> {
    if GREENLETS.load(Ordering::Relaxed) || in_coroutine_frame(py)? {
        return Ok(true);
    }
    let (running, key) = RUNNING_LOOP.get_or_try_init(py, || -> PyResult<(Py<PyAny>, Option<Py<PyString>>)> {
        let running = py.import("asyncio.events")?.getattr("_get_running_loop")?;
        // asyncio's C module keeps a thread's running loop in the thread state's dict under
        // this key, from 3.10 to 3.12 (a later one keeps it elsewhere: asked every time).
        let version = (py.version_info().major, py.version_info().minor);
        let in_dict = ((3, 10)..(3, 13)).contains(&version)
            && running.get_type().name()?.to_str()? == "builtin_function_or_method";
        let key = in_dict.then(|| PyString::intern(py, "__asyncio_running_event_loop__").unbind());
        Ok((running.unbind(), key))
    })?;
    if key.as_ref().is_some_and(never_ran_a_loop) {
        return Ok(false);
    }
    // SAFETY: a live callable; a new reference or NULL with an exception set.
    let got = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyObject_CallNoArgs(running.as_ptr())) }?;
    Ok(!got.is_none())
}

/// Whether no asyncio loop was ever set running in this thread: the thread state's dict has
/// no `key` (asyncio never takes it out). Two look-ups, where asking asyncio is a call, its
/// look-ups and none of its caching when no loop was found (callgrind: about 250 instructions).
#[allow(unsafe_code)]
fn never_ran_a_loop(key: &Py<PyString>) -> bool {
    // SAFETY: the thread is attached; a borrowed dict or NULL (no dict yet: nothing in it).
    let dict = unsafe { ffi::PyThreadState_GetDict() };
    if dict.is_null() {
        return true;
    }
    // SAFETY: `dict` is a live dict and `key` a live string; a borrowed value or NULL (with an
    // exception set only on an error, which is cleared: then asyncio is asked).
    let value = unsafe { ffi::PyDict_GetItemWithError(dict, key.as_ptr()) };
    if !value.is_null() {
        return false;
    }
    // SAFETY: as above.
    unsafe {
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return false;
        }
    }
    true
}

/// Whether the calling Python frame is a coroutine's or an async generator's (true without
/// one).
#[allow(unsafe_code)]
fn in_coroutine_frame(py: Python<'_>) -> PyResult<bool> {
    // SAFETY: the thread is attached; a borrowed frame or NULL.
    let frame = unsafe { ffi::PyEval_GetFrame() };
    if frame.is_null() {
        return Ok(true);
    }
    // SAFETY: `frame` is live (it is running); a new reference to its code.
    let code = unsafe { Bound::from_owned_ptr(py, ffi::PyFrame_GetCode(frame).cast()) };
    let known = LAST_CODE.with(|c| c.borrow().as_ref().filter(|(last, _)| last.bind(py).is(&code)).map(|(_, a)| *a));
    if let Some(is_async) = known {
        return Ok(is_async);
    }
    let flags: i64 = code.getattr(pyo3::intern!(py, "co_flags"))?.extract()?;
    let is_async = flags & CO_ASYNC != 0;
    // The code is kept (not its address): another code at the same address cannot be taken for it.
    let earlier = LAST_CODE.with(|c| c.borrow_mut().replace((code.unbind(), is_async)));
    drop(earlier.map(|(code, _)| code.into_bound(py)));
    Ok(is_async)
}

/// An entry of this thread's `ENTERED`.
enum Entered {
    /// An item made current.
    Item(Py<PyAny>),
    /// An item entered without its object (see `Pending`).
    Pending(Pending),
}

/// An item of a pool chunk's native loop (`run_items`), entered with no object made for it:
/// its object is made only when asked for (`current_item()`, which the block may call), or at
/// an end the native loop does not settle itself (the block raised). An item a block never
/// asks for costs no borrow, no reference count of its own and no lock.
pub(crate) struct Pending {
    /// Tells this entry apart from any other in the thread's `ENTERED`.
    id: u64,
    task: Py<PyTaskBase>,
    name: Py<PyAny>,
    lane: Option<Py<PyLane>>,
    t0: f64,
    order: u64,
    /// Its object, once made.
    made: Option<Py<PyItemBase>>,
}

impl Pending {
    /// An object made for it now, as entered at `t0`, current as `current` says.
    pub(crate) fn make<'py>(&self, py: Python<'py>, current: Current) -> PyResult<Bound<'py, PyItemBase>> {
        let lane = self.lane.as_ref().map(|l| l.bind(py).clone());
        entered_item(self.task.bind(py), self.name.bind(py), lane, self.t0, self.order, current)
    }

    /// Whether `current_item()` made its object: that object's end is the item's.
    pub(crate) fn made<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyItemBase>> {
        self.made.as_ref().map(|m| m.bind(py).clone())
    }

    /// Drops what it holds as `Bound`s (see the note above `enter` in `item`).
    pub(crate) fn drop_in(self, py: Python<'_>) {
        drop((self.task.into_bound(py), self.name.into_bound(py)));
        drop((self.lane.map(|l| l.into_bound(py)), self.made.map(|m| m.into_bound(py))));
    }
}

/// Makes an item of `task` named `name`, started at `t0` in `lane`, current in this thread
/// with no object for it (see `Pending`). Returns its id for `take_pending`.
pub(crate) fn push_pending(
    task: &Bound<'_, PyTaskBase>, name: &Bound<'_, PyAny>, lane: Option<&Bound<'_, PyLane>>, t0: f64,
) -> u64 {
    let id = PENDING_IDS.with(|ids| {
        ids.set(ids.get() + 1);
        ids.get()
    });
    // The order of the latest item made current anywhere, not a new one: any item made
    // current after this one gets a later order, and of two with the same, the thread's own
    // wins (`current_item`). A load, where taking a new order is an atomic operation.
    let order = ORDER.load(Ordering::Relaxed);
    let (task, name, lane) = (task.clone().unbind(), name.clone().unbind(), lane.map(|l| l.clone().unbind()));
    let pending = Pending { id, task, name, lane, t0, order, made: None };
    ENTERED.with(|s| s.borrow_mut().push(Entered::Pending(pending)));
    id
}

/// Takes the item `push_pending` made current out of this thread's `ENTERED` (it is no
/// longer current), its object with it if `current_item()` made one.
pub(crate) fn take_pending(id: u64) -> Option<Pending> {
    ENTERED.with(|s| {
        let mut s = s.borrow_mut();
        let at = s.iter().rposition(|e| matches!(e, Entered::Pending(p) if p.id == id))?;
        match s.remove(at) {
            Entered::Pending(p) => Some(p),
            Entered::Item(_) => unreachable!("the position found holds a pending item"),
        }
    })
}

/// The object of pending item `id`, made now if it was not yet (see `Pending`).
fn made_pending(py: Python<'_>, id: u64) -> PyResult<Option<Py<PyAny>>> {
    let found = ENTERED.with(|s| {
        s.borrow().iter().rev().find_map(|e| match e {
            Entered::Pending(p) if p.id == id => {
                let lane = p.lane.as_ref().map(|l| l.bind(py).clone());
                Some((p.task.bind(py).clone(), p.name.bind(py).clone(), lane, p.t0, p.order))
            }
            _ => None,
        })
    });
    let Some((task, name, lane, t0, order)) = found else { return Ok(None) };
    // Made with no borrow of `ENTERED` held: making it may drop an old name, whose `__del__`
    // may run any code, this very function's included.
    let item = entered_item(&task, &name, lane, t0, order, Current::Entered)?;
    let kept = ENTERED.with(|s| {
        let mut s = s.borrow_mut();
        let p = s.iter_mut().rev().find_map(|e| match e {
            Entered::Pending(p) if p.id == id => Some(p),
            _ => None,
        })?;
        // Made meanwhile (see above): that one stays the item's object.
        Some(p.made.get_or_insert_with(|| item.clone().unbind()).clone_ref(py))
    });
    Ok(kept.map(Py::into_any))
}

/// The item entered in the calling context (`milepost.current_item()`), or None: of the
/// innermost item this thread entered outside a coroutine and the context variable's (an
/// asyncio task's, or one a thread was handed with a copied context), the one entered last.
#[pyfunction]
pub fn current_item(py: Python<'_>) -> PyResult<Py<PyAny>> {
    /// This thread's innermost entry: an item, or a pending one whose object is made only if
    /// it is the answer.
    enum Top {
        Item(Py<PyAny>),
        Pending { id: u64, order: u64 },
    }
    let top = ENTERED.with(|s| {
        s.borrow().last().map(|e| match e {
            Entered::Item(i) => Top::Item(i.clone_ref(py)),
            Entered::Pending(p) => match &p.made {
                Some(made) => Top::Item(made.clone_ref(py).into_any()),
                None => Top::Pending { id: p.id, order: p.order },
            },
        })
    });
    let set = match ITEM_CLASS.get(py) {
        Some((_, var)) => context_value(var.bind(py))?,
        None => None,
    };
    let order = |item: &Bound<'_, PyAny>| item.cast::<PyItemBase>().map_or(0, |i| i.borrow().order);
    let top_order = match &top {
        Some(Top::Item(item)) => order(item.bind(py)),
        Some(Top::Pending { order, .. }) => *order,
        None => 0,
    };
    if let Some(set) = set.filter(|set| top.is_none() || order(set) > top_order) {
        return Ok(set.unbind());
    }
    Ok(match top {
        None => py.None(),
        Some(Top::Item(item)) => item,
        Some(Top::Pending { id, .. }) => made_pending(py, id)?.unwrap_or_else(|| py.None()),
    })
}

/// Makes `item` current in the calling context: on this thread's `ENTERED`, or through the
/// context variable when a coroutine entered it (see `ENTERED`). Returns when it was made
/// current (`ORDER`), for the caller to keep in the item with how.
pub(crate) fn make_current(item: &Bound<'_, PyItemBase>, in_coroutine: bool) -> PyResult<(u64, Current)> {
    let py = item.py();
    let order = ORDER.fetch_add(1, Ordering::Relaxed) + 1;
    if !in_coroutine {
        ENTERED.with(|s| s.borrow_mut().push(Entered::Item(item.clone().into_any().unbind())));
        return Ok((order, Current::Entered));
    }
    let Some((_, var)) = ITEM_CLASS.get(py) else {
        return Err(PyRuntimeError::new_err("milepost.task.Item was not given to ItemBase._use"));
    };
    Ok((order, Current::Token(context_set(var.bind(py), item.as_any())?.unbind())))
}

/// Undoes `make_current` (an item left out of order is taken from where it is).
pub(crate) fn unset_current(item: &Bound<'_, PyItemBase>, current: Current) -> PyResult<()> {
    let py = item.py();
    match current {
        Current::No => Ok(()),
        Current::Token(token) => {
            let token = token.into_bound(py);
            match ITEM_CLASS.get(py) {
                Some((_, var)) => context_reset(var.bind(py), &token),
                None => Ok(()),
            }
        }
        Current::Entered => {
            let taken = ENTERED.with(|s| {
                let mut s = s.borrow_mut();
                let at = s.iter().rposition(|e| matches!(e, Entered::Item(i) if i.bind(py).is(item)))?;
                Some(s.remove(at))
            });
            // After the borrow: no code reading `ENTERED` runs in it.
            if let Some(Entered::Item(taken)) = taken {
                drop(taken.into_bound(py));
            }
            Ok(())
        }
    }
}

// `CPython`'s context variables: the item's lane and `current_item()`. Their C API is not in
// the limited API, but every `CPython` exports it; where an extension links against the stable
// ABI's library (Windows), the variables' methods are called instead.
#[cfg(not(windows))]
#[allow(unsafe_code)]
mod ctx {
    use pyo3::ffi::PyObject;
    extern "C" {
        pub fn PyContextVar_Get(var: *mut PyObject, default: *mut PyObject, value: *mut *mut PyObject) -> i32;
        pub fn PyContextVar_Set(var: *mut PyObject, value: *mut PyObject) -> *mut PyObject;
        pub fn PyContextVar_Reset(var: *mut PyObject, token: *mut PyObject) -> i32;
    }
}

/// The lane bound in the calling context (`var.get()`; its default is None).
pub(crate) fn context_get<'py>(var: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyLane>>> {
    Ok(match context_value(var)? {
        Some(v) => Some(v.cast_into::<PyLane>()?),
        None => None,
    })
}

/// The value set for `var` in the calling context, None when unset or None.
#[allow(unsafe_code)]
pub(crate) fn context_value<'py>(var: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = var.py();
    #[cfg(not(windows))]
    let value = {
        let mut out = null_mut();
        // SAFETY: `var` is a live ContextVar; `out` gets a new reference or NULL.
        if unsafe { ctx::PyContextVar_Get(var.as_ptr(), null_mut(), &raw mut out) } < 0 {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: as above.
        unsafe { Bound::from_owned_ptr_or_opt(py, out) }
    };
    #[cfg(windows)]
    let value = Some(var.call_method0(pyo3::intern!(py, "get"))?);
    Ok(value.filter(|v| !v.is_none()))
}

/// `var.set(value)`: its token.
#[allow(unsafe_code)]
fn context_set<'py>(var: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    #[cfg(not(windows))]
    // SAFETY: `var` is a live ContextVar, `value` a live object; a new reference or NULL.
    return unsafe { Bound::from_owned_ptr_or_err(var.py(), ctx::PyContextVar_Set(var.as_ptr(), value.as_ptr())) };
    #[cfg(windows)]
    return var.call_method1(pyo3::intern!(var.py(), "set"), (value,));
}

/// `var.reset(token)`.
#[allow(unsafe_code)]
fn context_reset(var: &Bound<'_, PyAny>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    #[cfg(not(windows))]
    {
        // SAFETY: `var` is a live ContextVar, `token` a live object (checked by CPython).
        if unsafe { ctx::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) } < 0 {
            return Err(PyErr::fetch(var.py()));
        }
        Ok(())
    }
    #[cfg(windows)]
    var.call_method1(pyo3::intern!(var.py(), "reset"), (token,)).map(drop)
}
