//! Output to the driver (xnu bsd/net/dlil.c `dlil_output`; kpi_interface.c `ifnet_output_raw`):
//! non-raw output runs the attached protocol's pre-output, then the interface's framer, then
//! the driver's output; raw output (an ARP frame the stack built, a BPF write with a complete
//! header) goes straight to the driver's output. Every frame an Ethernet driver's output
//! accepts is recorded (crate::net::frames).

use crate::abi::*;
use crate::errno::{check, Errno};
use crate::mbuf;
use crate::net::frames;
use crate::net::kpi_interface::with_if;
use std::ffi::c_char;

/// The stack sends `payload` through `ifp` toward `dest` (a sockaddr, `sa_len` first): the
/// packet is marked `M_BCAST` for the IPv4 limited broadcast and `M_MCAST` for an IPv4 or IPv6
/// multicast destination (bsd/netinet/ip_output.c, bsd/netinet6/ip6_output.c), then goes out
/// as [`output_mbuf`] sends it. The caller holds an I/O reference on `ifp`.
pub(crate) fn output(ifp: ifnet_t, family: u32, dest: &[u8], payload: &[u8]) -> Result<(), Errno> {
    if with_if(ifp, |i| !i.protocols.contains_key(&family)) {
        return Err(Errno::ENXIO);
    }
    let m = mbuf::packet_from(payload);
    let sa_family = dest.get(1).copied().map_or(0, u32::from);
    let link_flags = match sa_family {
        AF_INET if dest.get(4..8) == Some(&[255; 4]) => mbuf::M_BCAST,
        AF_INET if dest.get(4).is_some_and(|b| b & 0xf0 == 0xe0) => mbuf::M_MCAST,
        AF_INET6 if dest.get(8) == Some(&0xff) => mbuf::M_MCAST,
        _ => 0,
    };
    if link_flags != 0 {
        mbuf::set_flags(m, link_flags, 0);
    }
    output_mbuf(ifp, family, dest, m)
}

/// `dlil_output` (non-raw) for the packet `m`, which this call consumes: `ENXIO` (and the
/// packet freed) when `family` is not attached (`find_attached_proto`); the protocol's
/// pre-output, whose `EJUSTRETURN` means it kept the packet (ARP or ND holds it until the
/// neighbour answers: `Ok`), and any other error frees it; the framer (`EJUSTRETURN`: it
/// consumed the packet); the driver's output, which owns it then.
pub(crate) fn output_mbuf(ifp: ifnet_t, family: u32, dest: &[u8], m: mbuf_t) -> Result<(), Errno> {
    let (proto, framer) = with_if(ifp, |i| {
        (i.protocols.get(&family).copied(), i.callbacks.framer)
    });
    let Some(proto) = proto else {
        mbuf::free_chain(m);
        return Err(Errno::ENXIO);
    };
    let mut m = m;
    let mut sa = [0u8; 128];
    sa[..dest.len()].copy_from_slice(dest);
    let sa = sa.as_ptr().cast::<sockaddr>();
    let mut frame_type = [0 as c_char; 4];
    let mut ll_dest = [0 as c_char; 16];
    if let Some(pre) = proto.pre_output {
        // SAFETY: the pre-output function attached for `family`, given the packet (which it
        // may replace or keep), a 128-byte destination sockaddr, no route, and writable
        // frame-type and link-destination buffers.
        let rc = crate::kext::in_kext(|| unsafe {
            pre(
                ifp,
                family,
                &mut m,
                sa,
                std::ptr::null_mut(),
                frame_type.as_mut_ptr(),
                ll_dest.as_mut_ptr(),
            )
        });
        if rc == Errno::EJUSTRETURN.0 {
            return Ok(());
        }
        if rc != 0 {
            mbuf::free_chain(m);
            return Err(Errno(rc));
        }
    }
    if let Some(framer) = framer {
        // SAFETY: the interface's framer, given the packet (which it may replace), the
        // destination sockaddr and the buffers pre-output filled in.
        let rc = crate::kext::in_kext(|| unsafe {
            framer(ifp, &mut m, sa, ll_dest.as_ptr(), frame_type.as_ptr())
        });
        if rc != 0 {
            if rc != Errno::EJUSTRETURN.0 {
                mbuf::free_chain(m);
            }
            return Err(Errno(rc));
        }
    }
    driver_output(ifp, m)
}

/// A raw output (`ifnet_output_raw`; `dlil_output` with `DLIL_OUTPUT_FLAGS_RAW`): no
/// pre-output and no framer; `frame` reaches the driver's output as it is. The caller holds
/// an I/O reference on `ifp`.
pub(crate) fn output_raw(ifp: ifnet_t, frame: &[u8]) -> Result<(), Errno> {
    driver_output(ifp, mbuf::packet_from(frame))
}

/// A raw output of the packet `m` with its link-layer flags set first (ARP marks a
/// broadcast `M_BCAST`, bsd/net/ether_inet_pr_module.c `ether_inet_arp`).
pub(crate) fn output_raw_flagged(ifp: ifnet_t, frame: &[u8], flags: u32) -> Result<(), Errno> {
    let m = mbuf::packet_from(frame);
    if flags != 0 {
        mbuf::set_flags(m, flags, 0);
    }
    driver_output(ifp, m)
}

/// The driver's output, given the packet (which it now owns); on an Ethernet interface a
/// frame it accepts is recorded.
fn driver_output(ifp: ifnet_t, m: mbuf_t) -> Result<(), Errno> {
    let output = with_if(ifp, |i| i.callbacks.output).expect("output callback");
    let copy = frames::is_ethernet(ifp).then(|| mbuf::packet_bytes(m));
    // SAFETY: the driver's output callback, given the packet, which it now owns.
    let rc = crate::kext::in_kext(|| unsafe { output(ifp, m) });
    if let (0, Some(bytes)) = (rc, copy) {
        frames::output_accepted(ifp, bytes);
    }
    check(rc)
}
