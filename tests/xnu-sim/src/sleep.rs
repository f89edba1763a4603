//! Sleep and wakeup (xnu bsd/kern/kern_synch.c: `msleep`, `wakeup`, `wakeup_one`), and the
//! scheduler lock that stands for every wait queue, select's included (crate::select).
//!
//! A sleeper registers on its channel and releases its mutex while holding the scheduler lock,
//! so a wakeup issued after `msleep` was entered is never lost, while a wakeup with no sleeper
//! is (no counting). Each sleeper waits on a condition variable of its own, so a wakeup rouses
//! only the sleepers of its channel; select calls wait on the shared one.

use crate::abi::*;
use crate::config;
use crate::errno::Errno;
use crate::locks::{holds, lock_mutex, unlock_mutex};
use crate::proc;
use crate::select::{Records, SELECT_CV};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Every wait queue, behind one lock.
pub(crate) struct Sched {
    /// Sleepers by thread id: the channel and whether a wakeup reached them.
    sleepers: Vec<Sleeper>,
    /// `wakeup` calls that found no sleeper (lost, by design).
    lost_wakeups: u64,
    /// select(2) records and the select calls they wake.
    pub(crate) select: Records,
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
        lost_wakeups: 0,
        select: Records::new(),
    })
});

/// The scheduler lock.
pub(crate) fn sched() -> MutexGuard<'static, Sched> {
    SCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wakes every waiter so it re-checks (signals, selects, a released hold).
pub(crate) fn notify_all() {
    let s = sched();
    SELECT_CV.notify_all();
    for w in &s.sleepers {
        w.cv.notify_one();
    }
}

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

fn msleep_impl(chan: usize, mtx: *mut c_void, pri: c_int, timeout: Option<Duration>) -> c_int {
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
    run_sleep_entry_hook(chan);
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

// ---- what tests can see and steer ----

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

/// Code a test runs inside `msleep`'s entry window; see [`set_sleep_entry_hook`].
pub type SleepEntryHook = Arc<dyn Fn(usize) + Send + Sync>;

static SLEEP_ENTRY_HOOK_SET: AtomicBool = AtomicBool::new(false);
static SLEEP_ENTRY_HOOK: Mutex<Option<SleepEntryHook>> = Mutex::new(None);

/// Runs `hook(chan)` on every thread entering `msleep`, after the entry checks and before the
/// thread is queued on `chan` and its interlock (if any) released, with no simulator lock
/// held; `None` removes it. This is the window that perturbation mode widens with a random
/// delay: a caller that dropped its mutex before `msleep` (NULL interlock) loses an enqueue and
/// wakeup made here, while with the interlock held nobody else can enqueue here. A test that
/// runs its producer from the hook meets that schedule every time instead of by chance.
pub fn set_sleep_entry_hook(hook: Option<SleepEntryHook>) {
    let mut slot = SLEEP_ENTRY_HOOK.lock().unwrap_or_else(|e| e.into_inner());
    SLEEP_ENTRY_HOOK_SET.store(hook.is_some(), Ordering::SeqCst);
    *slot = hook;
}

fn run_sleep_entry_hook(chan: usize) {
    if !SLEEP_ENTRY_HOOK_SET.load(Ordering::SeqCst) {
        return;
    }
    let hook = SLEEP_ENTRY_HOOK
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(hook) = hook {
        hook(chan);
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
