//! Load and unload (tun-contract.md section 11), and the gate every entry point passes.
//!
//! The gate counts threads inside the driver: every device entry point and ifnet callback
//! holds a [`GateRef`] from entry to its one exit. Unload refuses while the count is non-zero
//! or a unit is open, and otherwise waits for it to drain before tearing anything down, so an
//! entry point can never run against freed state.

use crate::errno::Errno;
use crate::klog;
use crate::kpi::ifnet::{self, AF_INET, AF_INET6};
use crate::kpi::lock::{wakeup, Channel, Interruptible, KMutex, LockGroup};
use crate::kpi::nodes::{self, DevNode, Major};
use crate::limits::TUN_UNITS;
use crate::unit::{Setup, Unit, UnitState, UNITS};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};

/// Threads inside the driver, and the unload flags.
///
/// Lock coverage: none; plain atomics, so that a caller arriving after unload freed every lock
/// (it fetched a cdevsw or ifnet pointer just before they went) touches only static memory.
/// `stopping` and `dying` are written only by `start`/`stop`, which the kernel serialises;
/// `stop` reads the count under the global mutex.
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

/// Driver-wide registrations. Guarded by the global kernel mutex; unload sleeps on it while
/// the gate drains.
struct Registrations {
    major: Option<Major>,
    nodes: [Option<DevNode>; TUN_UNITS],
}

static GLOBAL: KMutex<Registrations> = KMutex::new(Registrations {
    major: None,
    nodes: [const { None }; TUN_UNITS],
});

/// The lock group every driver mutex comes from. A spin lock: taken only at load and unload,
/// never across a sleep.
static LOCK_GROUP: spin::Mutex<Option<LockGroup>> = spin::Mutex::new(None);

/// The driver-wide debug level (`TUNSDEBUG`/`TUNGDEBUG`, default 0). Non-zero: each close
/// logs the unit's counters (section 12). An atomic: read and written without any lock.
static DEBUG_LEVEL: AtomicI32 = AtomicI32::new(0);

/// The debug level.
pub fn debug_level() -> i32 {
    DEBUG_LEVEL.load(SeqCst)
}

/// Sets the debug level (`TUNSDEBUG`).
pub fn set_debug_level(level: i32) {
    DEBUG_LEVEL.store(level, SeqCst);
}

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

/// kmod start (LD-1..LD-4): locks, the cdevsw entry, then `/dev/tun0..15`. No ifnet yet. On
/// any failure everything done so far is undone.
pub fn start() -> Result<(), Errno> {
    // Nothing is registered yet, so no other thread can see this state: start fresh (the same
    // static storage serves every load of the kext).
    GLOBAL.replace_unshared(Registrations {
        major: None,
        nodes: [const { None }; TUN_UNITS],
    });
    for unit in &UNITS {
        unit.state.replace_unshared(UnitState::new());
        unit.counters.reset();
    }
    GATE.inflight.store(0, SeqCst);
    GATE.stopping.store(false, SeqCst);
    GATE.dying.store(false, SeqCst);
    DEBUG_LEVEL.store(0, SeqCst);

    let group = LockGroup::new(c"org.tunnelkext.tunnel")?;
    if let Err(e) = install_mutexes(&group) {
        uninstall_mutexes(&group);
        group.free();
        return Err(e);
    }
    *LOCK_GROUP.lock() = Some(group);

    let registered = crate::iface::find_tag_id(c"org.tunnelkext.tunnel")
        .and_then(|()| register_devices(&mut GLOBAL.lock()))
        .and_then(|()| register_plumbers());
    if let Err(e) = registered {
        unregister_devices(&mut GLOBAL.lock());
        free_locks();
        return Err(e);
    }
    Ok(())
}

/// The protocol families the driver plumbs onto its interfaces (U-8).
const PLUMBED: [u32; 2] = [AF_INET, AF_INET6];

/// LD-4: registers the plumbers of U-8. `EEXIST` means another tun driver registered them
/// first; it is named in the log and everything registered here is undone.
fn register_plumbers() -> Result<(), Errno> {
    for (done, &family) in PLUMBED.iter().enumerate() {
        if let Err(e) = ifnet::register_plumber(family) {
            if e == Errno::EEXIST {
                klog!(
                    "another tun driver (tuntaposx, Tunnelblick's tun) is loaded: it owns the plumber for protocol family {} on tun interfaces; unload it first",
                    family
                );
            } else {
                klog!(
                    "proto_register_plumber({}) failed: errno {}",
                    family,
                    e.code()
                );
            }
            PLUMBED[..done]
                .iter()
                .for_each(|&f| ifnet::unregister_plumber(f));
            return Err(e);
        }
    }
    Ok(())
}

fn install_mutexes(group: &LockGroup) -> Result<(), Errno> {
    GLOBAL.install(group)?;
    for unit in &UNITS {
        unit.state.install(group)?;
    }
    Ok(())
}

fn uninstall_mutexes(group: &LockGroup) {
    for unit in &UNITS {
        unit.state.uninstall(group);
    }
    GLOBAL.uninstall(group);
}

fn free_locks() {
    if let Some(group) = LOCK_GROUP.lock().take() {
        uninstall_mutexes(&group);
        group.free();
    }
}

/// LD-1, LD-2: the cdevsw entry (if not there yet), then `/dev/tun0..15`.
fn register_devices(global: &mut Registrations) -> Result<(), Errno> {
    let major = match global.major {
        Some(major) => major,
        None => {
            let Some(major) = nodes::cdevsw_add() else {
                klog!("no free character-device major");
                return Err(Errno::EBUSY);
            };
            global.major = Some(major);
            major
        }
    };
    for (unit, slot) in global.nodes.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(DevNode::make(major, unit).inspect_err(|_| {
                klog!("devfs_make_node tun{} failed", unit);
            })?);
        }
    }
    Ok(())
}

/// Removes the nodes, then the cdevsw entry. Whether the entry is gone (`cdevsw_remove` can
/// refuse, and then the table still points at the driver).
fn unregister_devices(global: &mut Registrations) -> bool {
    for node in global.nodes.iter_mut().filter_map(Option::take) {
        node.remove();
    }
    if let Some(major) = global.major {
        if !nodes::cdevsw_remove(major) {
            return false;
        }
        global.major = None;
    }
    true
}

/// After a failed unload: devices back and the gate open, so the driver stays usable (ST-2,
/// ST-3). Called without the global mutex.
fn stay_loaded() {
    let mut global = GLOBAL.lock();
    if let Err(e) = register_devices(&mut global) {
        klog!("could not restore the device nodes: errno {}", e.code());
    }
    GATE.dying.store(false, SeqCst);
    GATE.stopping.store(false, SeqCst);
}

/// kmod stop (ST-1..ST-4). Refuses, with nothing changed, while a unit is open or a thread is
/// inside the driver; otherwise removes the nodes and the cdevsw entry, drains the gate,
/// detaches every interface and waits for each `detached` callback, then frees every lock.
pub fn stop() -> Result<(), Errno> {
    let mut global = GLOBAL.lock();
    // ST-1: close the gate, then look. An entry that raced past the gate is counted.
    GATE.stopping.store(true, SeqCst);
    let busy = GATE.inflight.load(SeqCst) != 0
        || UNITS.iter().any(|u| {
            let state = u.state.lock();
            state.is_claimed()
        });
    if busy {
        GATE.stopping.store(false, SeqCst);
        // RD-6: sleepers re-check and, the unit still being open, go back to sleep.
        for unit in &UNITS {
            let state = unit.state.lock();
            unit.wake_all(&state);
        }
        return Err(Errno::EBUSY);
    }
    GATE.dying.store(true, SeqCst);

    // ST-2: no new opens (nodes gone), then the cdevsw entry, which must succeed.
    if !unregister_devices(&mut global) {
        klog!("cdevsw_remove failed; staying loaded");
        drop(global);
        stay_loaded();
        return Err(Errno::EBUSY);
    }
    while GATE.inflight.load(SeqCst) != 0 {
        global.sleep_timeout(Channel::of(&GATE), 10);
    }
    drop(global);

    // ST-3: detach every interface that was ever attached and wait for its callback; then
    // the plumbers, which no interface of ours can reach any more.
    for unit in &UNITS {
        if let Err(e) = detach_interface(unit) {
            klog!(
                "tun{}: detaching the interface failed (errno {}); staying loaded",
                unit.number(),
                e.code()
            );
            stay_loaded();
            return Err(e);
        }
    }
    PLUMBED.iter().for_each(|&f| ifnet::unregister_plumber(f));

    // ST-4: no thread can reach driver state any more.
    for unit in &UNITS {
        let state = unit.state.lock();
        state.sel.clear();
    }
    free_locks();
    Ok(())
}

/// ST-3 for one unit: remove its addresses, detach its protocols, detach the interface, wait
/// for the `detached` callback, release. On an error nothing more is done: the interface stays
/// with the unit, referenced, and its callbacks can still run.
fn detach_interface(unit: &'static Unit) -> Result<(), Errno> {
    let (ifnet, setup, protocols) = {
        let state = unit.state.lock();
        unit.wake_all(&state);
        (state.ifnet, state.setup, state.protocols)
    };
    let Some(ifnet) = ifnet else {
        return Ok(());
    };
    // An admin may have configured a closed interface; the stack calls back into the
    // interface ioctl, so no unit mutex is held here.
    if setup.attached {
        let failures = crate::iface::remove_addresses(unit.number(), &ifnet);
        unit.counters.add_address_removal_failures(failures);
    }
    for family in protocols.families() {
        match ifnet.detach_protocol(family) {
            // ENXIO: the stack detached it already.
            Ok(()) | Err(Errno::ENXIO) => unit.state.lock().protocols.set(family, false),
            Err(e) => return Err(e),
        }
    }
    if setup.attached {
        ifnet.detach()?;
        let mut state = unit.state.lock();
        while !state.detached {
            state.sleep(unit.channel(), Interruptible::No)?;
        }
    }
    let ifnet = {
        let mut state = unit.state.lock();
        state.queue.purge();
        state.setup = Setup::default();
        state.detached = false; // a later interface of this unit has its own callback
        state.ifnet.take()
    };
    if let Some(ifnet) = ifnet {
        ifnet.release();
    }
    Ok(())
}
