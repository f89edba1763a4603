//! Regression (xnu-sim.md sections 4 and 7): the lost wakeup of an older Mac tun driver, which
//! checked its empty queue under the mutex, *unlocked*, and then called `msleep` with a NULL
//! mutex. A producer that enqueues and calls `wakeup` in that window is lost, and the reader
//! sleeps until its timeout. The correct form passes the mutex as the interlock, which
//! `msleep` releases atomically with going to sleep (xnu bsd/kern/kern_synch.c).
//!
//! Under `Config::perturbed(seed)` the simulator must expose the buggy form within a bounded
//! number of producer/consumer rounds, and the correct form must never lose a wakeup over the
//! same rounds. boot() is once per process, so one test runs both loops.

mod common;

use common::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use xnu_sim::abi::PCATCH;
use xnu_sim::Errno;

/// Rounds each form gets.
const ROUNDS: usize = 1000;
/// The reader's sleep timeout. A lost wakeup costs this much; the buggy loop stops at the
/// first one.
const TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Clone, Copy)]
struct P(*mut c_void);
// SAFETY: kernel handles and channel addresses, shared as in the kernel.
unsafe impl Send for P {}
unsafe impl Sync for P {}

/// The tiny in-test driver: a queue (a count) guarded by a kernel mutex, one channel.
struct Driver {
    mtx: P,
    queued: AtomicUsize,
}

static CHAN: u8 = 0;

impl Driver {
    fn chan() -> *mut c_void {
        chan(&CHAN)
    }

    /// The producer: enqueue under the mutex, then wakeup (as an output path does).
    fn produce(&self) {
        // SAFETY: live mutex, a channel address.
        unsafe {
            lck_mtx_lock(self.mtx.0);
            self.queued.fetch_add(1, Ordering::SeqCst);
            lck_mtx_unlock(self.mtx.0);
            wakeup(Self::chan());
        }
    }

    /// The reader: waits until a packet is queued and takes it. Returns the msleep calls that
    /// timed out although the producer's wakeup had already been issued before their deadline
    /// (`woke_at` is set by the producer right after its wakeup returned).
    fn consume(&self, buggy: bool, woke_at: &Mutex<Option<Instant>>) -> usize {
        let mut lost = 0;
        // SAFETY: live mutex; valid timespec; the mutex is held whenever msleep gets it.
        unsafe {
            lck_mtx_lock(self.mtx.0);
            while self.queued.load(Ordering::SeqCst) == 0 {
                let mut t = ts(TIMEOUT);
                let deadline = Instant::now() + TIMEOUT;
                let rc = if buggy {
                    // THE BUG: drop the lock, then sleep with no interlock.
                    lck_mtx_unlock(self.mtx.0);
                    let rc = msleep(
                        Self::chan(),
                        std::ptr::null_mut(),
                        PCATCH,
                        c"bug".as_ptr(),
                        &mut t,
                    );
                    lck_mtx_lock(self.mtx.0);
                    rc
                } else {
                    msleep(Self::chan(), self.mtx.0, PCATCH, c"ok".as_ptr(), &mut t)
                };
                if Errno(rc) == Errno::EWOULDBLOCK
                    && woke_at.lock().unwrap().is_some_and(|w| w < deadline)
                {
                    lost += 1;
                }
            }
            self.queued.fetch_sub(1, Ordering::SeqCst);
            lck_mtx_unlock(self.mtx.0);
        }
        lost
    }
}

/// Runs up to `ROUNDS` rounds of one producer thread racing the reader; returns the round of
/// the first lost wakeup, if any.
fn rounds(driver: &Arc<Driver>, buggy: bool) -> Option<usize> {
    for round in 0..ROUNDS {
        let woke_at = Arc::new(Mutex::new(None));
        let go = Arc::new(Barrier::new(2));
        let producer = {
            let (driver, woke_at, go) = (driver.clone(), woke_at.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                xnu_sim::config::perturb_point();
                driver.produce();
                *woke_at.lock().unwrap() = Some(Instant::now());
            })
        };
        go.wait();
        let lost = driver.consume(buggy, &woke_at);
        producer.join().unwrap();
        assert_eq!(driver.queued.load(Ordering::SeqCst), 0);
        if lost > 0 {
            return Some(round);
        }
    }
    None
}

#[test]
fn perturbation_catches_unlock_then_msleep_with_a_null_mutex() {
    let seed: u64 = std::env::var("XNUSIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    xnu_sim::boot(xnu_sim::Config::perturbed(seed));
    let driver = Arc::new(Driver {
        mtx: P(new_mutex()),
        queued: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let buggy = rounds(&driver, true);
    eprintln!(
        "seed {seed}: buggy form lost a wakeup at round {buggy:?} ({:?})",
        started.elapsed()
    );
    assert!(
        buggy.is_some(),
        "seed {seed}: perturbation mode did not expose the lost wakeup of \
         \"unlock, then msleep(NULL mutex)\" within {ROUNDS} rounds (replay with XNUSIM_SEED={seed})"
    );
    let started = Instant::now();
    let correct = rounds(&driver, false);
    eprintln!(
        "seed {seed}: correct form: {correct:?} in {:?}",
        started.elapsed()
    );
    assert_eq!(
        correct, None,
        "seed {seed}: msleep with the mutex as interlock lost a wakeup at round {correct:?}: \
         the simulator's release-and-sleep is not atomic (replay with XNUSIM_SEED={seed})"
    );
}
