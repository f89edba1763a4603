//! In-kernel sockets (xnu bsd/kern/kpi_socket.c `sock_socket`, `sock_ioctl` → `soioctl`,
//! `sock_close`; bsd/netinet/in.c and bsd/netinet6/in6.c for `SIOCDIFADDR`): an address
//! removed through an `AF_INET` or `AF_INET6` socket leaves the interface and the driver sees
//! `SIOCDIFADDR`; errors for a family mismatch, an unknown interface and an absent address.

mod common;
mod ifdrv;

use std::ffi::{c_int, c_ulong, c_void};
use xnu_sim::abi::*;
use xnu_sim::netinspect::interface;
use xnu_sim::socket::{removed_addresses, SIOCDIFADDR, SIOCDIFADDR_IN6};
use xnu_sim::stack::{self, cmd};
use xnu_sim::{leaks, Errno};

extern "C" {
    fn sock_socket(
        domain: c_int,
        kind: c_int,
        protocol: c_int,
        callback: *const c_void,
        cookie: *mut c_void,
        out: *mut *mut c_void,
    ) -> errno_t;
    fn sock_ioctl(so: *mut c_void, request: c_ulong, argp: *mut c_void) -> errno_t;
    fn sock_close(so: *mut c_void);
}

const SOCK_DGRAM: c_int = 2;
const AF_UNIX: c_int = 1;
const EADDRNOTAVAIL: i32 = 49;

const V4: [u8; 4] = [10, 9, 8, 7];
const V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];

fn socket(domain: u32) -> Result<*mut c_void, Errno> {
    let mut so: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid out-pointer; no upcall.
    let rc = unsafe {
        sock_socket(
            domain as c_int,
            SOCK_DGRAM,
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
            &mut so,
        )
    };
    if rc == 0 {
        assert!(!so.is_null());
        Ok(so)
    } else {
        Err(Errno(rc))
    }
}

/// `struct ifreq` (32 bytes) naming `ifname`, with a `sockaddr_in` of `family` for `addr`.
fn ifreq(ifname: &str, family: u32, addr: [u8; 4]) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[..ifname.len()].copy_from_slice(ifname.as_bytes());
    r[16] = 16;
    r[17] = family as u8;
    r[20..24].copy_from_slice(&addr);
    r
}

/// `struct in6_ifreq` (288 bytes on Darwin) naming `ifname`, with a `sockaddr_in6` for `addr`.
fn in6_ifreq(ifname: &str, addr: [u8; 16]) -> [u8; 288] {
    let mut r = [0u8; 288];
    r[..ifname.len()].copy_from_slice(ifname.as_bytes());
    r[16] = 28;
    r[17] = AF_INET6 as u8;
    r[24..40].copy_from_slice(&addr);
    r
}

fn ioctl(so: *mut c_void, request: u32, req: &mut [u8]) -> i32 {
    // SAFETY: a live socket; `req` is as long as the command's structure.
    unsafe { sock_ioctl(so, c_ulong::from(request), req.as_mut_ptr().cast()) }
}

fn addresses(name: &str) -> Vec<(u32, Vec<u8>)> {
    interface(name).unwrap().addresses
}

#[test]
fn siocdifaddr_through_an_in_kernel_socket_removes_the_address() {
    common::boot();
    ifdrv::attach("socktest", 0);
    let name = "socktest0";
    stack::add_address(name, AF_INET, &V4).unwrap();
    ifdrv::plumb_inet6();
    stack::add_address(name, AF_INET6, &V6).unwrap();
    assert_eq!(addresses(name).len(), 2);

    assert_eq!(socket(AF_UNIX as u32), Err(Errno::EAFNOSUPPORT));
    // SAFETY: a NULL out-pointer is refused before it is used.
    let rc = unsafe {
        sock_socket(
            AF_INET as c_int,
            SOCK_DGRAM,
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, Errno::EINVAL.0);

    let s4 = socket(AF_INET).unwrap();
    let s6 = socket(AF_INET6).unwrap();
    assert_eq!(leaks().sockets, 2);

    // Errors first: nothing is removed.
    let mut wrong_family = ifreq(name, AF_INET6, V4);
    assert_eq!(ioctl(s4, SIOCDIFADDR, &mut wrong_family), Errno::EINVAL.0);
    let mut no_such_if = ifreq("nosuch9", AF_INET, V4);
    assert_eq!(ioctl(s4, SIOCDIFADDR, &mut no_such_if), Errno::ENXIO.0);
    let mut absent = ifreq(name, AF_INET, [10, 9, 8, 6]);
    assert_eq!(ioctl(s4, SIOCDIFADDR, &mut absent), EADDRNOTAVAIL);
    assert_eq!(addresses(name).len(), 2);
    assert!(removed_addresses().is_empty());

    // IPv4 through the AF_INET socket: the address goes, the driver sees SIOCDIFADDR.
    let before = ifdrv::ioctls().len();
    let mut req = ifreq(name, AF_INET, V4);
    assert_eq!(ioctl(s4, SIOCDIFADDR, &mut req), 0);
    assert_eq!(addresses(name), vec![(AF_INET6, V6.to_vec())]);
    assert_eq!(ifdrv::ioctls()[before..], [cmd::SIOCDIFADDR]);
    assert_eq!(
        ioctl(s4, SIOCDIFADDR, &mut req),
        EADDRNOTAVAIL,
        "already removed"
    );

    // IPv6 through the AF_INET6 socket.
    let mut req6 = in6_ifreq(name, V6);
    assert_eq!(ioctl(s6, SIOCDIFADDR_IN6, &mut req6), 0);
    assert!(addresses(name).is_empty());
    assert_eq!(
        removed_addresses(),
        vec![
            (name.to_string(), AF_INET, V4.to_vec()),
            (name.to_string(), AF_INET6, V6.to_vec()),
        ]
    );

    // SAFETY: each socket closed once.
    unsafe {
        sock_close(s4);
        sock_close(s6);
    }
    assert_eq!(leaks().sockets, 0, "closed sockets are no longer counted");
}
