//! How a packet is framed between the driver and the user (docs/tun-contract.md section 3).
//!
//! The queue holds bare packets with their family and destination; the prefix a reader sees is
//! built at read time from the current mode (F-2), so a mode change with packets queued is safe.

use crate::kpi::addr::SockAddr;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{AF_INET, AF_INET6};
use crate::limits::AF_HEADER_LEN;

/// The framing mode of a unit. At most one of AF header and link layer is on (F-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Framing {
    /// The packet only; on write the family comes from the IP version nibble.
    #[default]
    Raw,
    /// A 4-byte address family in network byte order before the packet (`TUNSIFHEAD`).
    AfHeader,
    /// Reads start with the destination sockaddr the stack gave; writes are raw (`TUNSLMODE`).
    LinkLayer,
}

impl Framing {
    /// Bytes before the packet that a write carries.
    pub const fn write_header_len(self) -> usize {
        match self {
            Framing::AfHeader => AF_HEADER_LEN,
            Framing::Raw | Framing::LinkLayer => 0,
        }
    }

    /// Bytes a read puts before a packet sent to `dest` (`FIONREAD` adds them too).
    pub fn read_prefix_len(self, dest: &SockAddr) -> usize {
        match self {
            Framing::Raw => 0,
            Framing::AfHeader => AF_HEADER_LEN,
            Framing::LinkLayer => dest.as_bytes().len(),
        }
    }

    /// `TUNSIFHEAD(on)` (F-1): on selects AF-header mode, which turns link-layer mode off;
    /// off turns only AF-header mode off.
    pub const fn with_af_header(self, on: bool) -> Framing {
        match (on, self) {
            (true, _) => Framing::AfHeader,
            (false, Framing::AfHeader) => Framing::Raw,
            (false, other) => other,
        }
    }

    /// `TUNSLMODE(on)` (F-1): on selects link-layer mode, which turns AF-header mode off;
    /// off turns only link-layer mode off.
    pub const fn with_link_layer(self, on: bool) -> Framing {
        match (on, self) {
            (true, _) => Framing::LinkLayer,
            (false, Framing::LinkLayer) => Framing::Raw,
            (false, other) => other,
        }
    }
}

/// The family of a raw packet, from the high nibble of its first byte: 4 → `AF_INET`,
/// 6 → `AF_INET6`, anything else → `EAFNOSUPPORT` (contract W6).
pub fn family_from_version(first_byte: u8) -> Result<u32, Errno> {
    match first_byte >> 4 {
        4 => Ok(AF_INET),
        6 => Ok(AF_INET6),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// The family in an AF header (network byte order); only `AF_INET` and `AF_INET6` (W6).
pub fn family_from_af_header(header: [u8; AF_HEADER_LEN]) -> Result<u32, Errno> {
    match u32::from_be_bytes(header) {
        family @ (AF_INET | AF_INET6) => Ok(family),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Whether the driver carries `family`.
pub const fn is_supported_family(family: u32) -> bool {
    family == AF_INET || family == AF_INET6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_nibble_decides_the_raw_family_w6() {
        assert_eq!(family_from_version(0x45), Ok(AF_INET));
        assert_eq!(family_from_version(0x60), Ok(AF_INET6));
        for b in [0x00, 0x15, 0x50, 0x7f, 0xff] {
            assert_eq!(
                family_from_version(b),
                Err(Errno::EAFNOSUPPORT),
                "byte {b:#x}"
            );
        }
    }

    #[test]
    fn af_header_is_network_order_and_darwin_numbers_w6() {
        assert_eq!(family_from_af_header([0, 0, 0, 2]), Ok(AF_INET));
        assert_eq!(family_from_af_header([0, 0, 0, 30]), Ok(AF_INET6));
        // FreeBSD's AF_INET6 (28) and host order are refused.
        assert_eq!(
            family_from_af_header([0, 0, 0, 28]),
            Err(Errno::EAFNOSUPPORT)
        );
        assert_eq!(
            family_from_af_header([2, 0, 0, 0]),
            Err(Errno::EAFNOSUPPORT)
        );
    }

    #[test]
    fn af_header_and_link_layer_exclude_each_other_f1() {
        use Framing::*;
        assert_eq!(LinkLayer.with_af_header(true), AfHeader);
        assert_eq!(AfHeader.with_link_layer(true), LinkLayer);
        // Setting one to 0 turns off only that one.
        assert_eq!(LinkLayer.with_af_header(false), LinkLayer);
        assert_eq!(AfHeader.with_link_layer(false), AfHeader);
        assert_eq!(AfHeader.with_af_header(false), Raw);
        assert_eq!(LinkLayer.with_link_layer(false), Raw);
        assert_eq!(Raw.with_af_header(false), Raw);
    }

    #[test]
    fn read_prefix_is_the_header_or_the_sockaddr() {
        let dest = SockAddr::new(&[
            28, 30, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0,
            0, 0,
        ]);
        assert_eq!(Framing::Raw.read_prefix_len(&dest), 0);
        assert_eq!(Framing::AfHeader.read_prefix_len(&dest), 4);
        assert_eq!(Framing::LinkLayer.read_prefix_len(&dest), 28);
    }

    #[test]
    fn only_af_header_mode_carries_a_write_header() {
        assert_eq!(Framing::Raw.write_header_len(), 0);
        assert_eq!(Framing::LinkLayer.write_header_len(), 0);
        assert_eq!(Framing::AfHeader.write_header_len(), 4);
    }
}
