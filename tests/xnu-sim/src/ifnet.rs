//! Network interfaces (xnu bsd/net/kpi_interface.h), protocol attachment, BPF, and the input
//! half of the fake IP stack. Driver callbacks are never called with a simulator lock held.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use crate::fasthash::AddrMap;
use crate::mbuf;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

/// How many taps per interface the simulator keeps (a long traffic run must not grow without
/// bound); `tap_count` counts them all.
pub const TAP_LOG: usize = 4096;

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

/// One packet BPF saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tap {
    /// true for `bpf_tap_out`.
    pub outbound: bool,
    /// Data-link type given to the tap.
    pub dlt: u32,
    /// The link header given to the tap.
    pub header: Vec<u8>,
    /// The packet.
    pub packet: Vec<u8>,
}

/// What a test can see of an interface.
#[derive(Clone, Debug)]
pub struct IfInfo {
    /// `tunN`.
    pub name: String,
    /// Unit number.
    pub unit: u32,
    /// Interface family (`IFNET_FAMILY_TUN` = 4).
    pub family: u32,
    /// Interface type (`IFT_OTHER` = 1).
    pub if_type: u32,
    /// The unique id given at allocation.
    pub uniqueid: Vec<u8>,
    /// Flags.
    pub flags: u16,
    /// MTU.
    pub mtu: u32,
    /// Link speed (`ifnet_set_baudrate`), 0 = unknown.
    pub baudrate: u64,
    /// Lifecycle state.
    pub state: IfState,
    /// Interface index (0 until attached).
    pub index: u32,
    /// BPF attachment: (DLT, header length).
    pub bpf: Option<(u32, u32)>,
    /// Attached protocol families.
    pub protocols: Vec<u32>,
    /// Counters.
    pub stats: IfStats,
    /// Addresses: (family, address bytes).
    pub addresses: Vec<(u32, Vec<u8>)>,
}

pub(crate) struct SimIfnet {
    pub(crate) name: String,
    pub(crate) unit: u32,
    pub(crate) family: u32,
    if_type: u32,
    uniqueid: Vec<u8>,
    pub(crate) softc: usize,
    pub(crate) callbacks: ifnet_init_params,
    pub(crate) flags: u16,
    pub(crate) mtu: u32,
    baudrate: u64,
    pub(crate) state: IfState,
    refs: i64,
    index: u32,
    pub(crate) protocols: HashMap<u32, ifnet_attach_proto_param>,
    bpf: Option<(u32, u32)>,
    stats: IfStats,
    /// The last `TAP_LOG` taps (older ones are dropped; `tapped` counts all).
    taps: std::collections::VecDeque<Tap>,
    tapped: u64,
    untapped: u64,
    pub(crate) addresses: Vec<(u32, Vec<u8>)>,
    /// Packets the stack received through this interface: (family, bytes).
    received: Vec<(u32, Vec<u8>)>,
    /// Packets the stack dropped at input (bad demux, no protocol).
    stack_drops: u64,
    /// Packets delivered to a protocol without being recorded (capture off).
    delivered: u64,
    /// Stack calls (output, ioctl) inside the driver through this interface right now.
    iorefs: u64,
    /// Times the per-interface IPv6 set-up ran (`in6_ifattach_prelim`, after a plumber
    /// returned 0).
    pub(crate) inet6_setups: u64,
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

/// A snapshot of interface `name`.
pub fn interface(name: &str) -> Option<IfInfo> {
    let h = by_name(name)?;
    Some(with_if(h, |i| {
        let mut protocols: Vec<u32> = i.protocols.keys().copied().collect();
        protocols.sort();
        IfInfo {
            name: i.name.clone(),
            unit: i.unit,
            family: i.family,
            if_type: i.if_type,
            uniqueid: i.uniqueid.clone(),
            flags: i.flags,
            mtu: i.mtu,
            baudrate: i.baudrate,
            state: i.state,
            index: i.index,
            bpf: i.bpf,
            protocols,
            stats: i.stats,
            addresses: i.addresses.clone(),
        }
    }))
}

/// `if_nametoindex`: 0 when no attached interface has that name.
pub fn if_nametoindex(name: &str) -> u32 {
    interface(name)
        .filter(|i| matches!(i.state, IfState::Attached | IfState::Detaching))
        .map_or(0, |i| i.index)
}

/// Packets the stack received through `name`, in order: (protocol family, bytes).
pub fn received(name: &str) -> Vec<(u32, Vec<u8>)> {
    by_name(name)
        .map(|h| with_if(h, |i| i.received.clone()))
        .unwrap_or_default()
}

/// Takes (and forgets) the packets received through `name`.
pub fn take_received(name: &str) -> Vec<(u32, Vec<u8>)> {
    by_name(name)
        .map(|h| with_if(h, |i| std::mem::take(&mut i.received)))
        .unwrap_or_default()
}

/// Times the per-interface IPv6 set-up ran on `name` (only after a plumber returned 0).
pub fn inet6_setups(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.inet6_setups))
}

/// Packets the stack dropped at input on `name` (bad demux, no protocol).
pub fn stack_drops(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.stack_drops))
}

/// What BPF saw on `name`.
pub fn taps(name: &str) -> Vec<Tap> {
    by_name(name)
        .map(|h| with_if(h, |i| i.taps.iter().cloned().collect()))
        .unwrap_or_default()
}

/// Takes (and forgets) what BPF saw on `name` (a long-running host keeps memory bounded).
pub fn take_taps(name: &str) -> Vec<Tap> {
    by_name(name)
        .map(|h| with_if(h, |i| std::mem::take(&mut i.taps).into()))
        .unwrap_or_default()
}

/// Taps on `name` made without a BPF attachment.
pub fn untapped(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.untapped))
}

/// Every tap BPF saw on `name`, including those no longer kept in [`taps`].
pub fn tap_count(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.tapped))
}

pub use crate::plumber::{plumber_calls, register_foreign_plumber};

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

// ---- KPI ----

/// `ifnet_allocate` (bsd/net/kpi_interface.c → `ifnet_allocate_extended`, bsd/net/dlil.c `dlil_if_acquire`): copies the init parameters, refuses missing callbacks or family with `EINVAL`, and takes the caller's reference; `ENOMEM` can be injected.
#[no_mangle]
unsafe extern "C" fn ifnet_allocate(init: *const ifnet_init_params, out: *mut ifnet_t) -> errno_t {
    let p = *init;
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
    let base = CStr::from_ptr(p.name).to_string_lossy().into_owned();
    let uniqueid = if p.uniqueid.is_null() {
        Vec::new()
    } else {
        std::slice::from_raw_parts(p.uniqueid.cast::<u8>(), p.uniqueid_len as usize).to_vec()
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
                taps: std::collections::VecDeque::new(),
                tapped: 0,
                untapped: 0,
                addresses: Vec::new(),
                received: Vec::new(),
                stack_drops: 0,
                delivered: 0,
                iorefs: 0,
                inet6_setups: 0,
            },
        );
        h
    });
    *out = h as ifnet_t;
    0
}

/// `ifnet_attach` (bsd/net/dlil.c): gives the interface its index; `EEXIST` when it is attached already; a detached ifnet attached again panics (stricter); `ENOMEM` can be injected.
#[no_mangle]
extern "C" fn ifnet_attach(ifp: ifnet_t, _ll: *const c_void) -> errno_t {
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

/// An I/O reference on an attached (or detaching) interface, held by a stack call while it is
/// inside the driver's callbacks; the detach waits for it.
pub(crate) struct IoRef(usize);

impl IoRef {
    /// The interface.
    pub(crate) fn ifp(&self) -> ifnet_t {
        self.0 as ifnet_t
    }
}

impl Drop for IoRef {
    fn drop(&mut self) {
        with(|t| {
            if let Some(i) = t.table.get_mut(&self.0) {
                i.iorefs -= 1;
            }
        });
    }
}

/// Takes an I/O reference on interface `name`: `ENXIO` unless it is attached or detaching.
pub(crate) fn io_ref(name: &str) -> Result<IoRef, Errno> {
    with(|t| {
        let (&h, i) = t
            .table
            .iter_mut()
            .find(|(_, i)| {
                i.name == name && matches!(i.state, IfState::Attached | IfState::Detaching)
            })
            .ok_or(Errno::ENXIO)?;
        i.iorefs += 1;
        Ok(IoRef(h))
    })
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

fn add_stats(i: &mut SimIfnet, s: &ifnet_stat_increment_param) {
    i.stats.ipackets += u64::from(s.packets_in);
    i.stats.ibytes += u64::from(s.bytes_in);
    i.stats.ierrors += u64::from(s.errors_in);
    i.stats.opackets += u64::from(s.packets_out);
    i.stats.obytes += u64::from(s.bytes_out);
    i.stats.oerrors += u64::from(s.errors_out);
    i.stats.iqdrops += u64::from(s.dropped);
}

/// `ifnet_stat_increment` (bsd/net/kpi_interface.c): adds every field to the interface counters.
#[no_mangle]
unsafe extern "C" fn ifnet_stat_increment(
    ifp: ifnet_t,
    s: *const ifnet_stat_increment_param,
) -> errno_t {
    let s = *s;
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

/// `ifnet_attach_protocol` (bsd/net/dlil.c → `dlil_attach_protocol_internal`): `ENXIO` unless attached, `EEXIST` when the family is attached, calls the driver's `add_proto`; on success marks the interface up and calls the driver's ioctl with `SIOCSIFFLAGS` and NULL (since xnu-4570.51.1, macOS 10.13.4).
#[no_mangle]
unsafe extern "C" fn ifnet_attach_protocol(
    ifp: ifnet_t,
    pf: u32,
    param: *const ifnet_attach_proto_param,
) -> errno_t {
    let param = *param;
    if param.input.is_none() || param.pre_output.is_none() {
        return Errno::EINVAL.0;
    }
    let (state, exists, add_proto) = with_if(ifp, |i| {
        (
            i.state,
            i.protocols.contains_key(&pf),
            i.callbacks.add_proto,
        )
    });
    if state != IfState::Attached {
        return Errno::ENXIO.0;
    }
    if exists {
        return Errno::EEXIST.0;
    }
    if config::should_fail(Fault::AttachProtocol) {
        return Errno::ENOMEM.0;
    }
    if let Some(add) = add_proto {
        let rc = crate::kext::in_kext(|| add(ifp, pf, std::ptr::null(), 0));
        if rc != 0 {
            return rc;
        }
    }
    with_if(ifp, |i| i.protocols.insert(pf, param));
    // dlil.c (xnu-4570.51.1, macOS 10.13.4, and later): a protocol attached marks the
    // interface up, then tells the driver with SIOCSIFFLAGS and a NULL argument.
    with_if(ifp, |i| i.flags |= IFF_UP);
    call_ioctl(ifp, crate::stack::cmd::SIOCSIFFLAGS, std::ptr::null_mut());
    0
}

/// `ifnet_detach_protocol` (bsd/net/dlil.c, `if_proto_free`): `ENXIO` when `pf` is not
/// attached; otherwise the protocol goes and the driver's `del_proto` is called; when it was
/// the last one, `IFF_UP` is cleared and the driver's ioctl gets `SIOCSIFFLAGS` with NULL. Fault injection
/// ([`Fault::IfnetDetachProtocol`]) makes it fail with `EINVAL` and change nothing.
#[no_mangle]
extern "C" fn ifnet_detach_protocol(ifp: ifnet_t, pf: u32) -> errno_t {
    if config::should_fail(Fault::IfnetDetachProtocol) {
        return Errno::EINVAL.0;
    }
    let (removed, del, last) = with_if(ifp, |i| {
        let removed = i.protocols.remove(&pf).is_some();
        (removed, i.callbacks.del_proto, i.protocols.is_empty())
    });
    if !removed {
        return Errno::ENXIO.0;
    }
    if let Some(del) = del {
        crate::kext::in_kext(|| unsafe { del(ifp, pf) });
    }
    // dlil.c `if_proto_free`: when the last protocol goes the interface is marked down and the
    // driver is told with SIOCSIFFLAGS and a NULL argument (the mirror of the attach).
    if last {
        with_if(ifp, |i| i.flags &= !IFF_UP);
        call_ioctl(ifp, crate::stack::cmd::SIOCSIFFLAGS, std::ptr::null_mut());
    }
    0
}

/// `bpfattach` (bsd/net/bpf.c → `bpf_attach`): records the interface's data-link type and header length.
#[no_mangle]
extern "C" fn bpfattach(ifp: ifnet_t, dlt: u32, hdrlen: u32) {
    with_if(ifp, |i| i.bpf = Some((dlt, hdrlen)));
}

fn tap(ifp: ifnet_t, outbound: bool, dlt: u32, m: mbuf_t, header: *const c_void, hlen: usize) {
    if !config::config().capture {
        mbuf::check_packet_len(m);
        with_if(ifp, |i| match i.bpf {
            None => i.untapped += 1,
            Some(_) => i.tapped += 1,
        });
        return;
    }
    let packet = mbuf::packet_bytes(m);
    // SAFETY: the caller passes `hlen` readable bytes (or none).
    let header = if header.is_null() {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(header.cast::<u8>(), hlen) }.to_vec()
    };
    with_if(ifp, |i| {
        if i.bpf.is_none() {
            i.untapped += 1;
        } else {
            i.tapped += 1;
            if i.taps.len() == TAP_LOG {
                i.taps.pop_front();
            }
            i.taps.push_back(Tap {
                outbound,
                dlt,
                header,
                packet,
            });
        }
    });
}

/// `bpf_tap_in` (bsd/net/bpf.c): shows an inbound packet to BPF; returns nothing.
#[no_mangle]
extern "C" fn bpf_tap_in(ifp: ifnet_t, dlt: u32, m: mbuf_t, header: *mut c_void, hlen: usize) {
    tap(ifp, false, dlt, m, header, hlen)
}

/// `bpf_tap_out` (bsd/net/bpf.c): shows an outbound packet to BPF; returns nothing.
#[no_mangle]
extern "C" fn bpf_tap_out(ifp: ifnet_t, dlt: u32, m: mbuf_t, header: *mut c_void, hlen: usize) {
    tap(ifp, true, dlt, m, header, hlen)
}

/// `ifnet_input` (bsd/net/dlil.c → `ifnet_input_common`): for each packet (chained by
/// `nextpkt`) the stack checks `rcvif` and `pkthdr.len` (stricter: a mismatch panics), demuxes
/// through the driver, and delivers to the protocol attached for the family (whose input calls
/// `proto_input`). Not modelled: XNU's own packet counting and its DLIL input thread.
#[no_mangle]
unsafe extern "C" fn ifnet_input(
    ifp: ifnet_t,
    first: mbuf_t,
    stats: *const ifnet_stat_increment_param,
) -> errno_t {
    if !stats.is_null() {
        let s = *stats;
        with_if(ifp, |i| add_stats(i, &s));
    }
    let mut m = first;
    while !m.is_null() {
        let next = mbuf_nextpkt_raw(m);
        mbuf_setnextpkt_raw(m, std::ptr::null_mut());
        deliver(ifp, m);
        m = next;
    }
    0
}

fn mbuf_nextpkt_raw(m: mbuf_t) -> mbuf_t {
    extern "C" {
        fn mbuf_nextpkt(m: mbuf_t) -> mbuf_t;
    }
    // SAFETY: live mbuf (checked by the simulator).
    unsafe { mbuf_nextpkt(m) }
}

fn mbuf_setnextpkt_raw(m: mbuf_t, n: mbuf_t) {
    extern "C" {
        fn mbuf_setnextpkt(m: mbuf_t, n: mbuf_t);
    }
    // SAFETY: live mbuf.
    unsafe { mbuf_setnextpkt(m, n) }
}

fn deliver(ifp: ifnet_t, m: mbuf_t) {
    extern "C" {
        fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void;
    }
    assert_eq!(
        mbuf::rcvif(m),
        ifp as usize,
        "ifnet_input: pkthdr.rcvif is not the interface"
    );
    mbuf::check_packet_len(m);
    let demux = with_if(ifp, |i| i.callbacks.demux).expect("demux callback");
    // SAFETY: live mbuf.
    let header = unsafe { mbuf_pkthdr_header(m) }.cast::<c_char>();
    let mut pf: u32 = 0;
    let rc = crate::kext::in_kext(|| unsafe { demux(ifp, m, header, &mut pf) });
    let input = if rc == 0 {
        with_if(ifp, |i| i.protocols.get(&pf).and_then(|p| p.input))
    } else {
        None
    };
    match input {
        Some(input) => {
            crate::kext::in_kext(|| unsafe { input(ifp, pf, m, header) });
        }
        None => {
            with_if(ifp, |i| i.stack_drops += 1);
            mbuf::free_chain(m);
        }
    }
}

/// `proto_input` (bsd/net/kpi_protocol.c): the protocol layer takes the packet; the fake stack
/// records (family, bytes) or hands them to an input hook.
#[no_mangle]
extern "C" fn proto_input(pf: u32, m: mbuf_t) -> errno_t {
    let ifp = mbuf::rcvif(m) as ifnet_t;
    let name = with_if(ifp, |i| i.name.clone());
    let hook = INPUT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|h| h.get(&name).cloned());
    match hook {
        // Called without any simulator lock held.
        Some(hook) => hook(pf, &mbuf::packet_bytes(m)),
        None if config::config().capture => {
            let bytes = mbuf::packet_bytes(m);
            with_if(ifp, |i| i.received.push((pf, bytes)));
        }
        None => with_if(ifp, |i| i.delivered += 1),
    }
    mbuf::free_chain(m);
    0
}

/// A push-style consumer of what the stack receives on one interface: `(family, packet)`.
pub type InputHook = std::sync::Arc<dyn Fn(u32, &[u8]) + Send + Sync>;

static INPUT_HOOKS: Mutex<Option<HashMap<String, InputHook>>> = Mutex::new(None);

/// Hands every packet the stack receives on interface `name` to `hook` (called from
/// `proto_input`, on the driver's thread, with no simulator lock held) instead of recording
/// it for [`received`]/[`take_received`]; `None` removes the hook. For hosts that bridge the
/// simulated stack to a real one (tests/tunnel-sim) and must not poll.
pub fn set_input_hook(name: &str, hook: Option<InputHook>) {
    let mut hooks = INPUT_HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    let hooks = hooks.get_or_insert_with(HashMap::new);
    match hook {
        Some(h) => hooks.insert(name.to_string(), h),
        None => hooks.remove(name),
    };
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

/// For the syscall layer: whether `c_int` errors are "success" at the stack (EOPNOTSUPP on
/// address commands is taken as success by XNU).
pub(crate) fn call_ioctl(ifp: ifnet_t, cmd: u32, data: *mut c_void) -> c_int {
    let ioctl = with_if(ifp, |i| i.callbacks.ioctl);
    match ioctl {
        Some(f) => crate::kext::in_kext(|| unsafe { f(ifp, cmd as std::ffi::c_ulong, data) }),
        None => Errno::EOPNOTSUPP.0,
    }
}
