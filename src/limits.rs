//! The driver's numbers, each defined once (docs/tun-contract.md section 0).

/// Units `0..TUN_UNITS`: `/dev/tun0` … `/dev/tun15`.
pub const TUN_UNITS: usize = 16;
/// The most units any kind has (room in the driver's node table).
pub const MAX_UNITS: usize = TUN_UNITS;
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
