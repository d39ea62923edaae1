//! `ItemMethod`: the descriptor of an item class's `__enter__` and `__exit__`, which hands a
//! loop's item the same bound methods every time.
//!
//! `with item:` looks up `__enter__` and `__exit__` on the item, and `CPython` (before 3.14)
//! binds each: a new method object made, tracked by the collector and freed for every item
//! (callgrind, `CPython` 3.11: about 800 instructions an item of the 3,500 a plain item took,
//! the collection those objects set off included). The task keeps its spare item's two bound
//! methods beside the item (`PyTaskBase::bound`, see `item::make_item`): this descriptor hands
//! out the kept one when nothing else holds it (its reference count is the task's one), and
//! else binds as the method descriptor it wraps does. Read on the class, it is that method
//! descriptor (introspection sees what it saw before).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::counting::PyTaskBase;
use super::item::PyItemBase;

/// `__enter__` and `__exit__`: their places in `PyTaskBase::bound`.
pub const ENTER: usize = 0;
pub const EXIT: usize = 1;

#[repr(C)]
struct ItemMethod {
    ob_base: ffi::PyObject,
    /// The method descriptor it binds (the class's own, see `fast::own_methods`).
    method: *mut ffi::PyObject,
    /// `ENTER` or `EXIT`.
    which: usize,
    /// The class it is the method of (its instances are items: no type check for them).
    cls: *mut ffi::PyObject,
}

static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const DOC: &std::ffi::CStr = c"An item's __enter__ or __exit__: binds the method it wraps, handing a loop's item the same bound method each time.";

#[allow(unsafe_code)]
fn item_method_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let made = TYPE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let mut slots = [
            ffi::PyType_Slot { slot: ffi::Py_tp_descr_get, pfunc: descr_get as *mut std::ffi::c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: dealloc as *mut std::ffi::c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_traverse, pfunc: traverse as *mut std::ffi::c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_clear, pfunc: clear as *mut std::ffi::c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_doc, pfunc: DOC.as_ptr().cast_mut().cast() },
            ffi::PyType_Slot { slot: 0, pfunc: null_mut() },
        ];
        let mut spec = ffi::PyType_Spec {
            // Static: before 3.12 the type keeps a pointer to its name.
            name: c"milepost._milepost.ItemMethod".as_ptr(),
            basicsize: i32::try_from(std::mem::size_of::<ItemMethod>()).unwrap_or(i32::MAX),
            itemsize: 0,
            // Made only by `wrap`; tracked by the collector, as it holds its class (a class
            // made at run time and let go is freed with its methods).
            flags: (ffi::Py_TPFLAGS_DEFAULT
                | ffi::Py_TPFLAGS_IMMUTABLETYPE
                | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION
                | ffi::Py_TPFLAGS_HAVE_GC) as std::ffi::c_uint,
            slots: slots.as_mut_ptr(),
        };
        // SAFETY: the spec and its slots are valid for the call (CPython copies the slots).
        let made = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&raw mut spec)) }?;
        Ok(made.cast_into::<PyType>()?.unbind())
    })?;
    Ok(made.bind(py))
}

/// An `ItemMethod` wrapping `method` (a method descriptor of `cls`, a subclass of `ItemBase`)
/// as `which`.
#[allow(unsafe_code)]
pub fn wrap<'py>(cls: &Bound<'py, PyType>, method: &Bound<'py, PyAny>, which: usize) -> PyResult<Bound<'py, PyAny>> {
    let py = method.py();
    learn_method_type(py)?;
    let tp = item_method_type(py)?;
    // SAFETY: `tp` is a live type made from our spec; `PyType_GenericAlloc` returns a new,
    // zeroed instance of its basic size (with a reference to the type, tracked by the
    // collector) or NULL; its fields are NULL until set here, and every slot checks.
    let made = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(tp.as_type_ptr(), 0)) }?;
    // SAFETY: `made` is an `ItemMethod` just allocated; it takes a reference to `method`.
    unsafe {
        let this = made.as_ptr().cast::<ItemMethod>();
        (*this).method = method.clone().into_ptr();
        (*this).which = which;
        (*this).cls = cls.clone().into_any().into_ptr();
    }
    Ok(made)
}

#[allow(unsafe_code)]
unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates an `ItemMethod` once, with the thread attached; a heap type's
    // instance holds a reference to its type, given back after the memory.
    unsafe {
        let tp = ffi::Py_TYPE(slf);
        ffi::PyObject_GC_UnTrack(slf.cast());
        clear(slf);
        let free: ffi::freefunc = std::mem::transmute(ffi::PyType_GetSlot(tp, ffi::Py_tp_free));
        free(slf.cast());
        ffi::Py_DECREF(tp.cast());
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn traverse(slf: *mut ffi::PyObject, visit: ffi::visitproc, arg: *mut std::ffi::c_void) -> i32 {
    // SAFETY: CPython traverses a live `ItemMethod`; a heap type's instance visits its type.
    unsafe {
        let this = slf.cast::<ItemMethod>();
        for held in [(*this).method, (*this).cls, ffi::Py_TYPE(slf).cast()] {
            if !held.is_null() {
                let r = visit(held, arg);
                if r != 0 {
                    return r;
                }
            }
        }
    }
    0
}

#[allow(unsafe_code)]
unsafe extern "C" fn clear(slf: *mut ffi::PyObject) -> i32 {
    // SAFETY: a live `ItemMethod`; each field is set to NULL before its reference is given back.
    unsafe {
        let this = slf.cast::<ItemMethod>();
        let (method, cls) = ((*this).method, (*this).cls);
        (*this).method = null_mut();
        (*this).cls = null_mut();
        ffi::Py_XDECREF(method);
        ffi::Py_XDECREF(cls);
    }
    0
}

/// The wrapped method bound to `obj`, as its own descriptor binds it (a new reference or NULL).
#[allow(unsafe_code)]
unsafe fn bind(method: *mut ffi::PyObject, obj: *mut ffi::PyObject, ty: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `method` is a live method descriptor, whose type (a static type, readable with
    // `PyType_GetSlot` from 3.10) has `tp_descr_get`.
    unsafe {
        let get: ffi::descrgetfunc =
            std::mem::transmute(ffi::PyType_GetSlot(ffi::Py_TYPE(method), ffi::Py_tp_descr_get));
        get(method, obj, ty)
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn descr_get(
    descr: *mut ffi::PyObject, obj: *mut ffi::PyObject, ty: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls the slot on an `ItemMethod`, with the thread attached.
    let (method, which, cls) = unsafe {
        let this = descr.cast::<ItemMethod>();
        ((*this).method, (*this).which, (*this).cls)
    };
    if method.is_null() || cls.is_null() {
        // Cleared by the collector (a cycle being freed): nothing left to bind.
        // SAFETY: as CPython calls the slot, with the thread attached.
        unsafe {
            ffi::PyErr_SetString(ffi::PyExc_AttributeError, c"this method of an item class was cleared".as_ptr());
        }
        return null_mut();
    }
    // SAFETY: as CPython calls the slot (`obj` NULL: read on the class).
    if obj.is_null() || unsafe { ffi::Py_IsNone(obj) } != 0 {
        return unsafe { bind(method, obj, ty) };
    }
    // SAFETY: as above.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `obj` is a live object (the caller's), borrowed for this call.
    let obj = unsafe { Borrowed::from_ptr(py, obj) };
    let task = catch_unwind(AssertUnwindSafe(|| task_of(obj, cls))).ok().flatten();
    if let Some(kept) = task.as_ref().and_then(|task| kept_bound(task.get(), obj, which)) {
        return kept.into_ptr();
    }
    // SAFETY: as above.
    let made = unsafe { bind(method, obj.as_ptr(), ty) };
    if let (false, Some(task)) = (made.is_null(), task) {
        // SAFETY: `made` is a live new reference (borrowed here; the caller gets it).
        let made_ref = unsafe { Borrowed::from_ptr(py, made) };
        let _ = catch_unwind(AssertUnwindSafe(|| keep_bound(task.get(), obj, made_ref, which)));
    }
    made
}

/// The task of `obj` when it is an item (one of exactly the class `cls` is: no type check).
#[allow(unsafe_code)]
fn task_of<'py>(obj: Borrowed<'_, 'py, PyAny>, cls: *mut ffi::PyObject) -> Option<Bound<'py, PyTaskBase>> {
    // SAFETY: `obj` is live; an instance of exactly `cls`, a subclass of `ItemBase`, is an item.
    let item = if unsafe { ffi::Py_TYPE(obj.as_ptr()) }.cast() == cls {
        unsafe { obj.cast_unchecked::<PyItemBase>() }
    } else {
        obj.cast::<PyItemBase>().ok()?
    };
    Some(item.try_borrow().ok()?.task().bind(obj.py()).clone())
}

/// The task's kept bound method `which`, if it is bound to `obj` and nothing else holds it.
#[allow(unsafe_code)]
fn kept_bound<'py>(task: &PyTaskBase, obj: Borrowed<'_, 'py, PyAny>, which: usize) -> Option<Bound<'py, PyAny>> {
    let kept = task.kept.lock();
    let kept = kept.bound[which].as_ref()?;
    // SAFETY: `kept` is a live bound method (a `PyCFunction`) the task holds.
    let free = unsafe { ffi::Py_REFCNT(kept.as_ptr()) == 1 && ffi::PyCFunction_GetSelf(kept.as_ptr()) == obj.as_ptr() };
    free.then(|| kept.bind(obj.py()).clone())
}

/// The type of a bound C method (`builtin_function_or_method`, a static type: never freed),
/// and where its instances keep their weak references (`__weakrefoffset__`), asked once by
/// `wrap` (read for every item: two plain loads).
static METHOD_TYPE: AtomicPtr<ffi::PyObject> = AtomicPtr::new(null_mut());
static WEAKLIST_OFFSET: AtomicIsize = AtomicIsize::new(0);

fn learn_method_type(py: Python<'_>) -> PyResult<()> {
    if !METHOD_TYPE.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let tp = py.import("builtins")?.getattr("len")?.get_type();
    let offset = tp.getattr("__weakrefoffset__")?.extract::<isize>()?;
    if offset <= 0 {
        return Ok(()); // weak references kept some other way: no bound method is kept at all
    }
    WEAKLIST_OFFSET.store(offset, Ordering::Release);
    METHOD_TYPE.store(tp.as_ptr(), Ordering::Release);
    Ok(())
}

/// Whether a weak reference reaches `kept` (a bound C method): one taken by the caller
/// reaches its item too, which must not be made again for another.
#[allow(unsafe_code)]
fn weakly_held(kept: &Py<PyAny>) -> bool {
    let offset = WEAKLIST_OFFSET.load(Ordering::Relaxed);
    if offset <= 0 {
        return true; // unknown (never so: nothing is kept then, see `learn_method_type`)
    }
    // SAFETY: `kept` is an instance of `METHOD_TYPE` (see `keep_bound`), whose instances hold
    // the head of their weak reference list (NULL: none) at `offset`.
    unsafe { !kept.as_ptr().cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>().read_unaligned().is_null() }
}

/// Keeps `made` (bound to `obj`) in `task` when `obj` is the task's spare item.
fn keep_bound(task: &PyTaskBase, obj: Borrowed<'_, '_, PyAny>, made: Borrowed<'_, '_, PyAny>, which: usize) {
    if made.get_type().as_ptr() != METHOD_TYPE.load(Ordering::Acquire) {
        return; // not a plain bound C method: nothing known of its layout
    }
    let mut kept = task.kept.lock();
    if kept.spare.as_ref().is_none_or(|s| s.as_ptr() != obj.as_ptr()) {
        return;
    }
    let earlier = kept.bound[which].replace(made.to_owned().unbind());
    drop(kept);
    drop(earlier.map(|e| e.into_bound(obj.py()))); // outside the lock: freeing it frees what it holds
}

/// Whether the bound methods a task keeps (`bound`) leave `spare` free to be made again: each
/// one bound to it is held by the task alone (no reference, weak or strong, from anywhere
/// else), and nothing else holds the item (its count is the task's spare slot and those
/// methods).
#[allow(unsafe_code)]
pub fn spare_alone(bound: &[Option<Py<PyAny>>; 2], spare: &Bound<'_, PyItemBase>) -> bool {
    let mut holders = 1;
    for kept in bound.iter().flatten() {
        // SAFETY: `kept` is a live bound method the task holds.
        unsafe {
            if ffi::PyCFunction_GetSelf(kept.as_ptr()) == spare.as_ptr() {
                if ffi::Py_REFCNT(kept.as_ptr()) != 1 || weakly_held(kept) {
                    return false;
                }
                holders += 1;
            }
        }
    }
    // SAFETY: `spare` is a live object.
    unsafe { ffi::Py_REFCNT(spare.as_ptr()) == holders }
}
