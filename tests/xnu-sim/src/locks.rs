//! Locks (xnu osfmk/kern/locks.h: osfmk/kern/locks.c, lock_group.c, lock_mtx.c): lock groups,
//! attributes and mutexes, with the owner tracked on every operation and leak accounting.
//! Mutexes are not recursive: a lock by the owner panics, as does an unlock by anyone else.

use crate::config::{self, Fault};
use crate::fasthash::AddrMap;
use crate::proc;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Condvar, Mutex};

/// A kernel mutex: owner tracked on every operation.
struct SimMutex {
    owner: Mutex<Option<u64>>,
    cv: Condvar,
    group: usize,
}

#[derive(Default)]
struct LockTables {
    mutexes: AddrMap<usize, Arc<SimMutex>>,
    groups: HashMap<usize, String>,
    grp_attrs: HashSet<usize>,
    attrs: HashSet<usize>,
    next: usize,
}

static LOCKS: Mutex<Option<LockTables>> = Mutex::new(None);

fn locks<R>(f: impl FnOnce(&mut LockTables) -> R) -> R {
    f(LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(LockTables::default))
}

/// A fresh opaque handle value (never dereferenced by the driver).
fn new_handle(t: &mut LockTables) -> usize {
    t.next += 1;
    0x5000_0000_0000 + t.next * 64
}

thread_local! {
    /// Mutexes the calling thread holds.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn mutex(handle: *mut c_void) -> Arc<SimMutex> {
    locks(|t| t.mutexes.get(&(handle as usize)).cloned()).unwrap_or_else(|| {
        panic!("lck_mtx {handle:p}: not a live mutex (never allocated, or freed)")
    })
}

/// Whether the calling thread holds the mutex `handle`.
pub(crate) fn holds(handle: usize) -> bool {
    HELD.with(|h| h.borrow().contains(&handle))
}

/// Takes the mutex for the calling thread, blocking while another thread holds it.
pub(crate) fn lock_mutex(handle: *mut c_void) {
    let m = mutex(handle);
    let me = proc::current_tid();
    let mut owner = m.owner.lock().unwrap();
    if *owner == Some(me) {
        panic!("lck_mtx_lock {handle:p}: recursive lock by its owner (mutexes are not recursive)");
    }
    while owner.is_some() {
        owner = m.cv.wait(owner).unwrap();
    }
    *owner = Some(me);
    HELD.with(|h| h.borrow_mut().push(handle as usize));
}

/// Releases the mutex the calling thread holds; panics when it is not the owner.
pub(crate) fn unlock_mutex(handle: *mut c_void) {
    let m = mutex(handle);
    let me = proc::current_tid();
    let mut owner = m.owner.lock().unwrap();
    if *owner != Some(me) {
        panic!(
            "lck_mtx_unlock {handle:p}: not held by the calling thread (owner {:?})",
            *owner
        );
    }
    *owner = None;
    m.cv.notify_one();
    drop(owner);
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h
            .iter()
            .rposition(|&x| x == handle as usize)
            .expect("held list");
        h.remove(i);
    });
}

/// Live lock objects: (mutexes, groups, group attributes, attributes).
pub(crate) fn live_locks() -> (usize, usize, usize, usize) {
    locks(|t| {
        (
            t.mutexes.len(),
            t.groups.len(),
            t.grp_attrs.len(),
            t.attrs.len(),
        )
    })
}

/// Allocates an attribute object tracked in the set `set` picks (fault-injectable).
fn alloc_attribute(set: fn(&mut LockTables) -> &mut HashSet<usize>) -> *mut c_void {
    if config::should_fail(Fault::LockAlloc) {
        return std::ptr::null_mut();
    }
    locks(|t| {
        let h = new_handle(t);
        set(t).insert(h);
        h as *mut c_void
    })
}

/// Frees an attribute object; a handle that is not live panics (`what` names the call).
fn free_attribute(set: fn(&mut LockTables) -> &mut HashSet<usize>, attr: *mut c_void, what: &str) {
    locks(|t| assert!(set(t).remove(&(attr as usize)), "{what} {attr:p}: not live"));
}

/// `lck_grp_attr_alloc_init` (osfmk/kern/lock_group.c): a tracked attribute handle, or NULL
/// when a `LockAlloc` fault is injected (XNU does not fail).
#[no_mangle]
extern "C" fn lck_grp_attr_alloc_init() -> *mut c_void {
    alloc_attribute(|t| &mut t.grp_attrs)
}

/// `lck_grp_attr_free` (osfmk/kern/lock_group.c): frees the attribute. Stricter than XNU: a
/// handle that is not live panics.
#[no_mangle]
extern "C" fn lck_grp_attr_free(attr: *mut c_void) {
    free_attribute(|t| &mut t.grp_attrs, attr, "lck_grp_attr_free");
}

/// `lck_grp_alloc_init` (osfmk/kern/lock_group.c): a named lock group; the attribute must be
/// live or NULL (a bad one panics). NULL when a `LockAlloc` fault is injected.
#[no_mangle]
extern "C" fn lck_grp_alloc_init(name: *const c_char, attr: *mut c_void) -> *mut c_void {
    if config::should_fail(Fault::LockAlloc) {
        return std::ptr::null_mut();
    }
    // SAFETY: the KPI requires a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    locks(|t| {
        assert!(
            attr.is_null() || t.grp_attrs.contains(&(attr as usize)),
            "lck_grp_alloc_init: bad attr"
        );
        let h = new_handle(t);
        t.groups.insert(h, name);
        h as *mut c_void
    })
}

/// `lck_grp_free` (osfmk/kern/lock_group.c): frees the group. Stricter than XNU, which only drops
/// a reference: panics while mutexes of the group are live, and for a handle that is not live.
#[no_mangle]
extern "C" fn lck_grp_free(grp: *mut c_void) {
    locks(|t| {
        let live = t
            .mutexes
            .values()
            .filter(|m| m.group == grp as usize)
            .count();
        assert!(
            live == 0,
            "lck_grp_free {grp:p}: {live} mutexes of this group are still live"
        );
        assert!(
            t.groups.remove(&(grp as usize)).is_some(),
            "lck_grp_free {grp:p}: not live"
        );
    });
}

/// `lck_attr_alloc_init` (osfmk/kern/locks.c): a tracked attribute handle, or NULL when a
/// `LockAlloc` fault is injected.
#[no_mangle]
extern "C" fn lck_attr_alloc_init() -> *mut c_void {
    alloc_attribute(|t| &mut t.attrs)
}

/// `lck_attr_free` (osfmk/kern/locks.c): frees the attribute. Stricter than XNU: a handle that is
/// not live panics.
#[no_mangle]
extern "C" fn lck_attr_free(attr: *mut c_void) {
    free_attribute(|t| &mut t.attrs, attr, "lck_attr_free");
}

/// `lck_mtx_alloc_init` (osfmk/kern/lock_mtx.c): a mutex of a live group whose owner is tracked
/// on every operation; a group that is not live panics; NULL when a `LockAlloc` fault is injected.
#[no_mangle]
extern "C" fn lck_mtx_alloc_init(grp: *mut c_void, _attr: *mut c_void) -> *mut c_void {
    if config::should_fail(Fault::LockAlloc) {
        return std::ptr::null_mut();
    }
    locks(|t| {
        assert!(
            t.groups.contains_key(&(grp as usize)),
            "lck_mtx_alloc_init: group {grp:p} not live"
        );
        let h = new_handle(t);
        t.mutexes.insert(
            h,
            Arc::new(SimMutex {
                owner: Mutex::new(None),
                cv: Condvar::new(),
                group: grp as usize,
            }),
        );
        h as *mut c_void
    })
}

/// `lck_mtx_free` (osfmk/kern/lock_mtx.c): frees the mutex. Panics when it is held, when `grp` is
/// not its group, or for a handle that is not a live mutex.
#[no_mangle]
extern "C" fn lck_mtx_free(lck: *mut c_void, grp: *mut c_void) {
    let m = mutex(lck);
    assert!(
        m.owner.lock().unwrap().is_none(),
        "lck_mtx_free {lck:p}: freeing a held mutex"
    );
    assert_eq!(m.group, grp as usize, "lck_mtx_free {lck:p}: wrong group");
    locks(|t| t.mutexes.remove(&(lck as usize)));
}

/// `lck_mtx_lock` (osfmk/kern/lock_mtx.c): blocks until the mutex is free and takes it; a lock
/// by its owner panics (mutexes are not recursive). Perturbation mode may yield first.
#[no_mangle]
extern "C" fn lck_mtx_lock(lck: *mut c_void) {
    config::perturb_point();
    lock_mutex(lck);
}

/// `lck_mtx_unlock` (osfmk/kern/lock_mtx.c): releases the mutex; an unlock by a thread that is
/// not the owner panics. Perturbation mode may yield after it.
#[no_mangle]
extern "C" fn lck_mtx_unlock(lck: *mut c_void) {
    unlock_mutex(lck);
    config::perturb_point();
}

/// `lck_mtx_try_lock` (osfmk/kern/lock_mtx.c): 1 and ownership when the mutex is free, 0 when
/// anyone holds it, the caller included.
#[no_mangle]
extern "C" fn lck_mtx_try_lock(lck: *mut c_void) -> c_int {
    let m = mutex(lck);
    let me = proc::current_tid();
    let mut owner = m.owner.lock().unwrap();
    if owner.is_some() {
        return 0;
    }
    *owner = Some(me);
    HELD.with(|h| h.borrow_mut().push(lck as usize));
    1
}
