//! The ioctls `/dev/tunN` answers (docs/tun-contract.md section 7), each defined once with the
//! BSD encoding checked at compile time. The encoding and the interface ioctls of section 8
//! are the kernel's: they live in [`crate::kpi::ioccom`] and are re-exported here.

pub use crate::kpi::ioccom::{
    arg_len, ioc, IFNAMSIZ, IFREQ_LEN, IFSTATMAX, IOC_IN, IOC_INOUT, IOC_OUT, IOC_VOID,
    SIOCADDMULTI, SIOCAIFADDR, SIOCDELMULTI, SIOCDIFADDR, SIOCDIFADDR_IN6, SIOCGIFADDR,
    SIOCGIFDEVMTU, SIOCGIFMEDIA32, SIOCGIFMEDIA64, SIOCGIFSTATUS, SIOCSIFADDR, SIOCSIFALTMTU,
    SIOCSIFDSTADDR, SIOCSIFFLAGS, SIOCSIFLLADDR, SIOCSIFMTU,
};

const INT: usize = core::mem::size_of::<i32>();

/// Sets the driver-wide debug level.
pub const TUNSDEBUG: u32 = ioc(IOC_IN, b't', 90, INT);
/// Reads the debug level.
pub const TUNGDEBUG: u32 = ioc(IOC_OUT, b't', 89, INT);
/// Sets MTU and baudrate from a `struct tuninfo`.
pub const TUNSIFINFO: u32 = ioc(IOC_IN, b't', 91, TUNINFO_LEN);
/// Reads a `struct tuninfo`.
pub const TUNGIFINFO: u32 = ioc(IOC_OUT, b't', 92, TUNINFO_LEN);
/// Link-layer (sockaddr prefix) mode on or off.
pub const TUNSLMODE: u32 = ioc(IOC_IN, b't', 93, INT);
/// The interface name in a `struct ifreq`.
pub const TUNGIFNAME: u32 = ioc(IOC_OUT, b't', 93, IFREQ_LEN);
/// Point-to-point or broadcast interface mode.
pub const TUNSIFMODE: u32 = ioc(IOC_IN, b't', 94, INT);
/// The pid `SIOCGIFSTATUS` shows becomes the caller's.
pub const TUNSIFPID: u32 = ioc(IOC_VOID, b't', 95, 0);
/// AF-header mode on or off.
pub const TUNSIFHEAD: u32 = ioc(IOC_IN, b't', 96, INT);
/// Whether AF-header mode is on.
pub const TUNGIFHEAD: u32 = ioc(IOC_OUT, b't', 97, INT);
/// Non-blocking I/O on or off.
pub const FIONBIO: u32 = ioc(IOC_IN, b'f', 126, INT);
/// `SIGIO` on enqueue on or off.
pub const FIOASYNC: u32 = ioc(IOC_IN, b'f', 125, INT);
/// The framed length of the packet at the head of the queue.
pub const FIONREAD: u32 = ioc(IOC_OUT, b'f', 127, INT);
/// Sets the owner (direct callers only).
pub const FIOSETOWN: u32 = ioc(IOC_IN, b'f', 124, INT);
/// Reads the owner (direct callers only).
pub const FIOGETOWN: u32 = ioc(IOC_OUT, b'f', 123, INT);
/// Sets the owner process group.
pub const TIOCSPGRP: u32 = ioc(IOC_IN, b't', 118, INT);
/// Reads the owner process group.
pub const TIOCGPGRP: u32 = ioc(IOC_OUT, b't', 119, INT);

/// `struct tuninfo`: `int baudrate`, `u16 mtu`, `u8 type`, `u8` pad (TUNSIFINFO/TUNGIFINFO).
pub const TUNINFO_LEN: usize = 8;

// The values in docs/tun-contract.md, recomputed from the encoding above.
static_assertions::const_assert_eq!(TUNSDEBUG, 0x8004_745a);
static_assertions::const_assert_eq!(TUNGDEBUG, 0x4004_7459);
static_assertions::const_assert_eq!(TUNSIFINFO, 0x8008_745b);
static_assertions::const_assert_eq!(TUNGIFINFO, 0x4008_745c);
static_assertions::const_assert_eq!(TUNSLMODE, 0x8004_745d);
static_assertions::const_assert_eq!(TUNGIFNAME, 0x4020_745d);
static_assertions::const_assert_eq!(TUNSIFMODE, 0x8004_745e);
static_assertions::const_assert_eq!(TUNSIFPID, 0x2000_745f);
static_assertions::const_assert_eq!(TUNSIFHEAD, 0x8004_7460);
static_assertions::const_assert_eq!(TUNGIFHEAD, 0x4004_7461);
static_assertions::const_assert_eq!(FIONBIO, 0x8004_667e);
static_assertions::const_assert_eq!(FIOASYNC, 0x8004_667d);
static_assertions::const_assert_eq!(FIONREAD, 0x4004_667f);
static_assertions::const_assert_eq!(TIOCSPGRP, 0x8004_7476);
static_assertions::const_assert_eq!(TIOCGPGRP, 0x4004_7477);
static_assertions::const_assert_eq!(FIOSETOWN, 0x8004_667c);
static_assertions::const_assert_eq!(FIOGETOWN, 0x4004_667b);

/// Reads the `int` argument of an `IOC_IN` command.
pub fn int_arg(arg: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(arg.get(..INT)?.try_into().ok()?))
}

/// Writes the `int` result of an `IOC_OUT` command; `None` if the buffer is too short.
pub fn set_int_arg(arg: &mut [u8], value: i32) -> Option<()> {
    arg.get_mut(..INT)?.copy_from_slice(&value.to_ne_bytes());
    Some(())
}

/// `TAPSDEBUG`, FreeBSD's tap name for [`TUNSDEBUG`] (docs/tap-contract.md section 9).
pub const TAPSDEBUG: u32 = TUNSDEBUG;
/// `TAPGDEBUG` = [`TUNGDEBUG`].
pub const TAPGDEBUG: u32 = TUNGDEBUG;
/// `TAPSIFINFO` = [`TUNSIFINFO`] (`struct tapinfo` is `struct tuninfo`).
pub const TAPSIFINFO: u32 = TUNSIFINFO;
/// `TAPGIFINFO` = [`TUNGIFINFO`].
pub const TAPGIFINFO: u32 = TUNGIFINFO;
/// `TAPGIFNAME` = [`TUNGIFNAME`].
pub const TAPGIFNAME: u32 = TUNGIFNAME;
