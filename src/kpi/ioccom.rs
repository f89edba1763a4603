//! The BSD ioctl encoding (xnu bsd/sys/ioccom.h) and the interface ioctls the kernel defines
//! (bsd/net/if.h, bsd/sys/sockio.h, bsd/netinet6/in6_var.h), with their argument sizes.
//! Each value is recomputed at compile time from the encoding and checked against the number
//! in docs/tun-contract.md section 8.

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

/// The argument size encoded in a command (`IOCPARM_LEN`).
pub const fn arg_len(cmd: u32) -> usize {
    ((cmd >> 16) & 0x1fff) as usize
}

/// `IFNAMSIZ`: the name at the start of `struct ifreq` and `struct ifstat`.
pub const IFNAMSIZ: usize = 16;
/// `struct ifreq`: a name, then a 16-byte union.
pub const IFREQ_LEN: usize = 32;
/// `IFSTATMAX`: the most text `SIOCGIFSTATUS` may hold, without its NUL (net/if.h).
pub const IFSTATMAX: usize = 800;
/// `struct in6_ifreq`: 288 bytes on Darwin (its union holds `struct icmp6_ifstat`).
pub const IN6_IFREQ_LEN: usize = 288;

/// Sets an interface address (`struct ifreq`).
pub const SIOCSIFADDR: u32 = ioc(IOC_IN, b'i', 12, IFREQ_LEN);
/// Sets the point-to-point destination.
pub const SIOCSIFDSTADDR: u32 = ioc(IOC_IN, b'i', 14, IFREQ_LEN);
/// Sets interface flags.
pub const SIOCSIFFLAGS: u32 = ioc(IOC_IN, b'i', 16, IFREQ_LEN);
/// Deletes an address.
pub const SIOCDIFADDR: u32 = ioc(IOC_IN, b'i', 25, IFREQ_LEN);
/// Adds an address (`struct ifaliasreq`, 64 bytes).
pub const SIOCAIFADDR: u32 = ioc(IOC_IN, b'i', 26, 64);
/// Joins a multicast group.
pub const SIOCADDMULTI: u32 = ioc(IOC_IN, b'i', 49, IFREQ_LEN);
/// Leaves a multicast group.
pub const SIOCDELMULTI: u32 = ioc(IOC_IN, b'i', 50, IFREQ_LEN);
/// Sets the MTU.
pub const SIOCSIFMTU: u32 = ioc(IOC_IN, b'i', 52, IFREQ_LEN);
/// Appends the driver's status text to a `struct ifstat` (name, `IFSTATMAX` + 1 bytes of text).
pub const SIOCGIFSTATUS: u32 = ioc(IOC_INOUT, b'i', 61, IFNAMSIZ + IFSTATMAX + 1);
/// Removes an IPv6 address (`struct in6_ifreq`). The driver issues it on an in-kernel socket.
pub const SIOCDIFADDR_IN6: u32 = ioc(IOC_IN, b'i', 25, IN6_IFREQ_LEN);

/// Sets the link-layer address (`struct ifreq`, `ifr_addr`).
pub const SIOCSIFLLADDR: u32 = ioc(IOC_IN, b'i', 60, IFREQ_LEN);
/// Reads the device MTU limits (`struct ifreq`, `ifr_devmtu`).
pub const SIOCGIFDEVMTU: u32 = ioc(IOC_INOUT, b'i', 68, IFREQ_LEN);
/// Sets the "alternate" (VLAN parent) MTU (`struct ifreq`, `ifr_mtu`).
pub const SIOCSIFALTMTU: u32 = ioc(IOC_IN, b'i', 69, IFREQ_LEN);
/// `struct ifmediareq` with a 32-bit user list pointer: 40 bytes.
pub const IFMEDIAREQ32_LEN: usize = 40;
/// `struct ifmediareq64` (`pack(4)`): 44 bytes.
pub const IFMEDIAREQ64_LEN: usize = 44;
/// Reads the media state, 32-bit caller.
pub const SIOCGIFMEDIA32: u32 = ioc(IOC_INOUT, b'i', 56, IFMEDIAREQ32_LEN);
/// Reads the media state, 64-bit caller.
pub const SIOCGIFMEDIA64: u32 = ioc(IOC_INOUT, b'i', 56, IFMEDIAREQ64_LEN);
/// Reads an interface address (`struct ifreq`); a tap device answers it with its MAC
/// register (docs/tap-contract.md TI-1).
pub const SIOCGIFADDR: u32 = ioc(IOC_INOUT, b'i', 33, IFREQ_LEN);

static_assertions::const_assert_eq!(SIOCSIFADDR, 0x8020_690c);
static_assertions::const_assert_eq!(SIOCSIFLLADDR, 0x8020_693c);
static_assertions::const_assert_eq!(SIOCGIFDEVMTU, 0xc020_6944);
static_assertions::const_assert_eq!(SIOCSIFALTMTU, 0x8020_6945);
static_assertions::const_assert_eq!(SIOCGIFMEDIA32, 0xc028_6938);
static_assertions::const_assert_eq!(SIOCGIFMEDIA64, 0xc02c_6938);
static_assertions::const_assert_eq!(SIOCGIFADDR, 0xc020_6921);
static_assertions::const_assert_eq!(SIOCAIFADDR, 0x8040_691a);
static_assertions::const_assert_eq!(SIOCSIFDSTADDR, 0x8020_690e);
static_assertions::const_assert_eq!(SIOCDIFADDR, 0x8020_6919);
static_assertions::const_assert_eq!(SIOCSIFFLAGS, 0x8020_6910);
static_assertions::const_assert_eq!(SIOCSIFMTU, 0x8020_6934);
static_assertions::const_assert_eq!(SIOCADDMULTI, 0x8020_6931);
static_assertions::const_assert_eq!(SIOCDELMULTI, 0x8020_6932);
static_assertions::const_assert_eq!(SIOCGIFSTATUS, 0xc331_693d);
static_assertions::const_assert_eq!(SIOCDIFADDR_IN6, 0x8120_6919);
static_assertions::const_assert_eq!(IFNAMSIZ, super::sys::IFNAMSIZ as usize);
