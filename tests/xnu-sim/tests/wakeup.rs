//! `wakeup` and `wakeup_one` (xnu bsd/kern/kern_synch.c): a wakeup with no sleeper is lost
//! (no counting), `wakeup_one` wakes exactly one sleeper, `wakeup` wakes them all, and only
//! on their own channel.

mod common;

use common::*;
use std::ffi::c_void;
use std::thread::JoinHandle;
use std::time::Duration;
use xnu_sim::sleep::{lost_wakeups, sleepers_on};
use xnu_sim::Errno;

#[derive(Clone, Copy)]
struct P(*mut c_void);
// SAFETY: opaque kernel handles / channel addresses.
unsafe impl Send for P {}

fn sleeper(ch: *mut c_void, m: *mut c_void, timeout: Duration) -> JoinHandle<i32> {
    let (ch, m) = (P(ch), P(m));
    std::thread::spawn(move || {
        let (ch, m) = (ch, m);
        let mut t = ts(timeout);
        // SAFETY: live mutex, valid timespec.
        unsafe {
            lck_mtx_lock(m.0);
            let rc = msleep(ch.0, m.0, 0, c"w".as_ptr(), &mut t);
            lck_mtx_unlock(m.0);
            rc
        }
    })
}

fn wait_count(ch: *mut c_void, n: usize) {
    assert!(
        wait_until(Duration::from_secs(5), || sleepers_on(ch as usize) == n),
        "expected {n} sleepers, have {}",
        sleepers_on(ch as usize)
    );
}

static A: u8 = 0;
static B: u8 = 0;

#[test]
fn a_wakeup_with_no_sleeper_is_lost() {
    boot();
    let m = new_mutex();
    let ch = chan(&A);
    let before = lost_wakeups();
    // SAFETY: a channel address.
    unsafe { wakeup(ch) };
    assert_eq!(lost_wakeups(), before + 1, "counted as lost");
    // SAFETY: a channel address.
    unsafe { wakeup_one(ch.cast()) };
    assert_eq!(lost_wakeups(), before + 2);
    // A later sleeper is not woken by it: it times out.
    let rc = sleeper(ch, m, Duration::from_millis(150)).join().unwrap();
    assert_eq!(Errno(rc), Errno::EWOULDBLOCK, "no wakeup counting");
}

#[test]
fn wakeup_one_wakes_exactly_one_of_several_sleepers() {
    boot();
    let m = new_mutex();
    let ch = chan(&A);
    let threads: Vec<_> = (0..3)
        .map(|_| sleeper(ch, m, Duration::from_secs(20)))
        .collect();
    wait_count(ch, 3);
    for left in [2, 1, 0] {
        // SAFETY: a channel address.
        unsafe { wakeup_one(ch.cast()) };
        wait_count(ch, left);
        assert!(wait_until(Duration::from_secs(5), || threads
            .iter()
            .filter(|t| t.is_finished())
            .count()
            == 3 - left));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            sleepers_on(ch as usize),
            left,
            "wakeup_one must wake exactly one sleeper"
        );
        assert_eq!(threads.iter().filter(|t| t.is_finished()).count(), 3 - left);
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), 0, "woken, not timed out");
    }
    let before = lost_wakeups();
    // SAFETY: a channel address.
    unsafe { wakeup_one(ch.cast()) };
    assert_eq!(lost_wakeups(), before + 1, "nobody left: lost");
}

#[test]
fn wakeup_wakes_every_sleeper_on_its_channel_only() {
    boot();
    let m = new_mutex();
    let (a, b) = (chan(&A), chan(&B));
    let on_a: Vec<_> = (0..3)
        .map(|_| sleeper(a, m, Duration::from_secs(20)))
        .collect();
    let on_b = sleeper(b, m, Duration::from_millis(600));
    wait_count(a, 3);
    wait_count(b, 1);
    // SAFETY: a channel address.
    unsafe { wakeup(a) };
    for t in on_a {
        assert_eq!(t.join().unwrap(), 0, "every sleeper on the channel wakes");
    }
    assert_eq!(
        Errno(on_b.join().unwrap()),
        Errno::EWOULDBLOCK,
        "a sleeper on another channel is not woken"
    );
}
