//! What a write hands to the stack: the packet, the link header BPF shows with it, and the
//! bytes it counts (shared by the media's write paths, [`crate::l3`] and [`crate::l2`]).

use crate::kpi::mbuf::Mbuf;
use crate::limits::ETHER_HDR_LEN;

/// The longest link header a medium shows BPF on input (Ethernet's).
const MAX_LINK_HEADER: usize = ETHER_HDR_LEN;

/// A packet or frame built by a write, ready for `ifnet_input`.
pub struct Inbound {
    /// The chain: data starts after the link header, which `pkthdr.header` points at.
    pub packet: Mbuf,
    header: [u8; MAX_LINK_HEADER],
    header_len: usize,
    /// What the counters and the interface statistics count: the IP packet for tun, the
    /// whole frame for tap.
    pub bytes: u32,
}

impl Inbound {
    /// `packet` with the link header `header` (at most 14 bytes) BPF shows in front of it.
    pub fn new(packet: Mbuf, header: &[u8], bytes: u32) -> Inbound {
        let header_len = header.len().min(MAX_LINK_HEADER);
        let mut copy = [0u8; MAX_LINK_HEADER];
        copy[..header_len].copy_from_slice(&header[..header_len]);
        Inbound {
            packet,
            header: copy,
            header_len,
            bytes,
        }
    }

    /// The link header BPF shows.
    pub fn bpf_header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }
}
