//! The driver's numbers, each defined once (docs/tun-contract.md section 0).

/// Units `0..TUN_UNITS`: `/dev/tun0` … `/dev/tun15`.
pub const TUN_UNITS: usize = 16;
/// The most units any kind has (room in the driver's node table).
pub const MAX_UNITS: usize = if TUN_UNITS > TAP_UNITS {
    TUN_UNITS
} else {
    TAP_UNITS
};
/// Output-queue limit per unit, in packets.
pub const TUN_QLEN: usize = 128;
/// MTU at creation and after every close.
pub const TUNMTU: u32 = 1500;
/// Largest packet a write accepts (plus the 4-byte header in AF-header mode).
pub const TUNMRU: usize = 65535;
/// Smallest MTU `SIOCSIFMTU`/`TUNSIFINFO` accept (XNU `IF_MINMTU`).
pub const TUN_MINMTU: u32 = 72;
/// Largest MTU `SIOCSIFMTU` accepts (XNU `IF_MAXMTU`).
pub const TUN_MAXMTU: u32 = 65535;
/// Size of the address-family header in AF-header mode and of the BPF `DLT_NULL` header.
pub const AF_HEADER_LEN: usize = 4;

/// Units `0..TAP_UNITS`: `/dev/tap0` … `/dev/tap15` (docs/tap-contract.md section 0).
pub const TAP_UNITS: usize = 16;
/// Output-queue limit per tap unit, in frames.
pub const TAP_QLEN: usize = 128;
/// Tap MTU at creation and after every close (`ETHERMTU`).
pub const TAPMTU: u32 = 1500;
/// Largest frame a tap write accepts, header included.
pub const TAP_MRU: usize = 65535;
/// Smallest tap MTU (`IF_MINMTU`).
pub const TAP_MINMTU: u32 = 72;
/// Largest tap MTU: 65535 − 14 − 4, so an MTU-sized tagged frame fits one write.
pub const TAP_MAXMTU: u32 = 65517;
/// `ETHER_HDR_LEN`: destination, source, type.
pub const ETHER_HDR_LEN: usize = 14;
/// `ETHER_ADDR_LEN`.
pub const ETHER_ADDR_LEN: usize = 6;
