//! The hottest calls' own `CPython` entry points: `task.advance()`, `task.skip()` and
//! `bar.update(n)`, as users write them.
//!
//! `CPython`'s specialized call of a C method (`PRECALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS` in
//! 3.11, `CALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS` after) applies only when the object's type
//! is exactly the method's class: `TaskBase.advance` called on a `Task` falls back to the
//! generic call every time. So every subclass of the native bases gets method descriptors of
//! its own class (`own_methods`, from `__init_subclass__`), and their C function is the one
//! here: a plain call (no argument, or one int in range, no keyword) counts straight into the
//! node, with none of `PyO3`'s argument parsing or frame set-up; anything else (keywords,
//! another type, a count refused) is handed to the base's `PyO3` method, which parses, counts
//! and raises exactly as it does when called directly.
//!
//! Measured with callgrind (`CPython` 3.11, instructions a loop step, the empty loop 194): a
//! `ph.advance()` step took 681 with the node's bound method stored on the task, 694 with the
//! base's `PyO3` method alone (the generic call, and `PyO3`'s argument parsing), 385 with this;
//! a C method call, `s.discard(1)`, takes 424.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyTuple, PyType};

use super::counting::{PyBarBase, PyTaskBase};
use super::item::PyItemBase;
use super::tracker::PyTracker;
use crate::core::limits::MAX_COUNT;
use crate::core::node::Tally;

/// A method definition for `PyDescr_NewMethod`, which keeps a pointer to it for good.
struct Def(UnsafeCell<ffi::PyMethodDef>);

// SAFETY: CPython only reads a method definition, and nothing here writes one once made.
#[allow(unsafe_code)]
unsafe impl Sync for Def {}

impl Def {
    const fn new(name: &'static CStr, meth: ffi::PyCFunctionFastWithKeywords, doc: &'static CStr) -> Self {
        Self(UnsafeCell::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: meth },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr(),
        }))
    }
}

/// One fast method: its name, its definition, the native base whose `PyO3` method does the rest.
struct Fast {
    name: &'static str,
    def: Def,
    base: fn(Python<'_>) -> Bound<'_, PyType>,
    /// The base's `PyO3` method (`TaskBase.advance`...), looked up once.
    slow: PyOnceLock<Py<PyAny>>,
}

static ADVANCE: Fast = Fast {
    name: "advance",
    def: Def::new(c"advance", advance, c"advance($self, /, n=None)\n--\n\nCounts n (default 1) items done."),
    base: |py| py.get_type::<PyTaskBase>(),
    slow: PyOnceLock::new(),
};
static SKIP: Fast = Fast {
    name: "skip",
    def: Def::new(c"skip", skip, c"skip($self, /, n=None)\n--\n\nCounts n (default 1) skipped items."),
    base: |py| py.get_type::<PyTaskBase>(),
    slow: PyOnceLock::new(),
};
static UPDATE: Fast = Fast {
    name: "update",
    def: Def::new(
        c"update",
        update,
        c"update($self, /, n=None)\n--\n\nCounts n (default 1) items done: a float counts its whole part, 0 nothing.",
    ),
    base: |py| py.get_type::<PyBarBase>(),
    slow: PyOnceLock::new(),
};
static ITEM: Fast = Fast {
    name: "item",
    def: Def::new(
        c"item",
        item,
        c"item($self, /, name)\n--\n\nContext manager for one item: records its duration and worker lane; an exception marks it failed with the error text and is re-raised.",
    ),
    base: |py| py.get_type::<PyTaskBase>(),
    slow: PyOnceLock::new(),
};
static ENTER: Fast = Fast {
    name: "__enter__",
    def: Def::new(
        c"__enter__",
        item_enter,
        c"__enter__($self, /)\n--\n\nThe item starts: timed, on the calling context's lane, current.",
    ),
    base: |py| py.get_type::<PyItemBase>(),
    slow: PyOnceLock::new(),
};
static EXIT: Fast = Fast {
    name: "__exit__",
    def: Def::new(
        c"__exit__",
        item_exit,
        c"__exit__($self, exc_type, exc, tb, /)\n--\n\nThe item ends: done, skipped, or failed with the exception's text.",
    ),
    base: |py| py.get_type::<PyItemBase>(),
    slow: PyOnceLock::new(),
};
static METHODS: [&Fast; 6] = [&ADVANCE, &SKIP, &UPDATE, &ITEM, &ENTER, &EXIT];

/// Gives `cls` (a subclass of `TaskBase` or `BarBase`) method descriptors of its own for the
/// fast methods it inherits from the native base (through its parents' own descriptors or
/// not); one it overrides in Python stays as it is.
#[allow(unsafe_code)]
pub fn own_methods(cls: &Bound<'_, PyType>) -> PyResult<()> {
    let py = cls.py();
    let descriptor = py.import("types")?.getattr("MethodDescriptorType")?;
    for method in METHODS {
        let base = (method.base)(py);
        if !cls.is_subclass(&base)? {
            continue;
        }
        // A method descriptor read from a class is the descriptor itself.
        let found = cls.getattr(method.name)?;
        if !found.is_instance(&descriptor)?
            || !found.getattr("__objclass__")?.cast_into::<PyType>()?.is_subclass(&base)?
        {
            continue;
        }
        // SAFETY: `cls` is a live type; the definition is static and never written.
        let own =
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(cls.as_type_ptr(), method.def.0.get())) }?;
        // An item's `with` methods are bound through `bound::wrap` (one bound method a loop).
        let own = match method.name {
            "__enter__" => super::bound::wrap(cls, &own, super::bound::ENTER)?,
            "__exit__" => super::bound::wrap(cls, &own, super::bound::EXIT)?,
            _ => own,
        };
        cls.setattr(method.name, own)?;
    }
    Ok(())
}

/// How many items a plain call counts: 1 with no argument, else its one `int` argument when
/// it is in range; `None` for anything else (the `PyO3` method parses it and says what is wrong).
#[allow(unsafe_code)]
#[inline]
unsafe fn plain_amount(
    py: Python<'_>, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> Option<u64> {
    if !kwnames.is_null() {
        return None;
    }
    match nargs {
        0 => Some(1),
        1 => {
            // SAFETY: CPython passes `nargs` live arguments.
            let arg = unsafe { *args };
            if !unsafe { Borrowed::from_ptr(py, arg) }.is_exact_instance_of::<PyInt>() {
                return None;
            }
            // Sets no exception for an int: one too big for 64 bits only sets `overflow`.
            let mut overflow = 0;
            // SAFETY: `arg` is a live int.
            let n = unsafe { ffi::PyLong_AsLongLongAndOverflow(arg, &raw mut overflow) };
            u64::try_from(n).ok().filter(|n| overflow == 0 && *n <= MAX_COUNT)
        }
        _ => None,
    }
}

/// The plain call counted (`count` said so), or the base's method's answer.
#[allow(unsafe_code)]
#[inline]
unsafe fn call(
    method: &Fast, slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject, count: impl FnOnce(Python<'_>, u64) -> bool,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the arguments are CPython's, as it passes them to a METH_FASTCALL method.
    let counted = catch_unwind(AssertUnwindSafe(|| {
        unsafe { plain_amount(py, args, nargs, kwnames) }.is_some_and(|n| count(py, n))
    }));
    if matches!(counted, Ok(true)) {
        // SAFETY: None is a live object; the caller takes the new reference.
        return unsafe { ffi::Py_NewRef(ffi::Py_None()) };
    }
    // SAFETY: as above.
    unsafe { slow(method, slf, args, nargs, kwnames) }
}

/// `method` as its base's `PyO3` method, with the call's arguments as they came.
#[allow(unsafe_code)]
#[cold]
#[inline(never)]
unsafe fn slow(
    method: &Fast, slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let result = catch_unwind(AssertUnwindSafe(|| -> PyResult<Bound<'_, PyAny>> {
            let base = method.slow.get_or_try_init(py, || (method.base)(py).getattr(method.name).map(Bound::unbind))?;
            // SAFETY: CPython passes `nargs` positional arguments, then one per keyword name.
            let (names, all) = unsafe {
                let names = Borrowed::from_ptr_or_opt(py, kwnames).map(|k| k.cast_unchecked::<PyTuple>());
                let total = nargs as usize + names.map_or(0, |k| k.len());
                (names, if total == 0 { &[][..] } else { std::slice::from_raw_parts(args, total) })
            };
            // SAFETY: `slf` and the arguments are live for the call.
            let borrowed = |p: &*mut ffi::PyObject| unsafe { Borrowed::from_ptr(py, *p) };
            let positional: Vec<_> = std::iter::once(&slf).chain(&all[..nargs as usize]).map(borrowed).collect();
            let positional = PyTuple::new(py, positional)?;
            let keywords = match names {
                Some(names) => {
                    let dict = PyDict::new(py);
                    for (name, value) in names.iter().zip(&all[nargs as usize..]) {
                        dict.set_item(name, borrowed(value))?;
                    }
                    Some(dict)
                }
                None => None,
            };
            base.bind(py).call(positional, keywords.as_ref())
        }));
        match result {
            Ok(Ok(value)) => value.into_ptr(),
            Ok(Err(e)) => {
                e.restore(py);
                null_mut()
            }
            Err(_) => {
                PyRuntimeError::new_err(format!("{}() panicked", method.name)).restore(py);
                null_mut()
            }
        }
    })
}

/// `task.advance(n=1)`.
#[allow(unsafe_code)]
unsafe extern "C" fn advance(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython's arguments; `slf` is an instance of the descriptor's class, a subclass
    // of `TaskBase` (CPython checks it before calling a method descriptor's function).
    unsafe {
        call(&ADVANCE, slf, args, nargs, kwnames, |py, n| {
            let task = Borrowed::from_ptr(py, slf).cast_unchecked::<PyTaskBase>();
            task.get().node.get().is_ok_and(|node| node.tally(Tally::Done, n).is_ok())
        })
    }
}

/// `task.skip(n=1)`.
#[allow(unsafe_code)]
unsafe extern "C" fn skip(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `advance`.
    unsafe {
        call(&SKIP, slf, args, nargs, kwnames, |py, n| {
            let task = Borrowed::from_ptr(py, slf).cast_unchecked::<PyTaskBase>();
            task.get().node.get().is_ok_and(|node| node.tally(Tally::Skipped, n).is_ok())
        })
    }
}

/// `bar.update(n=1)` (0, a float, a bar with no node: the `PyO3` method's).
#[allow(unsafe_code)]
unsafe extern "C" fn update(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `advance`, for `BarBase`.
    unsafe {
        call(&UPDATE, slf, args, nargs, kwnames, |py, n| {
            let bar = Borrowed::from_ptr(py, slf).cast_unchecked::<PyBarBase>();
            n > 0 && bar.get().node.get().is_ok_and(|node| node.tally(Tally::Done, n).is_ok())
        })
    }
}

/// `task.item(name)`: the item made here (see `item::make_item`); a keyword or another
/// number of arguments is the `PyO3` method's to parse and refuse.
#[allow(unsafe_code)]
unsafe extern "C" fn item(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if !kwnames.is_null() || nargs != 1 {
        // SAFETY: CPython's arguments, as they came.
        return unsafe { slow(&ITEM, slf, args, nargs, kwnames) };
    }
    // SAFETY: CPython calls a method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slf` is an instance of a subclass of `TaskBase` (as in `advance`); CPython
        // passes one live argument.
        let (task, name) =
            unsafe { (Borrowed::from_ptr(py, slf).cast_unchecked::<PyTaskBase>(), Borrowed::from_ptr(py, *args)) };
        super::item::make_item(&task, &name)
    }));
    match made {
        Ok(Ok(item)) => item.into_ptr(),
        Ok(Err(e)) => {
            e.restore(py);
            null_mut()
        }
        Err(_) => {
            PyRuntimeError::new_err("item() panicked").restore(py);
            null_mut()
        }
    }
}

/// The answer of an item's entry point: its value, or its error raised.
#[allow(unsafe_code)]
fn answer(py: Python<'_>, what: &str, made: std::thread::Result<PyResult<Bound<'_, PyAny>>>) -> *mut ffi::PyObject {
    match made {
        Ok(Ok(value)) => value.into_ptr(),
        Ok(Err(e)) => {
            e.restore(py);
            null_mut()
        }
        Err(_) => {
            PyRuntimeError::new_err(format!("{what} panicked")).restore(py);
            null_mut()
        }
    }
}

/// `with item:` entering it (`CPython` calls `__enter__` with no argument).
#[allow(unsafe_code)]
unsafe extern "C" fn item_enter(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if !kwnames.is_null() || nargs != 0 {
        // SAFETY: CPython's arguments, as they came.
        return unsafe { slow(&ENTER, slf, args, nargs, kwnames) };
    }
    // SAFETY: CPython calls a method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slf` is an instance of a subclass of `ItemBase` (the descriptor's class).
        let item = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<PyItemBase>() };
        super::item::enter(&item)
    }));
    answer(py, "__enter__", made)
}

/// `with item:` leaving it (`CPython` calls `__exit__` with three positional arguments).
#[allow(unsafe_code)]
unsafe extern "C" fn item_exit(
    slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if !kwnames.is_null() || nargs != 3 {
        // SAFETY: CPython's arguments, as they came.
        return unsafe { slow(&EXIT, slf, args, nargs, kwnames) };
    }
    // SAFETY: CPython calls a method with the thread attached.
    let py = unsafe { Python::assume_attached() };
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slf` is an instance of a subclass of `ItemBase`; CPython passes 3 live arguments.
        let (item, exc_type, exc, tb) = unsafe {
            (
                Borrowed::from_ptr(py, slf).cast_unchecked::<PyItemBase>(),
                Borrowed::from_ptr(py, *args),
                Borrowed::from_ptr(py, *args.add(1)),
                Borrowed::from_ptr(py, *args.add(2)),
            )
        };
        super::item::exit(&item, &exc_type, &exc, &tb).map(|()| py.None().into_bound(py))
    }));
    answer(py, "__exit__", made)
}

/// `Tracker`: `TrackerBase` with `step` as its `tp_iternext`, called by `CPython`'s `for` with
/// nothing in between (`PyO3`'s own slot would add its frame set-up to every item).
#[allow(unsafe_code)]
pub fn tracker_type(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    let mut slots = [
        ffi::PyType_Slot { slot: ffi::Py_tp_iternext, pfunc: tracker_next as *mut std::ffi::c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_doc, pfunc: TRACKER_DOC.as_ptr().cast_mut().cast() },
        ffi::PyType_Slot { slot: 0, pfunc: null_mut() },
    ];
    let mut spec = ffi::PyType_Spec {
        // Static: before 3.12 the type keeps a pointer to its name.
        name: c"milepost._milepost.Tracker".as_ptr(),
        basicsize: 0, // the base's: no field of its own
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_IMMUTABLETYPE) as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    };
    let bases = PyTuple::new(py, [py.get_type::<PyTracker>()])?;
    // SAFETY: the spec and its slots are valid for the call (CPython copies the slots); the
    // base is a live type that allows subtypes.
    let made =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpecWithBases(&raw mut spec, bases.as_ptr())) }?;
    Ok(made.cast_into::<PyType>()?)
}

const TRACKER_DOC: &CStr = c"The iterator returned by track(): counts an item done when the next is asked for.";

/// `next(tracker)`.
#[allow(unsafe_code)]
unsafe extern "C" fn tracker_next(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a slot with the thread attached, on an instance of the type, a
    // subtype of `TrackerBase`.
    let py = unsafe { Python::assume_attached() };
    let step = catch_unwind(AssertUnwindSafe(|| {
        unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<PyTracker>() }.get().step(py)
    }));
    step.unwrap_or_else(|_| {
        PyRuntimeError::new_err("the tracked loop's step panicked").restore(py);
        null_mut()
    })
}
