//! Ioctl numbers, each defined once, with the BSD encoding checked at compile time
//! (tun-contract.md sections 7 and 8).

/// `IOC_VOID`: no argument.
pub const IOC_VOID: u32 = 0x2000_0000;
/// `IOC_OUT`: the kernel copies the argument out.
pub const IOC_OUT: u32 = 0x4000_0000;
/// `IOC_IN`: the kernel copies the argument in.
pub const IOC_IN: u32 = 0x8000_0000;
/// `IOC_INOUT`.
pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;

/// The BSD encoding: direction, 13-bit argument size, group, number.
pub const fn ioc(dir: u32, group: u8, num: u8, len: usize) -> u32 {
    dir | ((len as u32 & 0x1fff) << 16) | ((group as u32) << 8) | num as u32
}

/// The argument size encoded in a command.
pub const fn arg_len(cmd: u32) -> usize {
    ((cmd >> 16) & 0x1fff) as usize
}

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
/// `IFSTATMAX`: the most text `SIOCGIFSTATUS` may hold, without its NUL (net/if.h).
pub const IFSTATMAX: usize = 800;
/// `IFNAMSIZ`: the name at the start of `struct ifreq` and `struct ifstat`.
pub const IFNAMSIZ: usize = 16;

/// Interface ioctls (net/if.h, sys/sockio.h), argument sizes for `struct ifreq` (32),
/// `struct ifaliasreq` (64) and `struct ifstat` (16 + 800 + 1).
pub const SIOCSIFADDR: u32 = ioc(IOC_IN, b'i', 12, 32);
/// Sets the point-to-point destination.
pub const SIOCSIFDSTADDR: u32 = ioc(IOC_IN, b'i', 14, 32);
/// Sets interface flags.
pub const SIOCSIFFLAGS: u32 = ioc(IOC_IN, b'i', 16, 32);
/// Deletes an address.
pub const SIOCDIFADDR: u32 = ioc(IOC_IN, b'i', 25, 32);
/// Adds an address (`ifaliasreq`).
pub const SIOCAIFADDR: u32 = ioc(IOC_IN, b'i', 26, 64);
/// Joins a multicast group.
pub const SIOCADDMULTI: u32 = ioc(IOC_IN, b'i', 49, 32);
/// Leaves a multicast group.
pub const SIOCDELMULTI: u32 = ioc(IOC_IN, b'i', 50, 32);
/// Sets the MTU.
pub const SIOCSIFMTU: u32 = ioc(IOC_IN, b'i', 52, 32);
/// Appends the driver's status text to a `struct ifstat`.
pub const SIOCGIFSTATUS: u32 = ioc(IOC_INOUT, b'i', 61, IFNAMSIZ + IFSTATMAX + 1);
/// Removes an IPv6 address (`struct in6_ifreq`, 288 bytes on Darwin: its union holds
/// `struct icmp6_ifstat`). The driver issues it on an in-kernel socket at close.
pub const SIOCDIFADDR_IN6: u32 = ioc(IOC_IN, b'i', 25, 288);

/// `struct ifreq`: a name, then a 16-byte union.
pub const IFREQ_LEN: usize = 32;

// The values in tun-contract.md, recomputed from the encoding above.
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
static_assertions::const_assert_eq!(SIOCSIFADDR, 0x8020_690c);
static_assertions::const_assert_eq!(SIOCAIFADDR, 0x8040_691a);
static_assertions::const_assert_eq!(SIOCSIFDSTADDR, 0x8020_690e);
static_assertions::const_assert_eq!(SIOCDIFADDR, 0x8020_6919);
static_assertions::const_assert_eq!(SIOCSIFFLAGS, 0x8020_6910);
static_assertions::const_assert_eq!(SIOCSIFMTU, 0x8020_6934);
static_assertions::const_assert_eq!(SIOCADDMULTI, 0x8020_6931);
static_assertions::const_assert_eq!(SIOCDELMULTI, 0x8020_6932);
static_assertions::const_assert_eq!(SIOCGIFSTATUS, 0xc331_693d);
static_assertions::const_assert_eq!(SIOCDIFADDR_IN6, 0x8120_6919);

/// Reads the `int` argument of an `IOC_IN` command.
pub fn int_arg(arg: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(arg.get(..INT)?.try_into().ok()?))
}

/// Writes the `int` result of an `IOC_OUT` command; `None` if the buffer is too short.
pub fn set_int_arg(arg: &mut [u8], value: i32) -> Option<()> {
    arg.get_mut(..INT)?.copy_from_slice(&value.to_ne_bytes());
    Some(())
}
