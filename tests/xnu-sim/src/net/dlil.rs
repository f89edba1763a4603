//! The data-link interface layer (xnu bsd/net/dlil.c): packet input from the driver
//! (`ifnet_input`, demux, delivery to the attached protocol), protocol attach and detach, the
//! interface ioctl dispatch (`ifnet_ioctl`: the protocol, then the driver), and the I/O
//! references that keep a detach waiting while a stack call is inside the driver. Output to
//! the driver is in crate::net::dlil_output.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use crate::mbuf;
use crate::net::frames;
use crate::net::kpi_interface::{add_stats, with_if, with_table, IfState};
use std::ffi::{c_char, c_int, c_ulong, c_void};

/// `ifnet_input` (bsd/net/dlil.c → `ifnet_input_common`): for each packet (chained by
/// `nextpkt`) the stack checks `rcvif` and `pkthdr.len` (stricter: a mismatch panics), on an
/// Ethernet interface the frame layout of contract TW-2 (stricter), demuxes through the
/// driver, and delivers to the protocol attached for the family (whose input calls
/// `proto_input`). Not modelled: XNU's own packet counting and its DLIL input thread.
#[no_mangle]
unsafe extern "C" fn ifnet_input(
    ifp: ifnet_t,
    first: mbuf_t,
    stats: *const ifnet_stat_increment_param,
) -> errno_t {
    if !stats.is_null() {
        // SAFETY: the KPI contract: a non-NULL `stats` points to the caller's counts.
        let s = unsafe { *stats };
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
    // SAFETY: the simulator's own KPI function; it checks that `m` is a live mbuf.
    unsafe { mbuf_nextpkt(m) }
}

fn mbuf_setnextpkt_raw(m: mbuf_t, n: mbuf_t) {
    extern "C" {
        fn mbuf_setnextpkt(m: mbuf_t, n: mbuf_t);
    }
    // SAFETY: the simulator's own KPI function; it checks that `m` is a live mbuf.
    unsafe { mbuf_setnextpkt(m, n) }
}

/// `dlil_input_packet_list` (bsd/net/dlil.c) for one packet: demux through the driver's
/// callback (`EJUSTRETURN`: demux consumed the packet; another error: no protocol), then the
/// packet is dropped when demux marked it `M_PROMISC` (after the interface filters, which are
/// not modelled) or no protocol is attached for its family, else handed to the protocol's
/// input with the frame header (read again: demux may have moved it). On an Ethernet
/// interface the frame's layout is checked first (TW-2) and the frame recorded.
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
    let frame = frames::is_ethernet(ifp).then(|| frames::received(ifp, m));
    // SAFETY: the simulator's own KPI function; `m` is a live packet (checked above).
    let header = unsafe { mbuf_pkthdr_header(m) }.cast::<c_char>();
    let mut pf: u32 = 0;
    // SAFETY: the driver's demux callback, with its live ifnet, a live packet, the packet's
    // frame header and a writable protocol family.
    let rc = crate::kext::in_kext(|| unsafe { demux(ifp, m, header, &mut pf) });
    let consumed = rc == Errno::EJUSTRETURN.0;
    let flags = if consumed { 0 } else { mbuf::flags(m) };
    if let Some(bytes) = frame {
        let demux = if rc == 0 { Ok(pf) } else { Err(Errno(rc)) };
        frames::input_seen(
            ifp,
            frames::FrameIn {
                bytes,
                demux,
                flags,
            },
        );
    }
    if consumed {
        return;
    }
    let input = if rc == 0 && flags & mbuf::M_PROMISC == 0 {
        with_if(ifp, |i| i.protocols.get(&pf).and_then(|p| p.input))
    } else {
        None
    };
    match input {
        Some(input) => {
            // SAFETY: as above.
            let header = unsafe { mbuf_pkthdr_header(m) }.cast::<c_char>();
            // SAFETY: the input function attached for `pf`, given the packet (which it now
            // owns) and its frame header.
            crate::kext::in_kext(|| unsafe { input(ifp, pf, m, header) });
        }
        None => {
            with_if(ifp, |i| i.stack_drops += 1);
            mbuf::free_chain(m);
        }
    }
}

/// `ifnet_attach_protocol` (bsd/net/dlil.c → `dlil_attach_protocol_internal`): `ENXIO` unless attached, `EEXIST` when the family is attached, calls the driver's `add_proto` with the caller's demux list; on success marks the interface up and calls the driver's ioctl with `SIOCSIFFLAGS` and NULL (since xnu-4570.51.1, macOS 10.13.4).
#[no_mangle]
unsafe extern "C" fn ifnet_attach_protocol(
    ifp: ifnet_t,
    pf: u32,
    param: *const ifnet_attach_proto_param,
) -> errno_t {
    // SAFETY: the KPI contract: `param` points to the caller's initialised parameters.
    let param = unsafe { *param };
    if param.input.is_none() || param.pre_output.is_none() {
        return Errno::EINVAL.0;
    }
    // SAFETY: the KPI contract: the demux list is the caller's, live during the call.
    unsafe { attach_protocol(ifp, pf, param) }
}

/// `dlil_attach_protocol_internal` (bsd/net/dlil.c), shared by the KPI and the stack's own
/// protocol modules (Ethernet's plumbers).
///
/// # Safety
/// `param.demux_array` is NULL or points to `param.demux_count` descriptors whose data stays
/// readable during the call.
pub(crate) unsafe fn attach_protocol(
    ifp: ifnet_t,
    pf: u32,
    param: ifnet_attach_proto_param,
) -> errno_t {
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
        let (list, count) = (param.demux_array, param.demux_count);
        // SAFETY: the interface's add_proto callback with its live ifnet and the caller's
        // demux list (the caller's contract).
        let rc = crate::kext::in_kext(|| unsafe { add(ifp, pf, list, count) });
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
    detach_protocol(ifp, pf)
}

/// The detach itself (`dlil.c` `ifnet_detach_protocol` after its checks), also run by
/// `ifnet_detach_final` for protocols still attached.
pub(crate) fn detach_protocol(ifp: ifnet_t, pf: u32) -> errno_t {
    let (removed, del, last) = with_if(ifp, |i| {
        let removed = i.protocols.remove(&pf).is_some();
        (removed, i.callbacks.del_proto, i.protocols.is_empty())
    });
    if !removed {
        return Errno::ENXIO.0;
    }
    if let Some(del) = del {
        // SAFETY: the driver's del_proto callback with its live ifnet.
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

/// The interface ioctl dispatch (bsd/net/dlil.c `ifnet_ioctl`): the driver's ioctl callback,
/// or `EOPNOTSUPP` without one. The generic layer (crate::stack) decides which errors count
/// as success (`EOPNOTSUPP` on address commands does, as in XNU).
pub(crate) fn call_ioctl(ifp: ifnet_t, cmd: u32, data: *mut c_void) -> c_int {
    let ioctl = with_if(ifp, |i| i.callbacks.ioctl);
    match ioctl {
        // SAFETY: the driver's ioctl callback with its live ifnet; `data` is NULL or the
        // argument buffer the command's size calls for, owned by the caller.
        Some(f) => crate::kext::in_kext(|| unsafe { f(ifp, cmd as std::ffi::c_ulong, data) }),
        None => Errno::EOPNOTSUPP.0,
    }
}

/// `ifnet_ioctl` (bsd/net/dlil.c): the ioctl goes to the protocol attached for `pf` (when
/// `pf` is not 0), then to the driver; a handler's answer counts only while nobody before it
/// handled the ioctl (`EOPNOTSUPP` so far), or when it is `EJUSTRETURN`; an error stops the
/// walk; `ENOTSUP` reads as `EOPNOTSUPP` and `EJUSTRETURN` as 0. So a protocol that handled
/// the ioctl hides the driver's error. Interface filters are not modelled.
pub(crate) fn ifnet_ioctl(ifp: ifnet_t, pf: u32, cmd: u32, data: *mut c_void) -> c_int {
    let merge = |retval: &mut c_int, result: c_int| -> bool {
        if *retval == Errno::EOPNOTSUPP.0 || result == Errno::EJUSTRETURN.0 {
            *retval = if result == Errno::ENOTSUP.0 {
                Errno::EOPNOTSUPP.0
            } else {
                result
            };
            return *retval != 0 && *retval != Errno::EOPNOTSUPP.0;
        }
        false
    };
    let mut retval = Errno::EOPNOTSUPP.0;
    let proto = if pf == 0 {
        None
    } else {
        with_if(ifp, |i| i.protocols.get(&pf).copied())
    };
    let mut stop = false;
    if let Some(proto) = proto {
        let result = match proto.ioctl {
            // SAFETY: the ioctl handler attached for `pf`, with the live ifnet and the
            // caller's argument.
            Some(f) => crate::kext::in_kext(|| unsafe { f(ifp, pf, cmd as c_ulong, data) }),
            None => Errno::EOPNOTSUPP.0,
        };
        stop = merge(&mut retval, result);
    }
    if !stop {
        let result = call_ioctl(ifp, cmd, data);
        merge(&mut retval, result);
    }
    if retval == Errno::EJUSTRETURN.0 {
        0
    } else {
        retval
    }
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
        with_table(|t| {
            if let Some(i) = t.get_mut(&self.0) {
                i.iorefs -= 1;
            }
        });
    }
}

/// Takes an I/O reference on interface `name`: `ENXIO` unless it is attached or detaching.
pub(crate) fn io_ref(name: &str) -> Result<IoRef, Errno> {
    with_table(|t| {
        let (&h, i) = t
            .iter_mut()
            .find(|(_, i)| {
                i.name == name && matches!(i.state, IfState::Attached | IfState::Detaching)
            })
            .ok_or(Errno::ENXIO)?;
        i.iorefs += 1;
        Ok(IoRef(h))
    })
}
