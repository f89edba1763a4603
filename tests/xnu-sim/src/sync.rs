//! Locks, sleep/wakeup and select records (xnu bsd/kern/kern_synch.c, osfmk/kern/locks.h,
//! bsd/sys/select.h), with owner checks and leak accounting.
//!
//! One scheduler lock stands for every wait queue: a sleeper registers on its channel and
//! releases its mutex while holding the scheduler lock, so a wakeup issued after `msleep` was
//! entered is never lost, while a wakeup with no sleeper is (no counting). Each sleeper waits
//! on a condition variable of its own, so a wakeup rouses only the sleepers of its channel;
//! select calls wait on the shared one.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use crate::fasthash::AddrMap;
use crate::proc;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Sched {
    /// Sleepers by thread id: the channel and whether a wakeup reached them.
    sleepers: Vec<Sleeper>,
    /// select(2) records: selinfo address → waiting select calls.
    sel_records: AddrMap<usize, HashSet<u64>>,
    /// select calls a `selwakeup` reached since they last polled.
    sel_fired: HashSet<u64>,
    next_select: u64,
    /// `wakeup` calls that found no sleeper (lost, by design).
    lost_wakeups: u64,
}

struct Sleeper {
    tid: u64,
    chan: usize,
    woken: bool,
    /// Waited on with the scheduler lock: a wakeup rouses only the sleepers of its channel.
    cv: Arc<Condvar>,
}

static SCHED: LazyLock<Mutex<Sched>> = LazyLock::new(|| {
    Mutex::new(Sched {
        sleepers: Vec::new(),
        sel_records: AddrMap::default(),
        sel_fired: HashSet::new(),
        next_select: 1,
        lost_wakeups: 0,
    })
});
static SCHED_CV: Condvar = Condvar::new();

fn sched() -> MutexGuard<'static, Sched> {
    SCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wakes every waiter so it re-checks (signals, selects, a released hold).
pub(crate) fn notify_all() {
    let s = sched();
    SCHED_CV.notify_all();
    for w in &s.sleepers {
        w.cv.notify_one();
    }
}

// ---- lock objects ----

/// A kernel mutex: owner tracked on every operation.
pub(crate) struct SimMutex {
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

fn holds(handle: usize) -> bool {
    HELD.with(|h| h.borrow().contains(&handle))
}

fn lock_mutex(handle: *mut c_void) {
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

fn unlock_mutex(handle: *mut c_void) {
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

// ---- sleep / wakeup ----

/// The result of a sleep that ended for a signal.
fn signal_result(restart: bool) -> c_int {
    if restart {
        Errno::ERESTART.0
    } else {
        Errno::EINTR.0
    }
}

/// `msleep` (bsd/kern/kern_synch.c `msleep` → `_sleep`): releases `mtx` and sleeps on `chan` in one
/// step until a wakeup, the relative timeout (`EWOULDBLOCK`) or, with `PCATCH`, a signal (`EINTR`
/// or `ERESTART`); retakes `mtx` unless `PDROP`. Stricter than XNU: the caller must hold `mtx`
/// (panic), and perturbation mode injects delays and spurious wakeups.
#[no_mangle]
extern "C" fn msleep(
    chan: *mut c_void,
    mtx: *mut c_void,
    pri: c_int,
    _wmesg: *const c_char,
    ts: *mut timespec,
) -> c_int {
    msleep_impl(chan as usize, mtx, pri, ts_duration(ts))
}

fn ts_duration(ts: *const timespec) -> Option<Duration> {
    if ts.is_null() {
        return None;
    }
    // SAFETY: the caller passes a valid timespec or NULL.
    let ts = unsafe { *ts };
    if ts.tv_sec == 0 && ts.tv_nsec == 0 {
        None
    } else {
        Some(Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.clamp(0, 999_999_999) as u32,
        ))
    }
}

pub(crate) fn msleep_impl(
    chan: usize,
    mtx: *mut c_void,
    pri: c_int,
    timeout: Option<Duration>,
) -> c_int {
    let catch = pri & PCATCH != 0;
    let drop_lock = pri & PDROP != 0;
    if !mtx.is_null() && !holds(mtx as usize) {
        panic!("msleep: the interlock mutex {mtx:p} is not held by the caller");
    }
    // A signal pending at entry ends the sleep at once (XNU's no-mutex path; here on both).
    if catch {
        if let Some(restart) = proc::pending_signal_restarts() {
            if drop_lock && !mtx.is_null() {
                unlock_mutex(mtx);
            }
            return signal_result(restart);
        }
    }
    config::perturb_point();
    // Before sleep, sometimes a long delay: a caller that released its lock before calling
    // msleep (NULL mutex) has a window here in which an enqueue and its wakeup are lost; the
    // delay widens it so perturbation mode catches that bug. With an interlock the delay is
    // harmless: the mutex is still held.
    if config::booted() && config::config().perturb && config::chance(0.2) {
        std::thread::sleep(Duration::from_micros(config::random_range(50..1000) as u64));
    }
    let tid = proc::current_tid();
    let cv = Arc::new(Condvar::new());
    let mut s = sched();
    s.sleepers.push(Sleeper {
        tid,
        chan,
        woken: false,
        cv: Arc::clone(&cv),
    });
    // Releasing the interlock while holding the scheduler lock is the atomic step.
    if !mtx.is_null() {
        unlock_mutex(mtx);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    // Spurious wakeups come only at the start of a sleep: they still make every caller
    // re-check its condition, but never end a sleep whose wakeup was lost (which a later
    // spurious wakeup would hide).
    let spurious = config::booted() && config::config().spurious_wakeups && config::chance(0.05);
    let result;
    loop {
        if HOLD_SLEEPERS.load(Ordering::SeqCst) {
            // Runnable but not scheduled yet (see `hold_sleepers`).
            s = cv
                .wait_timeout(s, Duration::from_millis(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        if catch {
            if let Some(restart) = proc::pending_signal_restarts() {
                result = signal_result(restart); // signals win over a wakeup
                break;
            }
        }
        let me = s
            .sleepers
            .iter()
            .position(|w| w.tid == tid)
            .expect("sleeper registered");
        if s.sleepers[me].woken {
            result = 0;
            break;
        }
        if spurious {
            result = 0; // spurious: legal, callers re-check
            break;
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    result = Errno::EWOULDBLOCK.0;
                    break;
                }
                (d - now).min(Duration::from_millis(50))
            }
            None => Duration::from_millis(50),
        };
        s = cv
            .wait_timeout(s, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    let me = s
        .sleepers
        .iter()
        .position(|w| w.tid == tid)
        .expect("sleeper registered");
    s.sleepers.remove(me);
    drop(s);
    if !drop_lock && !mtx.is_null() {
        lock_mutex(mtx);
    }
    result
}

/// `wakeup` (bsd/kern/kern_synch.c): wakes every thread asleep on `chan`; a wakeup with no sleeper
/// is lost (counted for tests).
#[no_mangle]
extern "C" fn wakeup(chan: *mut c_void) {
    config::perturb_point();
    let mut s = sched();
    let mut any = false;
    for w in s.sleepers.iter_mut().filter(|w| w.chan == chan as usize) {
        w.woken = true;
        w.cv.notify_one();
        any = true;
    }
    if !any {
        s.lost_wakeups += 1;
    }
    drop(s);
    config::perturb_point(); // around the wakeup: the woken thread may run first
}

/// `wakeup_one` (bsd/kern/kern_synch.c): wakes the longest-waiting sleeper on `chan` not yet woken;
/// lost when there is none.
#[no_mangle]
extern "C" fn wakeup_one(chan: *mut c_char) {
    config::perturb_point();
    let mut s = sched();
    match s
        .sleepers
        .iter_mut()
        .find(|w| w.chan == chan as usize && !w.woken)
    {
        Some(w) => {
            w.woken = true;
            w.cv.notify_one();
        }
        None => s.lost_wakeups += 1,
    }
}

static HOLD_SLEEPERS: AtomicBool = AtomicBool::new(false);

/// While the returned guard lives, threads in `msleep` do not run: whatever wakes them
/// (wakeup, signal, timeout) is only looked at once the guard is dropped, as when a woken
/// thread has not been scheduled yet. Lets a test post a wakeup and a signal "at the same
/// time" (xnu bsd/kern/kern_synch.c: signals are delivered first).
pub fn hold_sleepers() -> HeldSleepers {
    assert!(
        !HOLD_SLEEPERS.swap(true, Ordering::SeqCst),
        "hold_sleepers: already held"
    );
    HeldSleepers(())
}

/// See [`hold_sleepers`].
pub struct HeldSleepers(());

impl Drop for HeldSleepers {
    fn drop(&mut self) {
        HOLD_SLEEPERS.store(false, Ordering::SeqCst);
        notify_all();
    }
}

/// Threads currently asleep on `chan`.
pub fn sleepers_on(chan: usize) -> usize {
    sched().sleepers.iter().filter(|w| w.chan == chan).count()
}

/// Threads currently asleep in `msleep`, on any channel.
pub fn sleeping_threads() -> usize {
    sched().sleepers.len()
}

/// `wakeup` calls that found no sleeper.
pub fn lost_wakeups() -> u64 {
    sched().lost_wakeups
}

// ---- select ----

/// A select(2) call in progress: the cookie `d_select` receives as `wql`.
pub(crate) struct SelectCall(u64);

impl SelectCall {
    pub(crate) fn begin() -> SelectCall {
        let mut s = sched();
        let id = s.next_select;
        s.next_select += 1;
        SelectCall(id)
    }

    pub(crate) fn cookie(&self) -> *mut c_void {
        self.0 as *mut c_void
    }

    /// Forgets earlier selwakeups before polling the devices again.
    pub(crate) fn rearm(&self) {
        sched().sel_fired.remove(&self.0);
    }

    /// Sleeps until a selwakeup reaches this call, the deadline passes, or a signal is
    /// pending. Returns false on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut s = sched();
        loop {
            if s.sel_fired.contains(&self.0) || proc::pending_signal_restarts().is_some() {
                return true;
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    (d - now).min(Duration::from_millis(50))
                }
                None => Duration::from_millis(50),
            };
            s = SCHED_CV
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for SelectCall {
    fn drop(&mut self) {
        // seldrop: the call's records go away with it.
        let mut s = sched();
        s.sel_records.retain(|_, calls| {
            calls.remove(&self.0);
            !calls.is_empty()
        });
        s.sel_fired.remove(&self.0);
    }
}

/// `selrecord` (bsd/kern/sys_generic.c): records the selecting thread on `sip`. On the second
/// pass of a `select` the wait-queue link is NULL and it records nothing ("do not record if
/// this is second pass of select").
#[no_mangle]
extern "C" fn selrecord(_selector: proc_t, sip: *mut c_void, wql: *mut c_void) {
    assert!(!sip.is_null(), "selrecord: NULL selinfo");
    if wql.is_null() {
        return;
    }
    sched()
        .sel_records
        .entry(sip as usize)
        .or_default()
        .insert(wql as u64);
}

/// `selwakeup` (bsd/kern/sys_generic.c): wakes every select call recorded on `sip`; does nothing
/// without a record. Perturbation mode may yield around it.
#[no_mangle]
extern "C" fn selwakeup(sip: *mut c_void) {
    config::perturb_point();
    let mut s = sched();
    if let Some(calls) = s.sel_records.get(&(sip as usize)).cloned() {
        s.sel_fired.extend(calls);
    }
    SCHED_CV.notify_all();
    drop(s);
    config::perturb_point();
}

/// `selthreadclear` (bsd/kern/sys_generic.c): drops every select record on `sip` and wakes the
/// waiting select calls, which poll again.
#[no_mangle]
extern "C" fn selthreadclear(sip: *mut c_void) {
    let mut s = sched();
    if let Some(calls) = s.sel_records.remove(&(sip as usize)) {
        s.sel_fired.extend(calls);
    }
    SCHED_CV.notify_all();
}

/// select records still registered (leak accounting).
pub(crate) fn live_select_records() -> usize {
    sched().sel_records.values().map(HashSet::len).sum()
}
