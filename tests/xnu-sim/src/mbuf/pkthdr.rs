//! The packet header (xnu bsd/kern/kpi_mbuf.c `mbuf_pkthdr_*`): the packet length, the
//! receiving interface and the frame-header pointer, on the first mbuf of a packet only.

use super::store::{seg, with};
use crate::abi::*;
use std::ffi::c_void;

/// `pkthdr.rcvif` of a packet.
pub(crate) fn rcvif(m: mbuf_t) -> usize {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.rcvif))
}

/// `mbuf_pkthdr_len` (bsd/kern/kpi_mbuf.c): the packet header's length. Stricter than XNU: an
/// mbuf without a packet header panics.
#[no_mangle]
extern "C" fn mbuf_pkthdr_len(m: mbuf_t) -> usize {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_ref()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .len
    })
}

/// `mbuf_pkthdr_setlen` (bsd/kern/kpi_mbuf.c): sets the packet header's length. Stricter than
/// XNU: an mbuf without a packet header panics.
#[no_mangle]
extern "C" fn mbuf_pkthdr_setlen(m: mbuf_t, len: usize) {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .len = len
    })
}

/// `mbuf_pkthdr_setrcvif` (bsd/kern/kpi_mbuf.c): stores the receiving interface and returns 0.
/// Stricter than XNU: an mbuf without a packet header panics.
#[no_mangle]
extern "C" fn mbuf_pkthdr_setrcvif(m: mbuf_t, ifp: ifnet_t) -> errno_t {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .rcvif = ifp as usize
    });
    0
}

/// `mbuf_pkthdr_header` (bsd/kern/kpi_mbuf.c): the stored frame-header pointer; NULL for an mbuf
/// without a packet header; stale handles panic.
#[no_mangle]
extern "C" fn mbuf_pkthdr_header(m: mbuf_t) -> *mut c_void {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.header) as *mut c_void)
}

/// `mbuf_pkthdr_setheader` (bsd/kern/kpi_mbuf.c): stores the frame-header pointer. Stricter
/// than XNU: an mbuf without a packet header panics.
#[no_mangle]
extern "C" fn mbuf_pkthdr_setheader(m: mbuf_t, header: *mut c_void) {
    with(|t| {
        seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"))
            .header = header as usize
    })
}
