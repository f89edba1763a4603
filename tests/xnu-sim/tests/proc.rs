//! The process KPI (xnu bsd/kern/kern_proc.c `proc_selfpid`, `proc_pid`, `proc_selfpgrpid`,
//! `proc_find`, `proc_rele`, `proc_signal` → bsd/kern/kern_sig.c `psignal`; bsd/kern/bsd_stubs.c
//! `current_proc`): answers follow the calling thread's process, `proc_find` references are
//! counted until released, and signals reach live processes only.

mod common;

use common::*;
use std::ffi::c_int;
use std::time::Duration;
use xnu_sim::abi::{proc_t, PCATCH};
use xnu_sim::proc::{
    exit_process, set_current_pid, set_pgid, signals_received, spawn_process, spawn_thread,
    INIT_PID, KERNEL_PID,
};
use xnu_sim::{leaks, Errno};

extern "C" {
    fn proc_selfpid() -> c_int;
    fn proc_pid(p: proc_t) -> c_int;
    fn proc_selfpgrpid() -> c_int;
    fn proc_find(pid: c_int) -> proc_t;
    fn proc_rele(p: proc_t) -> c_int;
    fn proc_signal(pid: c_int, sig: c_int);
}

const SIGTERM: i32 = 15;
const SIGIO: i32 = 23;

/// (proc_selfpid, proc_pid(current_proc)) of the calling thread.
fn who() -> (i32, i32) {
    // SAFETY: plain KPI calls; current_proc is never NULL.
    unsafe {
        let p = current_proc();
        assert!(!p.is_null(), "current_proc is never NULL");
        (proc_selfpid(), proc_pid(p))
    }
}

#[test]
fn current_proc_and_selfpid_follow_the_calling_thread() {
    boot();
    assert_eq!(
        who(),
        (INIT_PID, INIT_PID),
        "a thread that names no process"
    );
    let a = spawn_process(501);
    let b = spawn_process(502);
    assert_ne!(a, b);
    assert_eq!(spawn_thread(a, who).join(), (a, a));
    assert_eq!(spawn_thread(b, who).join(), (b, b));
    assert_eq!(
        spawn_thread(KERNEL_PID, who).join(),
        (0, 0),
        "kernel threads"
    );
    // Another thread's process does not leak into this one; moving this thread does.
    assert_eq!(who(), (INIT_PID, INIT_PID));
    set_current_pid(b);
    assert_eq!(who(), (b, b));
}

#[test]
fn selfpgrpid_is_the_process_group() {
    boot();
    // SAFETY: plain KPI call.
    let pgrp = || unsafe { proc_selfpgrpid() };
    assert_eq!(pgrp(), INIT_PID);
    let leader = spawn_process(501);
    let member = spawn_process(501);
    assert_eq!(
        spawn_thread(member, pgrp).join(),
        member,
        "a group of its own"
    );
    set_pgid(member, leader);
    assert_eq!(spawn_thread(member, pgrp).join(), leader);
    assert_eq!(spawn_thread(leader, pgrp).join(), leader);
    assert_eq!(who().0, INIT_PID, "proc_selfpid is not the group");
}

#[test]
fn proc_find_references_must_be_released() {
    const NAME: &str = "proc_find_references_must_be_released";
    if is_child(NAME) {
        boot();
        let pid = spawn_process(501);
        // SAFETY: one reference released twice: the second release must panic.
        unsafe {
            let p = proc_find(pid);
            proc_rele(p);
            proc_rele(p);
        }
        child_survived();
    }
    boot();
    let pid = spawn_process(501);
    // SAFETY: references taken with proc_find and released once each.
    unsafe {
        let p = proc_find(pid);
        assert!(!p.is_null());
        assert_eq!(proc_pid(p), pid);
        let q = proc_find(pid);
        assert_eq!(proc_pid(q), pid);
        assert_eq!(leaks().proc_refs, 2, "each proc_find is a reference");
        assert_eq!(proc_rele(p), 0);
        assert_eq!(leaks().proc_refs, 1);
        assert_eq!(proc_rele(q), 0);
        assert_eq!(leaks().proc_refs, 0);
        assert!(proc_find(99_999).is_null(), "no such pid");
        exit_process(pid);
        assert!(proc_find(pid).is_null(), "an exited process");
    }
    assert_eq!(leaks().proc_refs, 0);
    expect_kernel_panic(NAME, "proc_rele without proc_find");
}

/// A thread of `pid` sleeping interruptibly (`PCATCH`) on `chan` for at most `limit`, then a
/// signal `sig` posted with `proc_signal`: the sleep's result.
fn sleep_and_signal(pid: i32, sig: i32, limit: Duration) -> c_int {
    static CHAN: u8 = 0;
    let m = new_mutex() as usize;
    let sleeper = spawn_thread(pid, move || {
        let m = m as *mut std::ffi::c_void;
        let mut t = ts(limit);
        // SAFETY: the mutex is held across msleep, which retakes it.
        unsafe {
            lck_mtx_lock(m);
            let rc = msleep(chan(&CHAN), m, PCATCH, c"proctest".as_ptr(), &mut t);
            lck_mtx_unlock(m);
            rc
        }
    });
    assert!(
        wait_until(Duration::from_secs(5), || xnu_sim::sleep::sleepers_on(
            chan(&CHAN) as usize
        ) == 1),
        "the thread went to sleep"
    );
    // SAFETY: plain KPI call.
    unsafe { proc_signal(pid, sig) };
    sleeper.join()
}

#[test]
fn proc_signal_posts_to_a_live_process_only() {
    boot();
    let pid = spawn_process(501);
    // A signal whose default action is to terminate ends a PCATCH sleep (no handler: EINTR).
    let rc = sleep_and_signal(pid, SIGTERM, Duration::from_secs(10));
    assert_eq!(rc, Errno::EINTR.0, "SIGTERM interrupts the sleep");
    assert_eq!(signals_received(pid), vec![SIGTERM]);

    // SIGIO is ignored by default: delivered, but a sleeper without a handler sleeps on.
    let quiet = spawn_process(501);
    let rc = sleep_and_signal(quiet, SIGIO, Duration::from_millis(300));
    assert_eq!(
        rc,
        Errno::EWOULDBLOCK.0,
        "an ignored signal does not interrupt"
    );
    assert_eq!(signals_received(quiet), vec![SIGIO]);

    // A pid that does not exist (or exited): nothing happens.
    let gone = spawn_process(501);
    exit_process(gone);
    // SAFETY: plain KPI calls.
    unsafe {
        proc_signal(gone, SIGTERM);
        proc_signal(99_999, SIGTERM);
    }
    assert!(signals_received(gone).is_empty());
    assert!(signals_received(99_999).is_empty());
    assert_eq!(signals_received(pid), vec![SIGTERM], "no stray delivery");
}
