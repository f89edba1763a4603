//! Load and unload (docs/tun-contract.md section 11): the driver's registrations, its locks,
//! and the order in which they are made and undone.

use crate::gate;
use crate::iface;
use crate::klog;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{self, AF_INET, AF_INET6};
use crate::kpi::lock::{Interruptible, KMutex, LockGroup};
use crate::kpi::nodes::{self, DevNode, Major};
use crate::limits::MAX_UNITS;
use crate::link::LinkId;
use crate::unit::{self, Setup, Unit, UnitState};
use core::ffi::CStr;

/// The kext's bundle identifier, from `Info.plist` (`CFBundleIdentifier`, read by build.rs):
/// the name of the driver's lock group and of its mbuf tags.
pub const BUNDLE_ID: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("TUN_BUNDLE_ID"), "\0").as_bytes()) {
        Ok(id) => id,
        Err(_) => panic!("TUN_BUNDLE_ID holds a NUL"),
    };

/// The registrations of one link kind: its cdevsw entry and its nodes.
struct KindRegistrations {
    major: Option<Major>,
    /// Room for the most units any kind has.
    nodes: [Option<DevNode>; MAX_UNITS],
}

impl KindRegistrations {
    const NONE: KindRegistrations = KindRegistrations {
        major: None,
        nodes: [const { None }; MAX_UNITS],
    };
}

/// Driver-wide registrations, one entry per kind in [`LinkId::ALL`] order. Guarded by the
/// global kernel mutex; unload sleeps on it while the gate drains.
struct Registrations([KindRegistrations; LinkId::ALL.len()]);

static GLOBAL: KMutex<Registrations> = KMutex::new(Registrations(
    [const { KindRegistrations::NONE }; LinkId::ALL.len()],
));

/// The lock group every driver mutex comes from. A spin lock: taken only at load and unload,
/// never across a sleep.
static LOCK_GROUP: spin::Mutex<Option<LockGroup>> = spin::Mutex::new(None);

/// kmod start (LD-1..LD-4): locks, the cdevsw entry, then `/dev/tun0..15`. No ifnet yet. On
/// any failure everything done so far is undone.
pub fn start() -> Result<(), Errno> {
    // Nothing is registered yet, so no other thread can see this state: start fresh (the same
    // static storage serves every load of the kext).
    GLOBAL.replace_unshared(Registrations(
        [const { KindRegistrations::NONE }; LinkId::ALL.len()],
    ));
    for unit in unit::all() {
        unit.state.replace_unshared(UnitState::new());
        unit.counters.reset();
    }
    gate::reset();
    crate::debug::set_level(0);

    let group = LockGroup::new(BUNDLE_ID)?;
    if let Err(e) = install_mutexes(&group) {
        uninstall_mutexes(&group);
        group.free();
        return Err(e);
    }
    *LOCK_GROUP.lock() = Some(group);

    let registered = iface::register_tags(BUNDLE_ID)
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
    for unit in unit::all() {
        unit.state.install(group)?;
    }
    Ok(())
}

/// Frees every mutex. Called only once no thread can reach driver state (the gate has drained
/// and every interface is detached), so none is in use; one that were would stay allocated
/// (and be logged) rather than be freed under its user.
fn uninstall_mutexes(group: &LockGroup) {
    for unit in unit::all() {
        if unit.state.uninstall(group).is_err() {
            klog!(
                "{}{}: unit mutex still in use at unload; not freed",
                unit.kind().name,
                unit.number()
            );
        }
    }
    if GLOBAL.uninstall(group).is_err() {
        klog!("global mutex still in use at unload; not freed");
    }
}

fn free_locks() {
    if let Some(group) = LOCK_GROUP.lock().take() {
        uninstall_mutexes(&group);
        group.free();
    }
}

/// LD-1, LD-2 (TL-1): for each kind in turn, its cdevsw entry (if not there yet), then its
/// nodes.
fn register_devices(global: &mut Registrations) -> Result<(), Errno> {
    for (link, kind_regs) in LinkId::ALL.into_iter().zip(&mut global.0) {
        let kind = link.kind();
        let major = match kind_regs.major {
            Some(major) => major,
            None => {
                let Some(major) = nodes::cdevsw_add(kind.table) else {
                    klog!("no free character-device major for {}", kind.name);
                    return Err(Errno::EBUSY);
                };
                kind_regs.major = Some(major);
                major
            }
        };
        for (unit, slot) in kind_regs.nodes[..kind.units].iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(DevNode::make(kind.table, major, unit).inspect_err(|_| {
                    klog!("devfs_make_node {}{} failed", kind.name, unit);
                })?);
            }
        }
    }
    Ok(())
}

/// Removes every kind's nodes, then its cdevsw entry. Whether every entry is gone
/// (`cdevsw_remove` can refuse, and then the table still points at the driver).
fn unregister_devices(global: &mut Registrations) -> bool {
    let mut all_gone = true;
    for (link, kind_regs) in LinkId::ALL.into_iter().zip(&mut global.0) {
        for node in kind_regs.nodes.iter_mut().filter_map(Option::take) {
            node.remove();
        }
        if let Some(major) = kind_regs.major {
            if nodes::cdevsw_remove(link.kind().table, major) {
                kind_regs.major = None;
            } else {
                all_gone = false;
            }
        }
    }
    all_gone
}

/// After a failed unload: devices back and the gate open, so the driver stays usable (ST-2,
/// ST-3). Called without the global mutex.
fn stay_loaded() {
    let mut global = GLOBAL.lock();
    if let Err(e) = register_devices(&mut global) {
        klog!("could not restore the device nodes: errno {}", e.code());
    }
    gate::reopen();
}

/// kmod stop (ST-1..ST-4). Refuses, with nothing changed, while a unit is open or a thread is
/// inside the driver; otherwise removes the nodes and the cdevsw entry, drains the gate,
/// detaches every interface and waits for each `detached` callback, then frees every lock.
pub fn stop() -> Result<(), Errno> {
    let mut global = GLOBAL.lock();
    // ST-1: close the gate, then look. An entry that raced past the gate is counted.
    let busy = gate::close_and_look()
        || unit::all().any(|u| {
            let state = u.state.lock();
            state.is_claimed()
        });
    if busy {
        gate::reopen();
        // RD-6: sleepers re-check and, the unit still being open, go back to sleep.
        for unit in unit::all() {
            let state = unit.state.lock();
            unit.wake_all(&state);
        }
        return Err(Errno::EBUSY);
    }
    gate::commit();

    // ST-2: no new opens (nodes gone), then the cdevsw entry, which must succeed.
    if !unregister_devices(&mut global) {
        klog!("cdevsw_remove failed; staying loaded");
        drop(global);
        stay_loaded();
        return Err(Errno::EBUSY);
    }
    gate::drain(&mut global);
    drop(global);

    // ST-3: detach every interface that was ever attached and wait for its callback; then
    // the plumbers, which no interface of ours can reach any more.
    for unit in unit::all() {
        if let Err(e) = detach_interface(unit) {
            klog!(
                "{}{}: detaching the interface failed (errno {}); staying loaded",
                unit.kind().name,
                unit.number(),
                e.code()
            );
            stay_loaded();
            return Err(e);
        }
    }
    PLUMBED.iter().for_each(|&f| ifnet::unregister_plumber(f));

    // ST-4: no thread can reach driver state any more. A `detached` callback that woke us may
    // still be leaving its unit mutex: drain the gate once more before freeing the locks.
    gate::drain(&mut GLOBAL.lock());
    for unit in unit::all() {
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
        (state.ifnet.clone(), state.setup, state.protocols)
    };
    let Some(ifnet) = ifnet else {
        return Ok(());
    };
    // An admin may have configured a closed interface; the stack calls back into the
    // interface ioctl, so no unit mutex is held here.
    if setup.attached {
        let failures = iface::remove_addresses(unit, &ifnet);
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
    let allocated = {
        let mut state = unit.state.lock();
        state.queue.purge();
        state.setup = Setup::default();
        state.detached = false; // a later interface of this unit has its own callback
        state.ifnet.take()
    };
    // The reference ifnet_allocate gave, then (at return) the one taken above: the kernel
    // frees the detached interface with the last.
    drop(allocated);
    Ok(())
}
