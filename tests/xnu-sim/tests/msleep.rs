//! The simulator's `msleep`, row by row of xnu-sim.md section 3.1, pinned against
//! xnu bsd/kern/kern_synch.c (`msleep`/`_sleep`): timeout, PCATCH with and without
//! SA_RESTART, a signal pending at entry, a signal beating a wakeup, PDROP versus relock,
//! signals ignored without PCATCH, and the interlock that must be held.

mod common;

use common::*;
use std::ffi::c_void;
use std::time::{Duration, Instant};
use xnu_sim::abi::{PCATCH, PDROP};
use xnu_sim::proc::{self, Handler};
use xnu_sim::sleep::{hold_sleepers, sleepers_on};
use xnu_sim::Errno;

const SIGUSR1: i32 = 30;
const SIGUSR2: i32 = 31;
/// Long enough that reaching it means the sleep was not ended by what the test did.
const LONG: Duration = Duration::from_secs(10);

/// Sends raw pointers to a sleeper thread.
#[derive(Clone, Copy)]
struct P(*mut c_void);
// SAFETY: opaque kernel handles / channel addresses, shared like in the kernel.
unsafe impl Send for P {}

/// Whether `m` is held by someone: another thread's `lck_mtx_try_lock` fails.
fn held_elsewhere(m: *mut c_void) -> bool {
    let m = P(m);
    std::thread::spawn(move || {
        let m = m;
        // SAFETY: live mutex; released again if we got it.
        unsafe {
            if lck_mtx_try_lock(m.0) == 1 {
                lck_mtx_unlock(m.0);
                false
            } else {
                true
            }
        }
    })
    .join()
    .unwrap()
}

/// Outcome of one sleep run on a thread of process `pid`: (result, elapsed, mutex still held
/// by the sleeper when msleep returned).
struct Slept {
    rc: i32,
    elapsed: Duration,
    held_after: bool,
}

/// Starts a thread of `pid` that locks `m`, calls msleep(chan, m, pri, timeout) and reports.
fn sleeper(
    pid: proc::Pid,
    chan: *mut c_void,
    m: *mut c_void,
    pri: i32,
    timeout: Duration,
) -> proc::SimThread<Slept> {
    let (chan, m) = (P(chan), P(m));
    proc::spawn_thread(pid, move || {
        let (chan, m) = (chan, m);
        let mut t = ts(timeout);
        // SAFETY: live mutex and a valid timespec.
        unsafe {
            lck_mtx_lock(m.0);
            let start = Instant::now();
            let rc = msleep(chan.0, m.0, pri, c"test".as_ptr(), &mut t);
            let elapsed = start.elapsed();
            let held_after = held_elsewhere(m.0);
            if pri & PDROP == 0 {
                lck_mtx_unlock(m.0); // panics (aborting the test) unless this thread owns it
            }
            Slept {
                rc,
                elapsed,
                held_after,
            }
        }
    })
}

fn wait_asleep(chan: *mut c_void, n: usize) {
    assert!(
        wait_until(Duration::from_secs(5), || sleepers_on(chan as usize) == n),
        "{n} thread(s) never went to sleep on the channel"
    );
}

/// A process with a handler for SIGUSR1 (with or without SA_RESTART).
fn process_with_handler(restart: bool) -> proc::Pid {
    let pid = proc::spawn_process(0);
    proc::sigaction(pid, SIGUSR1, Some(Handler { restart }));
    pid
}

static CH: u8 = 0;

#[test]
fn timeout_returns_ewouldblock_with_the_mutex_reheld() {
    boot();
    let m = new_mutex();
    let s = sleeper(proc::INIT_PID, chan(&CH), m, 0, Duration::from_millis(100)).join();
    assert_eq!(
        Errno(s.rc),
        Errno::EWOULDBLOCK,
        "expiry is EWOULDBLOCK (35)"
    );
    assert_eq!(s.rc, 35);
    assert!(s.elapsed >= Duration::from_millis(100), "{:?}", s.elapsed);
    assert!(
        s.held_after,
        "without PDROP the mutex is re-taken on a timeout"
    );
    assert!(!held_elsewhere(m), "the sleeper released it afterwards");
}

#[test]
fn zero_or_null_timespec_means_forever() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    // {0, 0}: forever. The sleeper is still asleep well past any short timeout.
    let t = sleeper(proc::INIT_PID, ch, m, 0, Duration::ZERO);
    wait_asleep(ch, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.is_finished(), "{{0,0}} must mean no timeout");
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    let s = t.join();
    assert_eq!(s.rc, 0, "a normal wakeup returns 0");
    assert!(s.held_after);
    // NULL timespec: forever as well.
    let (chp, mp) = (P(ch), P(m));
    let t = std::thread::spawn(move || {
        let (chp, mp) = (chp, mp);
        // SAFETY: live mutex, NULL timespec.
        unsafe {
            lck_mtx_lock(mp.0);
            let rc = msleep(chp.0, mp.0, 0, c"t".as_ptr(), std::ptr::null_mut());
            lck_mtx_unlock(mp.0);
            rc
        }
    });
    wait_asleep(ch, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.is_finished(), "NULL must mean no timeout");
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn pcatch_signal_without_sa_restart_gives_eintr() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    let pid = process_with_handler(false);
    let t = sleeper(pid, ch, m, PCATCH, LONG);
    wait_asleep(ch, 1);
    assert!(proc::kill(pid, SIGUSR1));
    let s = t.join();
    assert_eq!(
        Errno(s.rc),
        Errno::EINTR,
        "handler without SA_RESTART: EINTR"
    );
    assert!(s.elapsed < LONG / 2, "the signal ended the sleep");
    assert!(s.held_after, "re-locked on every result without PDROP");
}

#[test]
fn pcatch_signal_with_sa_restart_gives_erestart() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    let pid = process_with_handler(true);
    let t = sleeper(pid, ch, m, PCATCH, LONG);
    wait_asleep(ch, 1);
    assert!(proc::kill(pid, SIGUSR1));
    let s = t.join();
    assert_eq!(Errno(s.rc), Errno::ERESTART, "SA_RESTART handler: ERESTART");
    assert_eq!(s.rc, -1, "kernel-internal ERESTART is -1");
    assert!(s.held_after);
}

#[test]
fn signal_pending_at_entry_returns_at_once() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    let pid = process_with_handler(false);
    assert!(proc::kill(pid, SIGUSR1));
    let s = sleeper(pid, ch, m, PCATCH, LONG).join();
    assert_eq!(Errno(s.rc), Errno::EINTR);
    assert!(s.elapsed < Duration::from_secs(1), "{:?}", s.elapsed);
    assert!(s.held_after, "never released: still held without PDROP");
    // With SA_RESTART the immediate answer is ERESTART.
    let pid = process_with_handler(true);
    assert!(proc::kill(pid, SIGUSR1));
    let s = sleeper(pid, ch, m, PCATCH, LONG).join();
    assert_eq!(Errno(s.rc), Errno::ERESTART);
    assert!(s.elapsed < Duration::from_secs(1));
    // With PDROP it returns unlocked even though it never slept.
    let pid = process_with_handler(false);
    assert!(proc::kill(pid, SIGUSR1));
    let s = sleeper(pid, ch, m, PCATCH | PDROP, LONG).join();
    assert_eq!(Errno(s.rc), Errno::EINTR);
    assert!(!s.held_after, "PDROP: unlocked whether it slept or not");
}

#[test]
fn a_signal_beats_a_simultaneous_wakeup() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    // Control: the hold itself does not change a plain wakeup.
    let pid = process_with_handler(false);
    let t = sleeper(pid, ch, m, PCATCH, LONG);
    wait_asleep(ch, 1);
    let held = hold_sleepers();
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    drop(held);
    assert_eq!(t.join().rc, 0);
    // Wakeup and signal both posted before the sleeper runs: "deliver signals first".
    let t = sleeper(pid, ch, m, PCATCH, LONG);
    wait_asleep(ch, 1);
    let held = hold_sleepers();
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    assert!(proc::kill(pid, SIGUSR1));
    drop(held);
    let s = t.join();
    assert_eq!(
        Errno(s.rc),
        Errno::EINTR,
        "the pending signal wins over the wakeup"
    );
    assert!(s.held_after);
}

#[test]
fn pdrop_returns_unlocked_on_every_result() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    // Wakeup.
    let t = sleeper(proc::INIT_PID, ch, m, PDROP, LONG);
    wait_asleep(ch, 1);
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    let s = t.join();
    assert_eq!(s.rc, 0);
    assert!(!s.held_after, "PDROP after a wakeup: unlocked");
    // Timeout.
    let s = sleeper(proc::INIT_PID, ch, m, PDROP, Duration::from_millis(50)).join();
    assert_eq!(Errno(s.rc), Errno::EWOULDBLOCK);
    assert!(!s.held_after, "PDROP after a timeout: unlocked");
    // Signal.
    let pid = process_with_handler(false);
    let t = sleeper(pid, ch, m, PCATCH | PDROP, LONG);
    wait_asleep(ch, 1);
    assert!(proc::kill(pid, SIGUSR1));
    let s = t.join();
    assert_eq!(Errno(s.rc), Errno::EINTR);
    assert!(!s.held_after, "PDROP after a signal: unlocked");
    // And without PDROP, the same three results come back locked.
    let t = sleeper(proc::INIT_PID, ch, m, 0, LONG);
    wait_asleep(ch, 1);
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    assert!(t.join().held_after, "relocked after a wakeup");
    assert!(
        sleeper(proc::INIT_PID, ch, m, 0, Duration::from_millis(50))
            .join()
            .held_after
    );
    let pid = process_with_handler(true);
    let t = sleeper(pid, ch, m, PCATCH, LONG);
    wait_asleep(ch, 1);
    assert!(proc::kill(pid, SIGUSR1));
    assert!(t.join().held_after, "relocked after a signal");
}

#[test]
fn without_pcatch_signals_neither_wake_nor_change_the_result() {
    boot();
    let m = new_mutex();
    let ch = chan(&CH);
    let pid = process_with_handler(false);
    proc::sigaction(pid, SIGUSR2, Some(Handler { restart: true }));
    // A signal during the sleep: the sleep runs to its timeout.
    let t = sleeper(pid, ch, m, 0, Duration::from_millis(300));
    wait_asleep(ch, 1);
    assert!(proc::kill(pid, SIGUSR1));
    assert!(proc::kill(pid, SIGUSR2));
    let s = t.join();
    assert_eq!(Errno(s.rc), Errno::EWOULDBLOCK, "not woken by the signal");
    assert!(s.elapsed >= Duration::from_millis(300), "{:?}", s.elapsed);
    // Signals still pending at entry and at wakeup: the wakeup's 0 stands.
    let t = sleeper(pid, ch, m, 0, LONG);
    wait_asleep(ch, 1);
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !t.is_finished(),
        "a pending signal must not end a sleep without PCATCH"
    );
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    let s = t.join();
    assert_eq!(
        s.rc, 0,
        "without PCATCH a pending signal does not change the result"
    );
    assert!(s.held_after);
}

#[test]
fn msleep_without_holding_the_mutex_panics() {
    const NAME: &str = "msleep_without_holding_the_mutex_panics";
    if is_child(NAME) {
        boot();
        let m = new_mutex();
        let mut t = ts(Duration::from_millis(10));
        // SAFETY: a live mutex the caller does not hold: the simulator must panic.
        unsafe { msleep(chan(&CH), m, 0, c"t".as_ptr(), &mut t) };
        child_survived();
    }
    expect_kernel_panic(NAME, "is not held by the caller");
}

#[test]
fn msleep_with_a_mutex_held_by_another_thread_panics() {
    const NAME: &str = "msleep_with_a_mutex_held_by_another_thread_panics";
    if is_child(NAME) {
        boot();
        let m = new_mutex();
        let mp = P(m);
        std::thread::spawn(move || {
            let mp = mp;
            // SAFETY: live mutex, kept locked by this (finished) thread.
            unsafe { lck_mtx_lock(mp.0) }
        })
        .join()
        .unwrap();
        let mut t = ts(Duration::from_millis(10));
        // SAFETY: the mutex is held, but not by the caller: the simulator must panic.
        unsafe { msleep(chan(&CH), m, 0, c"t".as_ptr(), &mut t) };
        child_survived();
    }
    expect_kernel_panic(NAME, "is not held by the caller");
}
