//! The gate every entry point passes (docs/tun-contract.md section 11, ST-1..ST-3).
//!
//! The gate counts threads inside the driver: every device entry point and ifnet callback
//! holds a [`GateRef`] from entry to its one exit. Unload closes the gate, refuses while the
//! count is non-zero, and otherwise waits for it to drain before tearing anything down, so an
//! entry point can never run against freed state.

use crate::kpi::errno::Errno;
use crate::kpi::lock::{wakeup, Channel, KGuard};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// Threads inside the driver, and the unload flags.
///
/// Lock coverage: none; plain atomics, so that a caller arriving after unload freed every lock
/// (it fetched a cdevsw or ifnet pointer just before they went) touches only static memory.
/// `stopping` and `dying` are written only by load and unload, which the kernel serialises;
/// unload reads the count under the driver's global mutex.
struct Gate {
    /// Threads between entry and exit of an entry point.
    inflight: AtomicUsize,
    /// An unload attempt is checking whether the driver is idle (ST-1).
    stopping: AtomicBool,
    /// Unload has committed: no new entry, reads and selects answer `ENXIO` (ST-2).
    dying: AtomicBool,
}

static GATE: Gate = Gate {
    inflight: AtomicUsize::new(0),
    stopping: AtomicBool::new(false),
    dying: AtomicBool::new(false),
};

/// A thread's pass through the gate; dropping it is the entry point's one exit.
pub struct GateRef(());

/// Enters the driver; `ENXIO` once unload has committed (U-7).
///
/// While an unload attempt is still deciding, the thread waits for the decision instead of
/// failing: it is already counted, so the attempt either saw it and refuses (the call then
/// goes on as if nothing happened, ST-1 "nothing changed"; a `close` that failed here would
/// leave its unit open for ever), or decided before the count went up and commits. The wait
/// touches only these statics: a late caller may arrive after unload freed every lock.
pub fn enter() -> Result<GateRef, Errno> {
    GATE.inflight.fetch_add(1, SeqCst);
    while GATE.stopping.load(SeqCst) {
        if GATE.dying.load(SeqCst) {
            exit();
            return Err(Errno::ENXIO);
        }
        core::hint::spin_loop();
    }
    Ok(GateRef(()))
}

/// Counts the caller as inside without the unload check: for the `detached` callback, which
/// unload itself waits for and so must run while unload has committed. Unload drains the gate
/// again before it frees the locks (ST-4), so the callback is out of the unit mutex, guard and
/// all, by then.
pub fn enter_unchecked() -> GateRef {
    GATE.inflight.fetch_add(1, SeqCst);
    GateRef(())
}

/// Leaves the driver. Touches no lock: unload polls the count while it drains (a wakeup sent
/// before its sleep only shortens that poll), so it can never free a mutex a leaving thread
/// is about to take.
fn exit() {
    if GATE.inflight.fetch_sub(1, SeqCst) == 1 && GATE.dying.load(SeqCst) {
        wakeup(Channel::of(&GATE));
    }
}

impl Drop for GateRef {
    fn drop(&mut self) {
        exit();
    }
}

/// Whether unload has committed (reads and selects then fail with `ENXIO`).
pub fn is_dying() -> bool {
    GATE.dying.load(SeqCst)
}

/// Load: the gate open and empty (the same static storage serves every load of the kext).
pub fn reset() {
    GATE.inflight.store(0, SeqCst);
    GATE.stopping.store(false, SeqCst);
    GATE.dying.store(false, SeqCst);
}

/// ST-1: closes the gate while unload looks; whether a thread is inside. An entry that
/// raced past the gate is counted.
pub fn close_and_look() -> bool {
    GATE.stopping.store(true, SeqCst);
    GATE.inflight.load(SeqCst) != 0
}

/// Unload refused, or failed after committing: the gate opens again (ST-1, ST-2, ST-3).
pub fn reopen() {
    GATE.dying.store(false, SeqCst);
    GATE.stopping.store(false, SeqCst);
}

/// ST-2: unload commits; new entries fail with `ENXIO`.
pub fn commit() {
    GATE.dying.store(true, SeqCst);
}

/// ST-2, ST-4: waits, sleeping on `held`'s mutex, until every thread inside has left.
pub fn drain<T>(held: &mut KGuard<'_, T>) {
    while GATE.inflight.load(SeqCst) != 0 {
        held.sleep_timeout(Channel::of(&GATE), 10);
    }
}
