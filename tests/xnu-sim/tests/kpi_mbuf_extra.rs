//! More of the mbuf KPI (xnu bsd/kern/kpi_mbuf.c `mbuf_free` → bsd/kern/uipc_mbuf.c `m_free`,
//! `mbuf_pkthdr_header`, `mbuf_pkthdr_setheader`): freeing one segment returns its successor,
//! and the frame-header pointer lives in the packet header (moving with it on a prepend).

mod common;

use common::*;
use std::ffi::c_void;
use xnu_sim::abi::{mbuf_how_t, mbuf_t, MBUF_WAITOK};
use xnu_sim::mbuf::live_mbufs;

extern "C" {
    fn mbuf_free(m: mbuf_t) -> mbuf_t;
    fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void;
    fn mbuf_pkthdr_setheader(m: mbuf_t, header: *mut c_void);
    fn mbuf_prepend(m: *mut mbuf_t, len: usize, how: mbuf_how_t) -> i32;
}

/// A packet of `len` bytes spread over several segments: `mbuf_copyback` past a small
/// allocation appends mbufs to the chain.
fn chain(len: usize) -> mbuf_t {
    let mut m: mbuf_t = std::ptr::null_mut();
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    // SAFETY: valid pointers; `data` is readable for `len` bytes.
    unsafe {
        assert_eq!(
            mbuf_allocpacket(MBUF_WAITOK, 16, std::ptr::null_mut(), &mut m),
            0
        );
        assert_eq!(
            mbuf_copyback(m, 0, len, data.as_ptr().cast(), MBUF_WAITOK),
            0
        );
    }
    assert!(segment_lengths(m).len() >= 2, "a chain of several segments");
    m
}

/// The segments of a chain, head first.
fn segments(m: mbuf_t) -> Vec<mbuf_t> {
    let mut out = Vec::new();
    let mut cur = m;
    while !cur.is_null() {
        out.push(cur);
        // SAFETY: live segments of one chain.
        cur = unsafe { mbuf_next(cur) };
    }
    out
}

#[test]
fn free_releases_one_segment_and_returns_the_next() {
    const NAME: &str = "free_releases_one_segment_and_returns_the_next";
    if is_child(NAME) {
        boot();
        let m = chain(1000);
        // SAFETY: the head freed, then used: must panic.
        unsafe {
            mbuf_free(m);
            mbuf_len(m);
        }
        child_survived();
    }
    boot();
    let m = chain(1000);
    let segs = segments(m);
    let lens = segment_lengths(m);
    let live = live_mbufs();
    assert_eq!(live, segs.len());
    // SAFETY: each segment freed exactly once, head first; the rest stays usable.
    unsafe {
        let next = mbuf_free(m);
        assert_eq!(next, segs[1], "mbuf_free returns the successor");
        assert_eq!(live_mbufs(), live - 1, "only one segment was freed");
        assert_eq!(
            segment_lengths(next),
            lens[1..],
            "the rest of the chain is intact"
        );
        let mut cur = next;
        let mut freed = 1;
        while !cur.is_null() {
            cur = mbuf_free(cur);
            freed += 1;
            assert_eq!(live_mbufs(), live - freed);
        }
        assert_eq!(freed, segs.len(), "the last segment's successor is NULL");
    }
    assert_eq!(live_mbufs(), 0);
    expect_kernel_panic(NAME, "not a live mbuf");
}

#[test]
fn pkthdr_header_round_trips_and_needs_a_packet_header() {
    const NAME: &str = "pkthdr_header_round_trips_and_needs_a_packet_header";
    if is_child(NAME) {
        boot();
        let m = chain(1000);
        let second = segments(m)[1];
        let mut frame = [0u8; 4];
        // SAFETY: a live mbuf without a packet header: setheader must panic.
        unsafe { mbuf_pkthdr_setheader(second, frame.as_mut_ptr().cast()) };
        child_survived();
    }
    boot();
    let mut m = chain(1000);
    let mut frame = [2u8, 0, 0, 0];
    let header: *mut c_void = frame.as_mut_ptr().cast();
    // SAFETY: a live packet; `frame` outlives every use of the pointer.
    unsafe {
        assert!(mbuf_pkthdr_header(m).is_null(), "no frame header yet");
        mbuf_pkthdr_setheader(m, header);
        assert_eq!(mbuf_pkthdr_header(m), header);
        // The pointer lives in the packet header: a prepend that gives a new head moves it.
        let old = m;
        assert_eq!(mbuf_prepend(&mut m, 4, MBUF_WAITOK), 0);
        assert_ne!(m, old, "strict heads: a new head");
        assert_eq!(mbuf_pkthdr_header(m), header);
        assert!(
            mbuf_pkthdr_header(old).is_null(),
            "the old head has no packet header any more"
        );
        mbuf_pkthdr_setheader(m, std::ptr::null_mut());
        assert!(mbuf_pkthdr_header(m).is_null());
        mbuf_freem(m);
    }
    assert_eq!(live_mbufs(), 0);
    expect_kernel_panic(NAME, "no packet header");
}
