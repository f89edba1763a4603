//! BPF taps (xnu bsd/net/bpf.c `bpfattach`, `bpf_tap_in`, `bpf_tap_out` → `bpf_tap_mbuf`): an
//! interface attached to BPF records every tap with its direction, DLT, link header and packet
//! bytes; a tap on an interface without a BPF attachment is only counted apart.

mod common;
mod ifdrv;

use common::*;
use std::ffi::c_void;
use xnu_sim::abi::*;
use xnu_sim::netinspect::{interface, tap_count, taps, untapped, Tap};

extern "C" {
    fn bpfattach(ifp: ifnet_t, dlt: u32, hdrlen: u32);
    fn bpf_tap_in(ifp: ifnet_t, dlt: u32, m: mbuf_t, header: *mut c_void, hlen: usize);
    fn bpf_tap_out(ifp: ifnet_t, dlt: u32, m: mbuf_t, header: *mut c_void, hlen: usize);
}

/// A packet holding `data`, written with `mbuf_copyback` (which sets `pkthdr.len`).
fn packet(data: &[u8]) -> mbuf_t {
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: valid out-pointer; `data` is readable for its length.
    unsafe {
        assert_eq!(
            mbuf_allocpacket(MBUF_WAITOK, data.len(), std::ptr::null_mut(), &mut m),
            0
        );
        assert_eq!(
            mbuf_copyback(m, 0, data.len(), data.as_ptr().cast(), MBUF_WAITOK),
            0
        );
        assert_eq!(mbuf_pkthdr_len(m), data.len());
    }
    m
}

#[test]
fn taps_record_direction_dlt_header_and_bytes() {
    boot();
    let ifp = ifdrv::attach("bpftest", 0);
    let name = "bpftest0";
    let inbound: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let outbound: Vec<u8> = (0..61u32).map(|i| (i * 13 + 1) as u8).collect();
    let mut hdr_in = 2u32.to_ne_bytes(); // DLT_NULL: the family word, host order
    let mut hdr_out = 30u32.to_ne_bytes();

    // Before bpfattach: the tap is counted apart and nothing is recorded.
    let m = packet(&inbound);
    // SAFETY: a live packet and a 4-byte header.
    unsafe { bpf_tap_in(ifp, DLT_NULL, m, hdr_in.as_mut_ptr().cast(), 4) };
    assert_eq!(untapped(name), 1, "a tap without a BPF attachment");
    assert!(taps(name).is_empty());
    assert_eq!(tap_count(name), 0);

    // SAFETY: an attached ifnet.
    unsafe { bpfattach(ifp, DLT_NULL, 4) };
    assert_eq!(interface(name).unwrap().bpf, Some((DLT_NULL, 4)));

    let o = packet(&outbound);
    // SAFETY: live packets; headers of 4 bytes, or none.
    unsafe {
        bpf_tap_in(ifp, DLT_NULL, m, hdr_in.as_mut_ptr().cast(), 4);
        bpf_tap_out(ifp, DLT_NULL, o, hdr_out.as_mut_ptr().cast(), 4);
        bpf_tap_out(ifp, 12, o, std::ptr::null_mut(), 0); // DLT_RAW, no link header
    }
    assert_eq!(
        taps(name),
        vec![
            Tap {
                outbound: false,
                dlt: DLT_NULL,
                header: hdr_in.to_vec(),
                packet: inbound.clone(),
            },
            Tap {
                outbound: true,
                dlt: DLT_NULL,
                header: hdr_out.to_vec(),
                packet: outbound.clone(),
            },
            Tap {
                outbound: true,
                dlt: 12,
                header: Vec::new(),
                packet: outbound.clone(),
            },
        ]
    );
    assert_eq!(tap_count(name), 3);
    assert_eq!(
        untapped(name),
        1,
        "taps after bpfattach are not counted apart"
    );

    // The taps copy the bytes: the packets still belong to the caller, who frees them.
    // SAFETY: our packets, each freed once.
    unsafe {
        assert_eq!(mbuf_pkthdr_len(m), inbound.len());
        mbuf_freem(m);
        mbuf_freem(o);
    }
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}
