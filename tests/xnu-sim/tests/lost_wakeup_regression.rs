//! Regression (xnu-sim.md sections 4 and 7): the lost wakeup of an older Mac tun driver, which
//! checked its empty queue under the mutex, *unlocked*, and then called `msleep` with a NULL
//! mutex. A producer that enqueues and calls `wakeup` in that window is lost, and the reader
//! sleeps on with a packet queued. The correct form passes the mutex as the interlock, which
//! `msleep` releases atomically with going to sleep (xnu bsd/kern/kern_synch.c).
//!
//! Deterministic: instead of waiting for perturbation mode's random delay to land a producer in
//! the window, the test runs the producer there itself, from `msleep`'s entry hook
//! (`xnu_sim::sleep::set_sleep_entry_hook`): it enqueues if it can take the mutex at that
//! instant, and otherwise waits for the mutex from another thread, as a racing producer would.
//! The verdict is read from counts, never from a clock: the reader came back with the packet
//! (delivered), or `wakeup` found no sleeper (`lost_wakeups`) and the reader is asleep on the
//! channel (`sleepers_on`) with the packet still queued, where nothing will ever wake it (lost).
//! The buggy form must be lost in every round, the correct form delivered in every round.
//! boot() is once per process, so one test runs both forms.

mod common;

use common::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use xnu_sim::abi::PCATCH;
use xnu_sim::sleep::{lost_wakeups, set_sleep_entry_hook, sleepers_on};

/// Rounds each form gets (each is deterministic; several show that nothing carries over).
const ROUNDS: usize = 20;

/// A kernel mutex handle, shared by the test's threads as the kernel shares it.
#[derive(Clone, Copy)]
struct Mtx(*mut c_void);
// SAFETY: an opaque handle of the simulator's lock table; every use goes through the KPI,
// which is thread-safe.
unsafe impl Send for Mtx {}
// SAFETY: as above.
unsafe impl Sync for Mtx {}

/// The tiny in-test driver: a queue (a count) guarded by a kernel mutex, one channel.
struct Driver {
    mtx: Mtx,
    queued: AtomicUsize,
}

static CHAN: u8 = 0;

/// How a round ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The reader woke and took the packet.
    Delivered,
    /// The wakeup found no sleeper and the reader sleeps with the packet queued.
    Lost,
}

impl Driver {
    fn chan() -> *mut c_void {
        chan(&CHAN)
    }

    /// The producer: enqueue under the mutex, then wakeup (as an output path does).
    fn produce(&self) {
        // SAFETY: a live mutex, taken and released by this thread; a channel address.
        unsafe {
            lck_mtx_lock(self.mtx.0);
            self.queued.fetch_add(1, Ordering::SeqCst);
            lck_mtx_unlock(self.mtx.0);
            wakeup(Self::chan());
        }
    }

    /// The producer at `msleep`'s entry: it enqueues now if the mutex is free at this instant
    /// (true), as it is when the reader dropped it before sleeping; a held mutex keeps it out.
    fn produce_if_unlocked(&self) -> bool {
        // SAFETY: a live mutex; released below when taken; a channel address.
        unsafe {
            if lck_mtx_try_lock(self.mtx.0) == 0 {
                return false;
            }
            self.queued.fetch_add(1, Ordering::SeqCst);
            lck_mtx_unlock(self.mtx.0);
            wakeup(Self::chan());
        }
        true
    }

    /// The reader's dequeue: waits until a packet is queued and takes it.
    fn consume(&self, buggy: bool) {
        // SAFETY: a live mutex; the mutex is held whenever msleep gets it as the interlock.
        unsafe {
            lck_mtx_lock(self.mtx.0);
            while self.queued.load(Ordering::SeqCst) == 0 {
                if buggy {
                    // THE BUG: drop the lock, then sleep with no interlock.
                    lck_mtx_unlock(self.mtx.0);
                    msleep(
                        Self::chan(),
                        std::ptr::null_mut(),
                        PCATCH,
                        c"bug".as_ptr(),
                        std::ptr::null_mut(),
                    );
                    lck_mtx_lock(self.mtx.0);
                } else {
                    msleep(
                        Self::chan(),
                        self.mtx.0,
                        PCATCH,
                        c"ok".as_ptr(),
                        std::ptr::null_mut(),
                    );
                }
            }
            self.queued.fetch_sub(1, Ordering::SeqCst);
            lck_mtx_unlock(self.mtx.0);
        }
    }
}

/// One round: the reader dequeues while the producer races it inside `msleep`'s entry window.
fn round(driver: &Arc<Driver>, buggy: bool) -> Outcome {
    let chan = Driver::chan() as usize;
    let lost_before = lost_wakeups();
    let produced = Arc::new(AtomicBool::new(false));
    let late_producer: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::new(Mutex::new(None));
    let armed = AtomicBool::new(true);
    {
        let (driver, produced, late_producer) =
            (driver.clone(), produced.clone(), late_producer.clone());
        set_sleep_entry_hook(Some(Arc::new(move |c| {
            if c != chan || !armed.swap(false, Ordering::SeqCst) {
                return;
            }
            if driver.produce_if_unlocked() {
                produced.store(true, Ordering::SeqCst);
            } else {
                // The reader still holds the mutex: the producer blocks on it until msleep
                // releases it, atomically with queueing the reader.
                let (driver, produced) = (driver.clone(), produced.clone());
                *late_producer.lock().unwrap() = Some(std::thread::spawn(move || {
                    driver.produce();
                    produced.store(true, Ordering::SeqCst);
                }));
            }
        })));
    }
    let reader = {
        let driver = driver.clone();
        std::thread::spawn(move || driver.consume(buggy))
    };
    let outcome = loop {
        if reader.is_finished() {
            break Outcome::Delivered;
        }
        if produced.load(Ordering::SeqCst)
            && lost_wakeups() > lost_before
            && sleepers_on(chan) == 1
            && driver.queued.load(Ordering::SeqCst) == 1
        {
            break Outcome::Lost;
        }
        std::thread::yield_now();
    };
    set_sleep_entry_hook(None);
    if outcome == Outcome::Lost {
        // Rescue the reader, which would sleep forever, so the next round starts clean.
        // SAFETY: a channel address.
        unsafe { wakeup(Driver::chan()) };
    }
    reader.join().unwrap();
    if let Some(p) = late_producer.lock().unwrap().take() {
        p.join().unwrap();
    }
    assert_eq!(
        driver.queued.load(Ordering::SeqCst),
        0,
        "the packet was taken"
    );
    assert!(
        produced.load(Ordering::SeqCst),
        "the producer ran in the window"
    );
    outcome
}

#[test]
fn unlock_then_msleep_with_a_null_mutex_loses_the_wakeup() {
    // Strict: no random delays or spurious wakeups; the schedule is the entry hook's.
    boot();
    let driver = Arc::new(Driver {
        mtx: Mtx(new_mutex()),
        queued: AtomicUsize::new(0),
    });
    for round_no in 0..ROUNDS {
        let before = lost_wakeups();
        assert_eq!(
            round(&driver, true),
            Outcome::Lost,
            "round {round_no}: \"unlock, then msleep(NULL mutex)\" with a producer in the \
             window must lose the wakeup"
        );
        assert_eq!(lost_wakeups() - before, 1, "exactly the producer's wakeup");
    }
    for round_no in 0..ROUNDS {
        let before = lost_wakeups();
        assert_eq!(
            round(&driver, false),
            Outcome::Delivered,
            "round {round_no}: msleep with the mutex as interlock lost a wakeup: the \
             simulator's release-and-sleep is not atomic"
        );
        assert_eq!(lost_wakeups(), before, "no wakeup without a sleeper");
    }
}
