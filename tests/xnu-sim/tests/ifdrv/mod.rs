//! A minimal interface driver for the simulator's own ifnet tests (bsd/net/kpi_interface.h):
//! the callbacks `ifnet_allocate` requires, which record what they see (packets output, demux
//! calls, ioctl commands), a protocol whose input hands packets to the stack (`proto_input`),
//! and helpers to allocate and attach an interface. Used with `mod ifdrv;` next to
//! `mod common;`. Its Ethernet variant (a tap-like unit on XNU's `ether_*` functions) is
//! [`ether`].
#![allow(dead_code)]

pub mod ether;

use std::ffi::{c_char, c_ulong, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use xnu_sim::abi::*;

extern "C" {
    pub fn ifnet_allocate(init: *const ifnet_init_params, out: *mut ifnet_t) -> errno_t;
    pub fn ifnet_attach(ifp: ifnet_t, ll: *const c_void) -> errno_t;
    pub fn ifnet_detach(ifp: ifnet_t) -> errno_t;
    pub fn ifnet_release(ifp: ifnet_t) -> errno_t;
    pub fn ifnet_attach_protocol(
        ifp: ifnet_t,
        pf: u32,
        param: *const ifnet_attach_proto_param,
    ) -> errno_t;
    pub fn ifnet_detach_protocol(ifp: ifnet_t, pf: u32) -> errno_t;
    pub fn proto_register_plumber(
        pf: u32,
        family: u32,
        attach: proto_plumb_handler,
        detach: proto_unplumb_handler,
    ) -> errno_t;
    pub fn proto_unregister_plumber(pf: u32, family: u32);
    pub fn proto_input(pf: u32, m: mbuf_t) -> errno_t;
}

/// Interface ioctls the driver saw, in order: (command, the argument was NULL).
static IOCTLS: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());
/// The bytes of every packet the output callback received.
static OUTPUT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Calls of the demux callback.
static DEMUXED: AtomicU64 = AtomicU64::new(0);

/// The commands the interface ioctl received so far.
pub fn ioctls() -> Vec<u32> {
    IOCTLS.lock().unwrap().iter().map(|&(cmd, _)| cmd).collect()
}

/// The interface ioctls so far: (command, the argument was NULL).
pub fn ioctl_calls() -> Vec<(u32, bool)> {
    IOCTLS.lock().unwrap().clone()
}

/// Forgets the ioctls seen so far.
pub fn clear_ioctls() {
    IOCTLS.lock().unwrap().clear();
}

/// The bytes of every packet the driver's output received, in order.
pub fn outputs() -> Vec<Vec<u8>> {
    OUTPUT.lock().unwrap().clone()
}

/// How many packets the demux callback classified.
pub fn demuxed() -> u64 {
    DEMUXED.load(Ordering::SeqCst)
}

/// Records the packet's bytes and frees it.
unsafe extern "C" fn output(_ifp: ifnet_t, m: mbuf_t) -> errno_t {
    // SAFETY: the stack hands over a live packet, which this callback now owns and frees.
    unsafe {
        let len = crate::common::mbuf_pkthdr_len(m);
        let mut bytes = vec![0u8; len];
        assert_eq!(
            crate::common::mbuf_copydata(m, 0, len, bytes.as_mut_ptr().cast()),
            0
        );
        OUTPUT.lock().unwrap().push(bytes);
        crate::common::mbuf_freem(m);
    }
    0
}

/// Every packet is IPv4.
unsafe extern "C" fn demux(_ifp: ifnet_t, _m: mbuf_t, _h: *mut c_char, pf: *mut u32) -> errno_t {
    DEMUXED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the stack passes a writable protocol family.
    unsafe { *pf = AF_INET };
    0
}

unsafe extern "C" fn add_proto(
    _ifp: ifnet_t,
    _pf: u32,
    _d: *const ifnet_demux_desc,
    _n: u32,
) -> errno_t {
    0
}

unsafe extern "C" fn del_proto(_ifp: ifnet_t, _pf: u32) -> errno_t {
    0
}

unsafe extern "C" fn ioctl(_ifp: ifnet_t, cmd: c_ulong, data: *mut c_void) -> errno_t {
    IOCTLS.lock().unwrap().push((cmd as u32, data.is_null()));
    0
}

unsafe extern "C" fn detached(_ifp: ifnet_t) {}

/// The protocol's input: the packet goes up the stack (`proto_input`), which records it.
unsafe extern "C" fn proto_in(_ifp: ifnet_t, pf: u32, m: mbuf_t, _h: *mut c_char) -> errno_t {
    // SAFETY: the stack hands over a live packet, which `proto_input` takes.
    unsafe { proto_input(pf, m) }
}

unsafe extern "C" fn pre_output(
    _ifp: ifnet_t,
    _pf: u32,
    _m: *mut mbuf_t,
    _dest: *const sockaddr,
    _route: *mut c_void,
    _t: *mut c_char,
    _l: *mut c_char,
) -> errno_t {
    0
}

/// Init parameters for `<base><unit>` with this driver's callbacks and `softc`. The name's
/// storage must outlive the call (the caller keeps `name`).
pub fn params(name: &CString, unit: u32, softc: *mut c_void) -> ifnet_init_params {
    ifnet_init_params {
        uniqueid: std::ptr::null(),
        uniqueid_len: 0,
        name: name.as_ptr(),
        unit,
        family: IFNET_FAMILY_TUN,
        type_: IFT_OTHER,
        output: Some(output),
        demux: Some(demux),
        add_proto: Some(add_proto),
        del_proto: Some(del_proto),
        check_multi: None,
        framer: None,
        softc,
        ioctl: Some(ioctl),
        set_bpf_tap: None,
        detach: Some(detached),
        event: None,
        broadcast_addr: std::ptr::null(),
        broadcast_len: 0,
    }
}

/// Parameters for attaching a protocol whose input hands packets to the stack.
pub fn proto_param() -> ifnet_attach_proto_param {
    ifnet_attach_proto_param {
        demux_array: std::ptr::null_mut(),
        demux_count: 0,
        input: Some(proto_in),
        pre_output: Some(pre_output),
        event: None,
        ioctl: None,
        detached: None,
        resolve: None,
        send_arp: None,
    }
}

/// Marks the test driver loaded (once) and allocates `<base><unit>` (one reference), with the
/// parameters of [`params`] as `adjust` changes them.
pub fn allocate_with(
    base: &str,
    unit: u32,
    softc: *mut c_void,
    adjust: impl FnOnce(&mut ifnet_init_params),
) -> ifnet_t {
    if !xnu_sim::kext::is_loaded() {
        xnu_sim::kext::load_test_driver();
    }
    let name = CString::new(base).unwrap();
    let mut p = params(&name, unit, softc);
    adjust(&mut p);
    let mut ifp: ifnet_t = std::ptr::null_mut();
    // SAFETY: valid parameters (the name outlives the call) and out-pointer.
    assert_eq!(unsafe { ifnet_allocate(&p, &mut ifp) }, 0, "ifnet_allocate");
    assert!(!ifp.is_null());
    ifp
}

/// Marks the test driver loaded (once) and allocates `<base><unit>` (one reference).
pub fn allocate(base: &str, unit: u32, softc: *mut c_void) -> ifnet_t {
    allocate_with(base, unit, softc, |_| {})
}

/// Allocates `<base><unit>` as [`allocate_with`] does, then attaches it.
pub fn attach_with(base: &str, unit: u32, adjust: impl FnOnce(&mut ifnet_init_params)) -> ifnet_t {
    let ifp = allocate_with(base, unit, std::ptr::null_mut(), adjust);
    // SAFETY: an allocated ifnet.
    let rc = unsafe { ifnet_attach(ifp, std::ptr::null()) };
    assert_eq!(rc, 0, "ifnet_attach");
    ifp
}

/// Allocates and attaches `<base><unit>`.
pub fn attach(base: &str, unit: u32) -> ifnet_t {
    attach_with(base, unit, |_| {})
}

/// Attaches IPv4 to `ifp` with [`proto_param`].
pub fn attach_inet(ifp: ifnet_t) {
    // SAFETY: an attached ifnet and valid params.
    let rc = unsafe { ifnet_attach_protocol(ifp, AF_INET, &proto_param()) };
    assert_eq!(rc, 0, "ifnet_attach_protocol");
}

unsafe extern "C" fn plumb(_ifp: ifnet_t, _pf: u32) -> errno_t {
    0
}

/// Registers a plumber for `AF_INET6` on `IFNET_FAMILY_TUN` whose attach succeeds: without
/// one, adding an IPv6 address fails (bsd/netinet6/in6.c `in6_domifattach` → `proto_plumb`).
pub fn plumb_inet6() {
    // SAFETY: a plumber function that stays valid for the whole test.
    let rc = unsafe { proto_register_plumber(AF_INET6, IFNET_FAMILY_TUN, Some(plumb), None) };
    assert_eq!(rc, 0, "proto_register_plumber");
}
