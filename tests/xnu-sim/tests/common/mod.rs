//! Helpers shared by the simulator's own tests (xnu-sim.md section 7): boot, child-process
//! checks of kernel panics, KPI declarations, and a small recording test driver.
#![allow(dead_code)]

pub mod testdrv;

use std::ffi::{c_char, c_int, c_void};
use std::process::Command;
use std::time::{Duration, Instant};
use xnu_sim::abi::{ifnet_t, mbuf_how_t, mbuf_t, proc_t, timespec, uio_t};

/// The environment variable that tells a re-run test binary which scenario it is.
const CHILD_ENV: &str = "XNUSIM_CHILD_SCENARIO";

/// Boots a strict simulated kernel (one per process: nextest runs each test in its own).
pub fn boot() {
    xnu_sim::boot(xnu_sim::Config::strict());
}

/// Whether this process is the child re-run of `test` made by [`expect_kernel_panic`].
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test)
}

/// Re-runs this test binary for `test` alone in a child process (where [`is_child`] is true
/// and the test performs the action that must panic) and asserts the child died and printed
/// `expected`. A panic inside a KPI function aborts its process, so it cannot be caught
/// in-process.
pub fn expect_kernel_panic(test: &str, expected: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args([test, "--exact", "--include-ignored", "--nocapture"])
        .env(CHILD_ENV, test)
        .output()
        .expect("re-run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "child run of {test} was expected to panic with {expected:?} but succeeded:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(expected) || stdout.contains(expected),
        "child run of {test} died ({:?}) without the expected message {expected:?}:\n{stdout}\n{stderr}",
        out.status
    );
}

/// The body of a child scenario returned: the action did not panic. Exit with success so the
/// parent's assertion reports it.
pub fn child_survived() -> ! {
    eprintln!("child scenario finished without a kernel panic");
    std::process::exit(0);
}

extern "C" {
    pub fn lck_grp_alloc_init(name: *const c_char, attr: *mut c_void) -> *mut c_void;
    pub fn lck_mtx_alloc_init(grp: *mut c_void, attr: *mut c_void) -> *mut c_void;
    pub fn lck_mtx_lock(m: *mut c_void);
    pub fn lck_mtx_unlock(m: *mut c_void);
    pub fn lck_mtx_try_lock(m: *mut c_void) -> c_int;
    pub fn msleep(
        chan: *mut c_void,
        mtx: *mut c_void,
        pri: c_int,
        wmesg: *const c_char,
        ts: *mut timespec,
    ) -> c_int;
    pub fn wakeup(chan: *mut c_void);
    pub fn wakeup_one(chan: *mut c_char);
    pub fn selrecord(p: proc_t, sip: *mut c_void, wql: *mut c_void);
    pub fn selwakeup(sip: *mut c_void);
    pub fn selthreadclear(sip: *mut c_void);
    pub fn current_proc() -> proc_t;
    pub fn uiomove(cp: *const c_char, n: c_int, uio: uio_t) -> c_int;
    pub fn uio_resid(uio: uio_t) -> i64;
    pub fn mbuf_allocpacket(
        how: mbuf_how_t,
        len: usize,
        maxchunks: *mut u32,
        out: *mut mbuf_t,
    ) -> c_int;
    pub fn mbuf_freem(m: mbuf_t);
    pub fn mbuf_next(m: mbuf_t) -> mbuf_t;
    pub fn mbuf_len(m: mbuf_t) -> usize;
    pub fn mbuf_data(m: mbuf_t) -> *mut c_void;
    pub fn mbuf_pkthdr_len(m: mbuf_t) -> usize;
    pub fn mbuf_pkthdr_setrcvif(m: mbuf_t, ifp: ifnet_t) -> c_int;
    pub fn mbuf_copydata(m: mbuf_t, off: usize, len: usize, out: *mut c_void) -> c_int;
    pub fn mbuf_copyback(
        m: mbuf_t,
        off: usize,
        len: usize,
        data: *const c_void,
        how: mbuf_how_t,
    ) -> c_int;
}

/// A fresh kernel mutex (and its group).
pub fn new_mutex() -> *mut c_void {
    // SAFETY: KPI calls with a NUL-terminated name and a live group.
    unsafe {
        let grp = lck_grp_alloc_init(c"xnusim-test".as_ptr(), std::ptr::null_mut());
        assert!(!grp.is_null());
        let m = lck_mtx_alloc_init(grp, std::ptr::null_mut());
        assert!(!m.is_null());
        m
    }
}

/// A relative timeout for `msleep`.
pub fn ts(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// The `m_len` of every segment of a chain, following `next`.
pub fn segment_lengths(m: mbuf_t) -> Vec<usize> {
    let mut out = Vec::new();
    let mut cur = m;
    while !cur.is_null() {
        // SAFETY: live mbufs of one chain.
        unsafe {
            out.push(mbuf_len(cur));
            cur = mbuf_next(cur);
        }
    }
    out
}

/// An address usable as a sleep channel, distinct per call site.
pub fn chan(x: &'static u8) -> *mut c_void {
    (x as *const u8).cast_mut().cast()
}
