//! Network interfaces (xnu bsd/net/kpi_interface.h, bsd/net/kpi_interface.c): the table of
//! simulated ifnets, their lifecycle (`ifnet_allocate`, `ifnet_attach`, the asynchronous
//! `ifnet_detach`, references) and their accessors and counters.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use crate::fasthash::AddrMap;
use crate::net::bpf::Tap;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_void, CStr};
use std::sync::Mutex;

/// Lifecycle of an ifnet (detach is asynchronous; a detached ifnet is never attached again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfState {
    /// `ifnet_allocate` done.
    Allocated,
    /// `ifnet_attach` done.
    Attached,
    /// `ifnet_detach` called; the `detached` callback has not run yet.
    Detaching,
    /// The `detached` callback ran.
    Detached,
}

/// Interface counters, as `netstat -I` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfStats {
    /// Packets received (written by the user, passed to the stack).
    pub ipackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Input errors.
    pub ierrors: u64,
    /// Packets sent by the stack.
    pub opackets: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Output errors.
    pub oerrors: u64,
    /// Input drops (`iqdrops`).
    pub iqdrops: u64,
}

pub(crate) struct SimIfnet {
    pub(crate) name: String,
    pub(crate) unit: u32,
    pub(crate) family: u32,
    pub(crate) if_type: u32,
    pub(crate) uniqueid: Vec<u8>,
    pub(crate) softc: usize,
    pub(crate) callbacks: ifnet_init_params,
    pub(crate) flags: u16,
    pub(crate) mtu: u32,
    pub(crate) baudrate: u64,
    pub(crate) state: IfState,
    refs: i64,
    pub(crate) index: u32,
    pub(crate) protocols: HashMap<u32, ifnet_attach_proto_param>,
    /// BPF attachment: (DLT, header length).
    pub(crate) bpf: Option<(u32, u32)>,
    pub(crate) stats: IfStats,
    /// The last `TAP_LOG` taps (older ones are dropped; `tapped` counts all).
    pub(crate) taps: VecDeque<Tap>,
    pub(crate) tapped: u64,
    pub(crate) untapped: u64,
    pub(crate) addresses: Vec<(u32, Vec<u8>)>,
    /// Packets the stack received through this interface: (family, bytes).
    pub(crate) received: Vec<(u32, Vec<u8>)>,
    /// Packets the stack dropped at input (bad demux, no protocol).
    pub(crate) stack_drops: u64,
    /// Packets delivered to a protocol without being recorded (capture off).
    pub(crate) delivered: u64,
    /// Stack calls (output, ioctl) inside the driver through this interface right now.
    pub(crate) iorefs: u64,
    /// Times the per-interface IPv6 set-up ran (`in6_ifattach_prelim`, after a plumber
    /// returned 0).
    pub(crate) inet6_setups: u64,
    /// Link address, header length, broadcast address, promiscuous count (crate::net::lladdr).
    pub(crate) link: crate::net::lladdr::LinkLayer,
}

#[derive(Default)]
struct Ifnets {
    table: AddrMap<usize, SimIfnet>,
    next_handle: usize,
    next_index: u32,
}

static IFNETS: Mutex<Option<Ifnets>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Ifnets) -> R) -> R {
    f(IFNETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| Ifnets {
            next_handle: 0x4000_0000_0000,
            next_index: 2, // lo0 is 1
            ..Ifnets::default()
        }))
}

/// Every ifnet still in the table, by handle.
pub(crate) fn with_table<R>(f: impl FnOnce(&mut AddrMap<usize, SimIfnet>) -> R) -> R {
    with(|t| f(&mut t.table))
}

pub(crate) fn with_if<R>(ifp: ifnet_t, f: impl FnOnce(&mut SimIfnet) -> R) -> R {
    with(|t| {
        let i = t.table.get_mut(&(ifp as usize)).unwrap_or_else(|| {
            panic!("ifnet {ifp:p}: not a live ifnet (released, or never allocated)")
        });
        f(i)
    })
}

/// The handle of the interface named `name`, if one exists.
pub(crate) fn by_name(name: &str) -> Option<ifnet_t> {
    with(|t| {
        t.table
            .iter()
            .find(|(_, i)| i.name == name)
            .map(|(&h, _)| h as ifnet_t)
    })
}

/// Live ifnets and those still detaching (leak accounting).
pub(crate) fn live_ifnets() -> (usize, usize) {
    with(|t| {
        (
            t.table.len(),
            t.table
                .values()
                .filter(|i| i.state == IfState::Detaching)
                .count(),
        )
    })
}

fn maybe_free(t: &mut Ifnets, h: usize) {
    let i = &t.table[&h];
    if i.refs == 0 && matches!(i.state, IfState::Allocated | IfState::Detached) {
        t.table.remove(&h);
    }
}

pub(crate) fn add_stats(i: &mut SimIfnet, s: &ifnet_stat_increment_param) {
    i.stats.ipackets += u64::from(s.packets_in);
    i.stats.ibytes += u64::from(s.bytes_in);
    i.stats.ierrors += u64::from(s.errors_in);
    i.stats.opackets += u64::from(s.packets_out);
    i.stats.obytes += u64::from(s.bytes_out);
    i.stats.oerrors += u64::from(s.errors_out);
    i.stats.iqdrops += u64::from(s.dropped);
}

// ---- KPI ----

/// `ifnet_allocate` (bsd/net/kpi_interface.c → `ifnet_allocate_extended`, bsd/net/dlil.c `dlil_if_acquire`): copies the init parameters, refuses missing callbacks or family with `EINVAL`, and takes the caller's reference; `ENOMEM` can be injected.
#[no_mangle]
unsafe extern "C" fn ifnet_allocate(init: *const ifnet_init_params, out: *mut ifnet_t) -> errno_t {
    // SAFETY: the KPI contract: `init` points to the caller's initialised parameters.
    let p = unsafe { *init };
    if p.name.is_null()
        || p.output.is_none()
        || p.demux.is_none()
        || p.add_proto.is_none()
        || p.del_proto.is_none()
        || p.family == 0
    {
        return Errno::EINVAL.0;
    }
    if config::should_fail(Fault::IfnetAllocate) {
        return Errno::ENOMEM.0;
    }
    // SAFETY: checked non-NULL above; the KPI requires a NUL-terminated name.
    let base = unsafe { CStr::from_ptr(p.name) }
        .to_string_lossy()
        .into_owned();
    let uniqueid = if p.uniqueid.is_null() {
        Vec::new()
    } else {
        // SAFETY: the KPI contract: `uniqueid` points to `uniqueid_len` readable bytes.
        unsafe { std::slice::from_raw_parts(p.uniqueid.cast::<u8>(), p.uniqueid_len as usize) }
            .to_vec()
    };
    let h = with(|t| {
        t.next_handle += 256;
        let h = t.next_handle;
        t.table.insert(
            h,
            SimIfnet {
                name: format!("{base}{}", p.unit),
                unit: p.unit,
                family: p.family,
                if_type: p.type_,
                uniqueid,
                softc: p.softc as usize,
                callbacks: p,
                flags: 0,
                mtu: 0,
                baudrate: 0,
                state: IfState::Allocated,
                refs: 1,
                index: 0,
                protocols: HashMap::new(),
                bpf: None,
                stats: IfStats::default(),
                taps: VecDeque::new(),
                tapped: 0,
                untapped: 0,
                addresses: Vec::new(),
                received: Vec::new(),
                stack_drops: 0,
                delivered: 0,
                iorefs: 0,
                inet6_setups: 0,
                link: crate::net::lladdr::LinkLayer::allocated(&p),
            },
        );
        h
    });
    // SAFETY: the KPI contract: `out` points to writable storage for the handle.
    unsafe { *out = h as ifnet_t };
    0
}

/// `ifnet_attach` (bsd/net/dlil.c): gives the interface its index; `EEXIST` when it is attached already; a link address (`sockaddr_dl`) sets `if_addrlen` or must match it (`EINVAL`); a detached ifnet attached again panics (stricter); `ENOMEM` can be injected.
#[no_mangle]
unsafe extern "C" fn ifnet_attach(ifp: ifnet_t, ll: *const sockaddr_dl) -> errno_t {
    if config::should_fail(Fault::IfnetAttach) {
        return Errno::ENOMEM.0;
    }
    with(|t| {
        let name = t
            .table
            .get(&(ifp as usize))
            .unwrap_or_else(|| panic!("ifnet_attach {ifp:p}: not live"))
            .name
            .clone();
        if t.table
            .values()
            .any(|i| i.name == name && i.state == IfState::Attached)
        {
            return Errno::EEXIST.0;
        }
        let index = t.next_index;
        let i = t.table.get_mut(&(ifp as usize)).unwrap();
        match i.state {
            IfState::Allocated => {}
            IfState::Detaching | IfState::Detached => panic!(
                "ifnet_attach {}: a detached ifnet can never be attached again",
                i.name
            ),
            IfState::Attached => return Errno::EEXIST.0,
        }
        // SAFETY: the KPI contract: `ll` is NULL or the driver's readable sockaddr_dl.
        if let Err(e) = unsafe { crate::net::lladdr::attach(&mut i.link, ll) } {
            return e.0;
        }
        i.state = IfState::Attached;
        i.index = index;
        t.next_index += 1;
        0
    })
}

/// `ifnet_detach` (bsd/net/kpi_interface.c → dlil.c `ifnet_detach`): asynchronous; the
/// `detached` callback runs later on another thread. `EINVAL` unless attached. Fault injection
/// ([`Fault::IfnetDetach`]) makes it fail with `EINVAL` and change nothing.
#[no_mangle]
extern "C" fn ifnet_detach(ifp: ifnet_t) -> errno_t {
    if config::should_fail(Fault::IfnetDetach) {
        return Errno::EINVAL.0;
    }
    let (detach, ok) = with_if(ifp, |i| {
        if i.state != IfState::Attached {
            return (None, false);
        }
        i.state = IfState::Detaching;
        (i.callbacks.detach, true)
    });
    if !ok {
        return Errno::EINVAL.0;
    }
    // Asynchronous (XNU kpi_interface.h): the callback fires later, on another thread.
    let ifp_addr = ifp as usize;
    crate::kext::track_kernel_thread(crate::proc::spawn_thread(
        crate::proc::KERNEL_PID,
        move || {
            let ifp = ifp_addr as ifnet_t;
            config::perturb_point();
            if config::config().late_detach_callbacks && config::chance(0.5) {
                late_output(ifp);
            }
            config::perturb_point();
            unplumb_all(ifp);
            // Detached from the stack from here on; the callback tells the driver so.
            with(|t| {
                t.table.get_mut(&ifp_addr).expect("detaching ifnet").state = IfState::Detached
            });
            // XNU waits for the I/O references of calls already inside the driver before
            // the detached callback (dlil.c ifnet_detach_final); no new call can start now.
            while with(|t| t.table[&ifp_addr].iorefs) != 0 {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            if let Some(cb) = detach {
                // SAFETY: the driver's own detached callback, called once with its ifnet,
                // which stays live until the callback has run.
                crate::kext::in_kext(|| unsafe { cb(ifp) });
            }
            with(|t| {
                if t.table.contains_key(&ifp_addr) {
                    maybe_free(t, ifp_addr);
                }
            });
        },
    ));
    0
}

/// Perturbation: the stack sends one more packet while the detach is in progress.
fn late_output(ifp: ifnet_t) {
    let Some(name) = with(|t| t.table.get(&(ifp as usize)).map(|i| i.name.clone())) else {
        return;
    };
    let mut dest = [0u8; 16];
    dest[0] = 16;
    dest[1] = AF_INET as u8;
    let _ = crate::stack::output(
        &name,
        AF_INET,
        &dest,
        &[
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
    );
}

/// `ifnet_detach_final` (bsd/net/dlil.c) removes every protocol still attached: for each one
/// `proto_unplumb` (the plumber's detach, e.g. `ether_detach_inet`), and a protocol that
/// stays is detached directly. The last detach marks the interface down and sends the driver
/// `SIOCSIFFLAGS` with a NULL argument (`if_proto_free`), while the interface is detaching.
fn unplumb_all(ifp: ifnet_t) {
    let families: Vec<u32> = with_if(ifp, |i| {
        let mut f: Vec<u32> = i.protocols.keys().copied().collect();
        f.sort_unstable();
        f
    });
    for pf in families {
        crate::net::kpi_protocol::proto_unplumb(pf, ifp);
        if with_if(ifp, |i| i.protocols.contains_key(&pf)) {
            crate::net::dlil::detach_protocol(ifp, pf);
        }
    }
}

/// `ifnet_release` (bsd/net/kpi_interface.c → `dlil_if_free`): drops a reference; releasing one that is not live panics (stricter).
#[no_mangle]
extern "C" fn ifnet_release(ifp: ifnet_t) -> errno_t {
    with(|t| {
        let i = t
            .table
            .get_mut(&(ifp as usize))
            .unwrap_or_else(|| panic!("ifnet_release {ifp:p}: not live (released twice?)"));
        assert!(i.refs > 0, "ifnet_release {}: no reference left", i.name);
        i.refs -= 1;
        maybe_free(t, ifp as usize);
    });
    0
}

/// `ifnet_reference` (bsd/net/kpi_interface.c → `dlil_if_ref`): takes a reference, checked at unload.
#[no_mangle]
extern "C" fn ifnet_reference(ifp: ifnet_t) -> errno_t {
    with_if(ifp, |i| i.refs += 1);
    0
}

/// `ifnet_softc` (bsd/net/kpi_interface.c): the softc given at allocation.
#[no_mangle]
extern "C" fn ifnet_softc(ifp: ifnet_t) -> *mut c_void {
    with_if(ifp, |i| i.softc as *mut c_void)
}

/// `ifnet_flags` (bsd/net/kpi_interface.c): the interface flags.
#[no_mangle]
extern "C" fn ifnet_flags(ifp: ifnet_t) -> u16 {
    with_if(ifp, |i| i.flags)
}

/// `ifnet_set_flags` (bsd/net/kpi_interface.c): sets the bits of `mask` to those of `new_flags`.
#[no_mangle]
extern "C" fn ifnet_set_flags(ifp: ifnet_t, new_flags: u16, mask: u16) -> errno_t {
    with_if(ifp, |i| i.flags = (i.flags & !mask) | (new_flags & mask));
    0
}

/// `ifnet_mtu` (bsd/net/kpi_interface.c): the MTU.
#[no_mangle]
extern "C" fn ifnet_mtu(ifp: ifnet_t) -> u32 {
    with_if(ifp, |i| i.mtu)
}

/// `ifnet_set_mtu` (bsd/net/kpi_interface.c): sets the MTU.
#[no_mangle]
extern "C" fn ifnet_set_mtu(ifp: ifnet_t, mtu: u32) -> errno_t {
    with_if(ifp, |i| i.mtu = mtu);
    0
}

/// `ifnet_unit` (bsd/net/kpi_interface.c): the unit number.
#[no_mangle]
extern "C" fn ifnet_unit(ifp: ifnet_t) -> u32 {
    with_if(ifp, |i| i.unit)
}

/// `ifnet_stat_increment` (bsd/net/kpi_interface.c): adds every field to the interface counters.
#[no_mangle]
unsafe extern "C" fn ifnet_stat_increment(
    ifp: ifnet_t,
    s: *const ifnet_stat_increment_param,
) -> errno_t {
    // SAFETY: the KPI contract: `s` points to the caller's counts.
    let s = unsafe { *s };
    with_if(ifp, |i| add_stats(i, &s));
    0
}

/// `ifnet_stat_increment_in` (bsd/net/kpi_interface.c): adds input packets, bytes and errors.
#[no_mangle]
extern "C" fn ifnet_stat_increment_in(
    ifp: ifnet_t,
    packets: u32,
    bytes: u32,
    errors: u32,
) -> errno_t {
    let s = ifnet_stat_increment_param {
        packets_in: packets,
        bytes_in: bytes,
        errors_in: errors,
        ..Default::default()
    };
    with_if(ifp, |i| add_stats(i, &s));
    0
}

/// `ifnet_stat_increment_out` (bsd/net/kpi_interface.c): adds output packets, bytes and errors.
#[no_mangle]
extern "C" fn ifnet_stat_increment_out(
    ifp: ifnet_t,
    packets: u32,
    bytes: u32,
    errors: u32,
) -> errno_t {
    let s = ifnet_stat_increment_param {
        packets_out: packets,
        bytes_out: bytes,
        errors_out: errors,
        ..Default::default()
    };
    with_if(ifp, |i| add_stats(i, &s));
    0
}

/// `ifnet_set_baudrate` (bsd/net/kpi_interface.c): stores the link speed, capped at 0xffffffff as XNU caps it.
#[no_mangle]
extern "C" fn ifnet_set_baudrate(ifp: ifnet_t, baudrate: u64) -> errno_t {
    with_if(ifp, |i| i.baudrate = baudrate.min(0xffff_ffff));
    0
}

/// `ifnet_baudrate` (bsd/net/kpi_interface.c): the stored link speed (at most 0xffffffff).
#[no_mangle]
extern "C" fn ifnet_baudrate(ifp: ifnet_t) -> u64 {
    with_if(ifp, |i| i.baudrate)
}
