//! A minimal interface driver for the simulator's own ifnet tests (bsd/net/kpi_interface.h):
//! the callbacks `ifnet_allocate` requires, an ioctl that records its commands, and helpers to
//! allocate and attach an interface. Used with `mod ifdrv;` next to `mod common;`.
#![allow(dead_code)]

use std::ffi::{c_char, c_ulong, c_void, CString};
use std::sync::Mutex;
use xnu_sim::abi::*;

extern "C" {
    pub fn ifnet_allocate(init: *const ifnet_init_params, out: *mut ifnet_t) -> errno_t;
    pub fn ifnet_attach(ifp: ifnet_t, ll: *const c_void) -> errno_t;
    pub fn ifnet_detach(ifp: ifnet_t) -> errno_t;
    pub fn ifnet_release(ifp: ifnet_t) -> errno_t;
    fn proto_register_plumber(
        pf: u32,
        family: u32,
        attach: Option<proto_plumb_handler>,
        detach: Option<proto_unplumb_handler>,
    ) -> errno_t;
}

/// Interface ioctl commands the driver saw, in order.
static IOCTLS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The commands the interface ioctl received so far.
pub fn ioctls() -> Vec<u32> {
    IOCTLS.lock().unwrap().clone()
}

unsafe extern "C" fn output(_ifp: ifnet_t, m: mbuf_t) -> errno_t {
    crate::common::mbuf_freem(m);
    0
}

unsafe extern "C" fn demux(_ifp: ifnet_t, _m: mbuf_t, _h: *mut c_char, pf: *mut u32) -> errno_t {
    *pf = AF_INET;
    0
}

unsafe extern "C" fn add_proto(_ifp: ifnet_t, _pf: u32, _d: *const c_void, _n: u32) -> errno_t {
    0
}

unsafe extern "C" fn del_proto(_ifp: ifnet_t, _pf: u32) -> errno_t {
    0
}

unsafe extern "C" fn ioctl(_ifp: ifnet_t, cmd: c_ulong, _data: *mut c_void) -> errno_t {
    IOCTLS.lock().unwrap().push(cmd as u32);
    0
}

unsafe extern "C" fn detached(_ifp: ifnet_t) {}

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
        check_multi: std::ptr::null(),
        framer: None,
        softc,
        ioctl: Some(ioctl),
        set_bpf_tap: std::ptr::null(),
        detach: Some(detached),
        event: std::ptr::null(),
        broadcast_addr: std::ptr::null(),
        broadcast_len: 0,
    }
}

/// Marks the test driver loaded (once) and allocates `<base><unit>` (one reference).
pub fn allocate(base: &str, unit: u32, softc: *mut c_void) -> ifnet_t {
    if !xnu_sim::kext::is_loaded() {
        xnu_sim::kext::load_test_driver();
    }
    let name = CString::new(base).unwrap();
    let p = params(&name, unit, softc);
    let mut ifp: ifnet_t = std::ptr::null_mut();
    // SAFETY: valid parameters and out-pointer.
    assert_eq!(unsafe { ifnet_allocate(&p, &mut ifp) }, 0, "ifnet_allocate");
    assert!(!ifp.is_null());
    ifp
}

/// Allocates and attaches `<base><unit>`.
pub fn attach(base: &str, unit: u32) -> ifnet_t {
    let ifp = allocate(base, unit, std::ptr::null_mut());
    // SAFETY: an allocated ifnet.
    assert_eq!(
        unsafe { ifnet_attach(ifp, std::ptr::null()) },
        0,
        "ifnet_attach"
    );
    ifp
}

unsafe extern "C" fn plumb(_ifp: ifnet_t, _pf: u32) -> errno_t {
    0
}

/// Registers a plumber for `AF_INET6` on `IFNET_FAMILY_TUN` whose attach succeeds: without
/// one, adding an IPv6 address fails (bsd/netinet6/in6.c `in6_domifattach` → `proto_plumb`).
pub fn plumb_inet6() {
    // SAFETY: a plumber function that stays valid for the whole test.
    assert_eq!(
        unsafe { proto_register_plumber(AF_INET6, IFNET_FAMILY_TUN, Some(plumb), None) },
        0
    );
}
