//! Interface events (xnu bsd/net/dlil.c `dlil_post_msg`, `dlil_event_internal`, `ifnet_event`;
//! bsd/sys/kern_event.h): an event on an attached interface goes, synchronously and on the
//! caller's thread, to the interface filters (a bridge, crate::net::bridge), then to the event
//! handler of every attached protocol (Ethernet's `ether_inet_event` sends gratuitous ARPs on
//! `KEV_DL_LINK_ADDRESS_CHANGED`), then to the driver's `event` callback; then it is posted
//! (`kev_post_msg`), which the simulator records for tests. A driver that holds its own lock
//! across `ifnet_event` or `ifnet_set_lladdr` is called back with it held, as on a Mac.

use crate::abi::*;
use crate::errno::Errno;
use crate::net::dlil;
use crate::net::kpi_interface::{with_if, IfState};
use std::ffi::c_void;
use std::sync::Mutex;

/// `N_KEV_VECTORS` (bsd/sys/kern_event.h).
const N_KEV_VECTORS: usize = 5;

/// `struct kev_d_vectors` (bsd/sys/kern_event.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct KevDVector {
    data_length: u32,
    data_ptr: *const c_void,
}

/// `struct kev_msg` (bsd/sys/kern_event.h), what protocol and driver event handlers receive.
#[repr(C)]
pub(crate) struct KevMsg {
    pub(crate) vendor_code: u32,
    pub(crate) kev_class: u32,
    pub(crate) kev_subclass: u32,
    pub(crate) event_code: u32,
    dv: [KevDVector; N_KEV_VECTORS],
}

/// One event the kernel posted (`kev_post_msg`), as a test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedEvent {
    /// The interface the event was about.
    pub interface: String,
    /// `vendor_code`.
    pub vendor_code: u32,
    /// `kev_class`.
    pub kev_class: u32,
    /// `kev_subclass`.
    pub kev_subclass: u32,
    /// `event_code` (`KEV_DL_LINK_ON`, …).
    pub event_code: u32,
    /// The event data (for data-link events a `struct net_event_data`).
    pub data: Vec<u8>,
}

static POSTED: Mutex<Vec<PostedEvent>> = Mutex::new(Vec::new());

/// The events posted about interface `name`, in order.
pub(crate) fn posted(name: &str) -> Vec<PostedEvent> {
    POSTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| e.interface == name)
        .cloned()
        .collect()
}

/// `dlil_post_msg` (bsd/net/dlil.c): a data-link event whose data is the interface's
/// `struct net_event_data` (family, unit, base name), delivered as `dlil_event_internal` does.
pub(crate) fn post_msg(ifp: ifnet_t, event_code: u32) {
    let (family, unit, name) = with_if(ifp, |i| (i.family, i.unit, i.name.clone()));
    let base = name.strip_suffix(&unit.to_string()).unwrap_or(&name);
    let mut data = Vec::with_capacity(24);
    data.extend_from_slice(&family.to_ne_bytes());
    data.extend_from_slice(&unit.to_ne_bytes());
    let mut if_name = [0u8; sys::IFNAMSIZ as usize];
    let n = base.len().min(if_name.len() - 1);
    if_name[..n].copy_from_slice(&base.as_bytes()[..n]);
    data.extend_from_slice(&if_name);
    deliver(
        ifp,
        (
            KEV_VENDOR_APPLE,
            KEV_NETWORK_CLASS,
            KEV_DL_SUBCLASS,
            event_code,
        ),
        &data,
    );
}

/// `dlil_event_internal` (bsd/net/dlil.c): while the interface is attached (with an I/O
/// reference held), the interface filters, every attached protocol's event handler (in
/// protocol family order) and the driver's `event` callback see the event; then it is posted.
fn deliver(ifp: ifnet_t, (vendor, class, subclass, code): (u32, u32, u32, u32), data: &[u8]) {
    let mut dv = [KevDVector {
        data_length: 0,
        data_ptr: std::ptr::null(),
    }; N_KEV_VECTORS];
    dv[0] = KevDVector {
        data_length: data.len() as u32,
        data_ptr: data.as_ptr().cast(),
    };
    let msg = KevMsg {
        vendor_code: vendor,
        kev_class: class,
        kev_subclass: subclass,
        event_code: code,
        dv,
    };
    let name = with_if(ifp, |i| i.name.clone());
    let attached = with_if(ifp, |i| i.state == IfState::Attached);
    if let (true, Ok(_io)) = (attached, dlil::io_ref(&name)) {
        crate::net::bridge::iff_event(ifp, &msg);
        let mut handlers: Vec<(u32, proto_media_event)> = with_if(ifp, |i| {
            i.protocols
                .iter()
                .filter(|(_, p)| p.event.is_some())
                .map(|(&pf, p)| (pf, p.event))
                .collect()
        });
        handlers.sort_by_key(|&(pf, _)| pf);
        let msg_ptr = (&msg as *const KevMsg).cast::<kev_msg>();
        for (pf, handler) in handlers {
            let handler = handler.expect("filtered on Some");
            // SAFETY: an event handler attached for `pf`, given the live ifnet and a kev_msg
            // that lives until it returns.
            crate::kext::in_kext(|| unsafe { handler(ifp, pf, msg_ptr) });
        }
        if let Some(event) = with_if(ifp, |i| i.callbacks.event) {
            // SAFETY: the driver's event callback with its live ifnet and the kev_msg.
            crate::kext::in_kext(|| unsafe { event(ifp, msg_ptr) });
        }
    }
    POSTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(PostedEvent {
            interface: name,
            vendor_code: vendor,
            kev_class: class,
            kev_subclass: subclass,
            event_code: code,
            data: data.to_vec(),
        });
}

/// The event an event handler received.
///
/// # Safety
/// `msg` is the `kev_msg` pointer `deliver` passed to the handler, still live.
pub(crate) unsafe fn received<'a>(msg: *const kev_msg) -> &'a KevMsg {
    // SAFETY: the caller's contract: the pointer is `deliver`'s live KevMsg.
    unsafe { &*msg.cast::<KevMsg>() }
}

/// `ifnet_event` (bsd/net/dlil.c): `EINVAL` for a NULL interface or event; otherwise the
/// `kern_event_msg` header and its `total_size - KEV_MSG_HEADER_SIZE` data bytes become a
/// `kev_msg` delivered synchronously as `dlil_event_internal` does: for a bridge member the
/// bridge's filter calls the driver's ioctl with `SIOCGIFMEDIA64` on `KEV_DL_LINK_ON`/`OFF`
/// before this returns. Stricter than XNU: a `total_size` below the header size panics (XNU
/// computes a negative data length).
#[no_mangle]
unsafe extern "C" fn ifnet_event(ifp: ifnet_t, event: *mut kern_event_msg) -> errno_t {
    if ifp.is_null() || event.is_null() {
        return Errno::EINVAL.0;
    }
    // SAFETY: the KPI contract: `event` points to a kern_event_msg header, read field by
    // field (a message without data words may be only KEV_MSG_HEADER_SIZE bytes long).
    let (total, vendor, class, subclass, code) = unsafe {
        (
            std::ptr::addr_of!((*event).total_size).read_unaligned(),
            std::ptr::addr_of!((*event).vendor_code).read_unaligned(),
            std::ptr::addr_of!((*event).kev_class).read_unaligned(),
            std::ptr::addr_of!((*event).kev_subclass).read_unaligned(),
            std::ptr::addr_of!((*event).event_code).read_unaligned(),
        )
    };
    assert!(
        total >= KEV_MSG_HEADER_SIZE,
        "ifnet_event: total_size {total} is smaller than the {KEV_MSG_HEADER_SIZE}-byte header"
    );
    // SAFETY: the KPI contract: the message is `total_size` bytes long, its data words start
    // at KEV_MSG_HEADER_SIZE.
    let data = unsafe {
        std::slice::from_raw_parts(
            event.cast::<u8>().add(KEV_MSG_HEADER_SIZE as usize),
            (total - KEV_MSG_HEADER_SIZE) as usize,
        )
    }
    .to_vec();
    deliver(ifp, (vendor, class, subclass, code), &data);
    0
}
