//! The link-layer view of a packet (xnu bsd/sys/mbuf.h `m_flags`; bsd/net/ether_if_module.c
//! `ether_demux`, `ether_remove_vlan_encapsulation`, `ether_frameout`): the `M_BCAST`,
//! `M_MCAST`, `M_PROMISC` and `M_LOOP` flags of the packet header, where the frame header lies
//! relative to the data of the first mbuf (contract TW-2), the bytes `ether_demux` reads at the
//! data start, removing an 802.1Q tag in place, and writing a prepended header.

use super::store::{seg, with};
use crate::abi::*;

/// `M_LOOP` (bsd/sys/mbuf.h): the stack may loop the packet back (set by pre-output).
pub const M_LOOP: u32 = 0x0040;
/// `M_BCAST` (bsd/sys/mbuf.h): sent or received as link-level broadcast.
pub const M_BCAST: u32 = 0x0100;
/// `M_MCAST` (bsd/sys/mbuf.h): sent or received as link-level multicast.
pub const M_MCAST: u32 = 0x0200;
/// `M_PROMISC` (bsd/sys/mbuf.h): unicast for another station; not for the stack.
pub const M_PROMISC: u32 = 0x2000;

/// The packet's link-layer flags (0 for an mbuf without a packet header).
pub(crate) fn flags(m: mbuf_t) -> u32 {
    with(|t| seg(t, m).pkthdr.as_ref().map_or(0, |h| h.flags))
}

/// Sets the bits of `set` and clears those of `clear` in the packet's flags.
pub(crate) fn set_flags(m: mbuf_t, set: u32, clear: u32) {
    with(|t| {
        let h = seg(t, m)
            .pkthdr
            .as_mut()
            .unwrap_or_else(|| panic!("mbuf {m:p}: no packet header"));
        h.flags = (h.flags | set) & !clear;
    })
}

/// How many bytes before the first mbuf's data start the frame header (`pkthdr.header`) lies,
/// when it lies inside that mbuf's storage; `None` for a NULL header or one elsewhere.
pub(crate) fn header_lead(m: mbuf_t) -> Option<usize> {
    with(|t| {
        let mb = seg(t, m);
        let header = mb.pkthdr.as_ref()?.header;
        let start = mb.buf.as_ptr() as usize;
        let data = start + mb.off;
        (header >= start && header <= data).then(|| data - header)
    })
}

/// The first mbuf's `m_len`.
pub(crate) fn first_len(m: mbuf_t) -> usize {
    with(|t| seg(t, m).len)
}

/// `n` bytes at the first mbuf's data start, as an unchecked read sees them: beyond `m_len`
/// it reads the rest of the storage (fresh storage is 0xA5), and past the storage zeroes.
pub(crate) fn peek_first(m: mbuf_t, n: usize) -> Vec<u8> {
    with(|t| {
        let mb = seg(t, m);
        let mut out: Vec<u8> = mb.buf[mb.off..].iter().take(n).copied().collect();
        out.resize(n, 0);
        out
    })
}

/// The 14 frame-header bytes when the header lies at least that far before the data start in
/// the first mbuf's storage.
pub(crate) fn header_bytes(m: mbuf_t) -> Option<[u8; 14]> {
    let lead = header_lead(m)?;
    if lead < 14 {
        return None;
    }
    with(|t| {
        let mb = seg(t, m);
        let at = mb.off - lead;
        mb.buf[at..at + 14].try_into().ok()
    })
}

/// `ether_remove_vlan_encapsulation` (xnu-11215 and later): with the frame header at least 14
/// bytes before the data in the first mbuf's storage and the 4-byte tag in the first mbuf
/// (the older `ether_demux` read it at header + 14, so both layouts are demanded), rewrites the
/// header with the encapsulated type right before the data that follows the tag, advances the
/// data by 4 and points `pkthdr.header` at the new header. Returns the tag's VLAN ID and the
/// inner type, or `None` (the caller drops the packet) when the layout does not allow it.
pub(crate) fn remove_vlan_encap(m: mbuf_t) -> Option<(u16, [u8; 2])> {
    let lead = header_lead(m)?;
    with(|t| {
        let mb = seg(t, m);
        let hdr = mb.pkthdr.as_ref()?;
        if lead < 14 || hdr.len < 4 || mb.len < 4 {
            return None;
        }
        let off = mb.off;
        let mut header = [0u8; 14];
        header.copy_from_slice(&mb.buf[off - lead..off - lead + 14]);
        let tag = u16::from_be_bytes([mb.buf[off], mb.buf[off + 1]]) & 0x0fff;
        let inner = [mb.buf[off + 2], mb.buf[off + 3]];
        header[12..14].copy_from_slice(&inner);
        let new_off = off + 4;
        mb.buf[new_off - 14..new_off].copy_from_slice(&header);
        mb.off = new_off;
        mb.len -= 4;
        let at = mb.buf.as_ptr() as usize + new_off - 14;
        let hdr = mb.pkthdr.as_mut()?;
        hdr.len -= 4;
        hdr.header = at;
        Some((tag, inner))
    })
}

/// Overwrites the first `bytes.len()` bytes of the first mbuf's data (a header the caller just
/// prepended); panics when the first mbuf holds fewer.
pub(crate) fn write_front(m: mbuf_t, bytes: &[u8]) {
    with(|t| {
        let mb = seg(t, m);
        assert!(
            mb.len >= bytes.len(),
            "mbuf {m:p}: {} header bytes do not fit the first mbuf ({})",
            bytes.len(),
            mb.len
        );
        let off = mb.off;
        mb.buf[off..off + bytes.len()].copy_from_slice(bytes);
    })
}
