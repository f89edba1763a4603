//! BPF (xnu bsd/net/bpf.h, bsd/net/bpf.c): an interface's data-link attachment and the taps
//! the driver makes, recorded so a test sees what `tcpdump` would. A tap on an interface
//! without a BPF attachment is counted apart.

use crate::abi::*;
use crate::config;
use crate::mbuf;
use crate::net::kpi_interface::with_if;
use std::ffi::c_void;

/// How many taps per interface the simulator keeps (a long traffic run must not grow without
/// bound); `tap_count` counts them all.
pub const TAP_LOG: usize = 4096;

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
    let header = if header.is_null() {
        Vec::new()
    } else {
        // SAFETY: the caller passes `hlen` readable bytes (or none).
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
