//! select(2) over a recording test driver: the "laws of VNOP_SELECT" (xnu bsd/sys/select.h,
//! bsd/kern/sys_generic.c): `d_select` returning 1 means ready; a `selrecord` followed later
//! by `selwakeup` wakes the select; a `selwakeup` between the poll and the sleep is not lost;
//! the timeout; `selthreadclear` drops the record and wakes the waiter.

mod common;

use common::testdrv::{self, calls, clear_calls, script, selinfo, Call};
use common::*;
use std::time::{Duration, Instant};
use xnu_sim::abi::{FREAD, FWRITE};
use xnu_sim::syscalls::{self as sys, O_RDWR};
use xnu_sim::Fd;

fn setup() -> Fd {
    boot();
    testdrv::install("simdev");
    let fd = sys::open("/dev/simdev", O_RDWR).unwrap();
    clear_calls();
    fd
}

fn selects() -> Vec<i32> {
    calls()
        .iter()
        .filter_map(|c| match c {
            Call::Select { which, .. } => Some(*which),
            _ => None,
        })
        .collect()
}

/// Sends the selinfo address to another thread.
#[derive(Clone, Copy)]
struct Sip(*mut std::ffi::c_void);
// SAFETY: an address the simulator uses as a key.
unsafe impl Send for Sip {}

#[test]
fn d_select_returning_1_means_ready() {
    let fd = setup();
    script(|s| s.ready = true);
    let start = Instant::now();
    let (r, w) = sys::select(&[fd], &[fd], Some(Duration::from_secs(10))).unwrap();
    assert_eq!((r, w), (vec![fd], vec![fd]));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        selects(),
        vec![FREAD, FWRITE],
        "which = FREAD / FWRITE per set"
    );
    assert_eq!(xnu_sim::leaks().select_records, 0);
}

#[test]
fn record_then_later_selwakeup_wakes_the_select() {
    let fd = setup();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let r = sys::select(&[fd], &[], Some(Duration::from_secs(20)));
        (r, start.elapsed())
    });
    assert!(wait_until(Duration::from_secs(5), || xnu_sim::leaks()
        .select_records
        == 1));
    std::thread::sleep(Duration::from_millis(100)); // asleep by now
    assert!(!t.is_finished(), "not ready: select sleeps");
    assert_eq!(selects(), vec![FREAD]);
    script(|s| s.ready = true);
    let sip = Sip(selinfo());
    // SAFETY: the driver's selinfo.
    unsafe { selwakeup(sip.0) };
    let (r, elapsed) = t.join().unwrap();
    assert_eq!(r.unwrap(), (vec![fd], vec![]));
    assert!(
        elapsed < Duration::from_secs(10),
        "woken, not timed out: {elapsed:?}"
    );
    assert_eq!(
        selects(),
        vec![FREAD, FREAD],
        "polled again after the wakeup"
    );
    assert_eq!(
        xnu_sim::leaks().select_records,
        0,
        "records go with the call"
    );
}

#[test]
fn selwakeup_between_poll_and_sleep_is_not_lost() {
    let fd = setup();
    // d_select records, then data arrives and the driver calls selwakeup, all before
    // select(2) goes to sleep.
    script(|s| s.wake_after_record = true);
    let start = Instant::now();
    let r = sys::select(&[fd], &[], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r, (vec![fd], vec![]));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the early selwakeup was lost: select slept {:?}",
        start.elapsed()
    );
    assert_eq!(selects().len(), 2);
}

#[test]
fn select_times_out() {
    let fd = setup();
    let start = Instant::now();
    let r = sys::select(&[fd], &[], Some(Duration::from_millis(200))).unwrap();
    assert_eq!(r, (vec![], vec![]), "nothing ready");
    assert!(start.elapsed() >= Duration::from_millis(200));
    // A zero timeout polls once.
    clear_calls();
    let r = sys::select(&[fd], &[], Some(Duration::ZERO)).unwrap();
    assert_eq!(r, (vec![], vec![]));
    assert_eq!(selects(), vec![FREAD]);
    assert_eq!(xnu_sim::leaks().select_records, 0);
}

#[test]
fn selwakeup_on_another_selinfo_does_not_wake() {
    let fd = setup();
    static OTHER: [u64; 8] = [0; 8];
    let t = std::thread::spawn(move || sys::select(&[fd], &[], Some(Duration::from_millis(400))));
    assert!(wait_until(Duration::from_secs(5), || xnu_sim::leaks()
        .select_records
        == 1));
    script(|s| s.ready = true);
    // SAFETY: an address used only as a key.
    unsafe { selwakeup(OTHER.as_ptr().cast_mut().cast()) };
    let r = t.join().unwrap().unwrap();
    assert_eq!(selects().len(), 1, "not polled again: not woken");
    assert_eq!(r, (vec![], vec![]), "timed out");
}

#[test]
fn selthreadclear_drops_the_record_and_wakes_the_waiter() {
    let fd = setup();
    let t = std::thread::spawn(move || sys::select(&[fd], &[], Some(Duration::from_secs(2))));
    assert!(wait_until(Duration::from_secs(5), || xnu_sim::leaks()
        .select_records
        == 1));
    std::thread::sleep(Duration::from_millis(50));
    // The storage is going away: the driver stops recording, and clears.
    script(|s| s.record = false);
    let sip = Sip(selinfo());
    // SAFETY: the driver's selinfo.
    unsafe { selthreadclear(sip.0) };
    assert_eq!(
        xnu_sim::leaks().select_records,
        0,
        "selthreadclear removes the pending record"
    );
    assert!(
        wait_until(Duration::from_millis(1500), || selects().len() >= 2),
        "the waiter was woken (and polled again) instead of sleeping on freed storage"
    );
    let r = t.join().unwrap().unwrap();
    assert_eq!(
        r,
        (vec![], vec![]),
        "still not ready: it ends at its timeout"
    );
    // SAFETY: a selwakeup on cleared storage is harmless.
    unsafe { selwakeup(sip.0) };
    assert_eq!(xnu_sim::leaks().select_records, 0);
}

/// The second pass of `select` (bsd/kern/sys_generic.c `selprocess` after a wakeup, `selscan`
/// with `SEL_SECONDPASS`) calls `d_select` with a NULL wait-queue link, and `selrecord` with a
/// NULL link records nothing ("do not record if this is second pass of select"). A timeout
/// makes no second pass.
#[test]
fn second_pass_passes_a_null_wql_and_selrecord_ignores_it() {
    let fd = setup();
    // Not ready: the first pass records; data arrives right after, the select is woken.
    script(|s| s.wake_after_record = true);
    let r = sys::select(&[fd], &[], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r, (vec![fd], vec![]));
    let passes: Vec<bool> = calls()
        .iter()
        .filter_map(|c| match c {
            Call::Select { null_wql, .. } => Some(*null_wql),
            _ => None,
        })
        .collect();
    assert_eq!(
        passes,
        vec![false, true],
        "first pass with a link, second with NULL"
    );
    assert_eq!(xnu_sim::syscalls::select_second_passes(), 1);
    // The driver called selrecord(NULL) on that second pass: nothing is recorded.
    script(|s| s.ready = false);
    clear_calls();
    let _ = selrecord_null();
    assert_eq!(xnu_sim::leaks().select_records, 0);
    // A timeout ends the call without a second pass.
    let r = sys::select(&[fd], &[], Some(Duration::from_millis(20))).unwrap();
    assert_eq!(r, (vec![], vec![]));
    assert_eq!(xnu_sim::syscalls::select_second_passes(), 1);
}

/// `selrecord` with a NULL link, as a driver's `d_select` makes it on a second pass.
fn selrecord_null() -> usize {
    // SAFETY: the driver's selinfo storage; a NULL link is what XNU passes on a second pass.
    unsafe { selrecord(std::ptr::null_mut(), selinfo(), std::ptr::null_mut()) };
    xnu_sim::leaks().select_records
}
