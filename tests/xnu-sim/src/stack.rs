//! The fake IP stack's output side and the generic interface-ioctl layer (what `ifconfig`
//! reaches), calling the driver's callbacks in DLIL's order (xnu bsd/net/dlil.c).

use crate::abi::*;
use crate::errno::{check, Errno};
use crate::net::dlil::{self, call_ioctl};
use crate::net::dlil_output;
use crate::net::kpi_interface::with_if;
use crate::net::kpi_protocol;
use std::ffi::c_void;

/// Interface ioctl numbers the generic layer issues.
pub mod cmd {
    /// First address of a family.
    pub const SIOCSIFADDR: u32 = 0x8020_690c;
    /// Further addresses.
    pub const SIOCAIFADDR: u32 = 0x8040_691a;
    /// Point-to-point destination.
    pub const SIOCSIFDSTADDR: u32 = 0x8020_690e;
    /// Address removal.
    pub const SIOCDIFADDR: u32 = 0x8020_6919;
    /// Flags.
    pub const SIOCSIFFLAGS: u32 = 0x8020_6910;
    /// MTU.
    pub const SIOCSIFMTU: u32 = 0x8020_6934;
    /// Multicast join.
    pub const SIOCADDMULTI: u32 = 0x8020_6931;
    /// Multicast leave.
    pub const SIOCDELMULTI: u32 = 0x8020_6932;
    /// Driver status text.
    pub const SIOCGIFSTATUS: u32 = 0xc331_693d;
}

/// The interface `name` while attached (or detaching), with an I/O reference held until the
/// returned guard drops: its detach does not complete while a stack call is inside the driver
/// (XNU dlil.c `ifnet_datamov_begin`/`ifnet_decr_iorefcnt`).
fn attached(name: &str) -> Result<dlil::IoRef, Errno> {
    dlil::io_ref(name)
}

/// The stack sends `payload` through interface `name` toward `dest` (a sockaddr, `sa_len`
/// first): protocol pre-output, then the framer, then the driver's output (bsd/net/dlil.c
/// `dlil_output`, non-raw; the driver taps BPF itself). `ENXIO` when `family` is not attached
/// to the interface (`find_attached_proto` found nothing).
pub fn output(name: &str, family: u32, dest: &[u8], payload: &[u8]) -> Result<(), Errno> {
    let io = attached(name)?;
    dlil_output::output(io.ifp(), family, dest, payload)
}

fn ifreq(name: &str, value: i32) -> [u8; 32] {
    let mut req = [0u8; 32];
    req[..name.len().min(15)].copy_from_slice(&name.as_bytes()[..name.len().min(15)]);
    req[16..20].copy_from_slice(&value.to_ne_bytes());
    req
}

/// `ifconfig NAME up/down/...`: the generic layer applies the flags first, then tells the
/// driver (`SIOCSIFFLAGS`).
pub fn set_flags(name: &str, set: u16, clear: u16) -> Result<(), Errno> {
    let io = attached(name)?;
    let ifp = io.ifp();
    let flags = with_if(ifp, |i| {
        i.flags = (i.flags | set) & !clear;
        i.flags
    });
    let mut req = ifreq(name, i32::from(flags));
    check(call_ioctl(ifp, cmd::SIOCSIFFLAGS, req.as_mut_ptr().cast()))
}

/// `ifconfig NAME mtu M`: passed to the driver, which sets it (or refuses).
pub fn set_mtu(name: &str, mtu: i32) -> Result<(), Errno> {
    let io = attached(name)?;
    let ifp = io.ifp();
    let mut req = ifreq(name, mtu);
    check(call_ioctl(ifp, cmd::SIOCSIFMTU, req.as_mut_ptr().cast()))
}

/// `ifconfig NAME inet/inet6 ADDR`. First the protocol is plumbed onto the interface
/// (`proto_plumb`, through the plumber registered for the interface's family):
/// - IPv6 (bsd/netinet6/in6.c `in6ctl_aifaddr` → in6_ifattach.c `in6_domifattach`): any error
///   but `EEXIST` fails the add; the per-interface IPv6 set-up (`in6_ifattach_prelim`) runs
///   only when the plumber returned 0;
/// - IPv4 (bsd/netinet/in.c `in_domifattach`): an error is logged and the add goes on.
///
/// Then the generic layer records the address and sends `SIOCSIFADDR` (first address of the
/// family) or `SIOCAIFADDR` through `ifnet_ioctl` (bsd/net/dlil.c): the attached protocol's
/// ioctl first (Ethernet's marks the interface up when it is not running and, for IPv4,
/// announces the address with a gratuitous ARP), then the driver's. The argument is an opaque
/// `struct ifaddr *`; the simulator's starts with the address's sockaddr, which only the
/// stack's own protocol modules read. `EOPNOTSUPP` counts as success.
pub fn add_address(name: &str, family: u32, addr: &[u8]) -> Result<(), Errno> {
    let io = attached(name)?;
    let ifp = io.ifp();
    let plumbed = kpi_protocol::proto_plumb(family, ifp);
    if family == AF_INET6 {
        match plumbed {
            Ok(()) => with_if(ifp, |i| i.inet6_setups += 1),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    } else if let Err(e) = plumbed.or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) }) {
        crate::log::kernel_log(&format!(
            "{name}: in_domifattach: proto_plumb failed: errno {}",
            e.0
        ));
    }
    let first = with_if(ifp, |i| {
        let first = !i.addresses.iter().any(|(f, _)| *f == family);
        i.addresses.push((family, addr.to_vec()));
        first
    });
    let command = if first {
        cmd::SIOCSIFADDR
    } else {
        cmd::SIOCAIFADDR
    };
    let mut opaque_ifaddr = [0u8; 64];
    let sockaddr = crate::net::ifaddr::sockaddr_of(family, addr);
    opaque_ifaddr[..sockaddr.len()].copy_from_slice(&sockaddr);
    match dlil::ifnet_ioctl(ifp, family, command, opaque_ifaddr.as_mut_ptr().cast()) {
        0 => Ok(()),
        rc if rc == Errno::EOPNOTSUPP.0 => Ok(()),
        rc => Err(Errno(rc)),
    }
}

/// `ifconfig NAME ADDR -alias` / `delete`: fails with `EADDRNOTAVAIL` (49) if absent.
pub fn delete_address(name: &str, family: u32, addr: &[u8]) -> Result<(), Errno> {
    let io = attached(name)?;
    let ifp = io.ifp();
    let found = with_if(ifp, |i| {
        let before = i.addresses.len();
        i.addresses.retain(|(f, a)| !(*f == family && a == addr));
        before != i.addresses.len()
    });
    if !found {
        return Err(Errno(49));
    }
    let mut opaque_ifaddr = [0u8; 64];
    match call_ioctl(ifp, cmd::SIOCDIFADDR, opaque_ifaddr.as_mut_ptr().cast()) {
        0 => Ok(()),
        rc if rc == Errno::EOPNOTSUPP.0 => Ok(()),
        rc => Err(Errno(rc)),
    }
}

/// `ifconfig NAME destroy` (`SIOCIFDESTROY`): only cloned interfaces can be destroyed, and
/// tun on macOS has no interface cloner, so `if_clone_lookup` fails → `EINVAL` and the
/// interface persists (contract C2 step 7). The driver is not called.
pub fn destroy(name: &str) -> Result<(), Errno> {
    attached(name)?;
    Err(Errno::EINVAL)
}

/// Any interface ioctl, passed to the driver as is (the test builds the argument).
pub fn ioctl(name: &str, command: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let io = attached(name)?;
    let ifp = io.ifp();
    let data: *mut c_void = if arg.is_empty() {
        std::ptr::null_mut()
    } else {
        arg.as_mut_ptr().cast()
    };
    check(call_ioctl(ifp, command, data))
}

/// `SIOCPROTODETACH` / `SIOCPROTODETACH_IN6` on `name` (bsd/netinet/in.c, in6.c): the stack
/// unplumbs the protocol (`proto_unplumb`), which calls the plumber's detach function.
pub fn protocol_detach(name: &str, family: u32) -> Result<(), Errno> {
    let io = attached(name)?;
    kpi_protocol::proto_unplumb(family, io.ifp());
    Ok(())
}

/// A raw output (bsd/net/dlil.c `dlil_output` with `DLIL_OUTPUT_FLAGS_RAW`), as a BPF write
/// with a complete header makes (bsd/net/bpf.c `bpfwrite`, `BIOCSHDRCMPLT`): no pre-output and
/// no framer; `frame` reaches the driver's output as it is.
pub fn output_raw(name: &str, frame: &[u8]) -> Result<(), Errno> {
    let io = attached(name)?;
    dlil_output::output_raw(io.ifp(), frame)
}

/// A BPF write without a complete header on a `DLT_NULL` interface (bsd/net/bpf.c `bpfwrite`,
/// `bpf_movein`: destination family `AF_UNSPEC`, no link header taken off), sent as
/// `dlil_output(ifp, PF_INET, m, NULL, dst, 0)`: PF_INET's pre-output (`ENXIO` if IPv4 is not
/// attached), then the framer with an `AF_UNSPEC` destination, then the driver's output.
pub fn bpf_write(name: &str, data: &[u8]) -> Result<(), Errno> {
    let mut dest = [0u8; 16];
    dest[0] = 16; // sa_len; sa_family stays AF_UNSPEC (0)
    output(name, AF_INET, &dest, data)
}
