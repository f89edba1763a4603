//! Interface addresses (xnu bsd/net/kpi_interface.h: `ifnet_get_address_list`,
//! `ifaddr_address`) and their removal through in-kernel sockets (xnu bsd/sys/kpi_socket.h),
//! the way `ifconfig tunN ADDR -alias` removes one (contract section 10 step 4, ST-3).

use super::ifnet::{Ifnet, AF_INET, AF_INET6};
use super::sys;
use crate::errno::{check, Errno};
use crate::ioctl::{self, IFNAMSIZ};
use crate::limits::MAX_SOCKADDR_LEN;
use core::ffi::c_void;
use core::ptr::NonNull;

/// `sizeof(struct sockaddr_storage)`: room for any address `ifaddr_address` returns.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// `struct ifreq` (32 bytes): name, then a `sockaddr_in` at `IFREQ_ADDR`.
const IFREQ_LEN: usize = ioctl::arg_len(ioctl::SIOCDIFADDR);
/// `struct in6_ifreq` (288 bytes on Darwin): name, then a `sockaddr_in6` at `IFREQ_ADDR`.
const IN6_IFREQ_LEN: usize = ioctl::arg_len(ioctl::SIOCDIFADDR_IN6);
/// Offset of the address in both request structures.
const IFREQ_ADDR: core::ops::Range<usize> = IFNAMSIZ..IFNAMSIZ + MAX_SOCKADDR_LEN;

static_assertions::const_assert_eq!(IFREQ_LEN, ioctl::IFREQ_LEN);
static_assertions::const_assert_eq!(IFNAMSIZ, sys::IFNAMSIZ as usize);
static_assertions::const_assert_eq!(IN6_IFREQ_LEN, 288);

/// One address of an interface, as a sockaddr (`sa_len`, `sa_family`, …) of at most
/// `MAX_SOCKADDR_LEN` bytes (a `sockaddr_in6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr {
    bytes: [u8; MAX_SOCKADDR_LEN],
}

impl SockAddr {
    /// The address family (`sa_family`).
    pub fn family(&self) -> u32 {
        u32::from(self.bytes[1])
    }

    /// The sockaddr bytes (`sa_len` of them, at most `MAX_SOCKADDR_LEN`).
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.bytes[0]).min(MAX_SOCKADDR_LEN);
        &self.bytes[..len]
    }
}

/// A snapshot of an interface's addresses; every entry is referenced by the kernel until the
/// list is dropped (`ifnet_free_address_list`), so removing addresses while walking it is safe.
pub struct AddressList {
    list: NonNull<sys::ifaddr_t>,
}

impl AddressList {
    /// The addresses of `ifnet` now.
    pub fn of(ifnet: &Ifnet) -> Result<AddressList, Errno> {
        let mut list: *mut sys::ifaddr_t = core::ptr::null_mut();
        // SAFETY: live ifnet, valid out-pointer.
        check(unsafe { sys::ifnet_get_address_list(ifnet.raw(), &mut list) })?;
        NonNull::new(list)
            .map(|list| AddressList { list })
            .ok_or(Errno::ENOMEM)
    }

    /// Calls `f` on each IPv4 and IPv6 address, in list order; other families (the link
    /// address) are skipped.
    pub fn for_each_ip(&self, mut f: impl FnMut(SockAddr)) {
        let mut at = 0;
        loop {
            // SAFETY: the list is NULL-terminated and live until `self` drops; `at` never
            // passes the terminator.
            let ifa = unsafe { *self.list.as_ptr().add(at) };
            if ifa.is_null() {
                break;
            }
            at += 1;
            let mut storage = [0u8; SOCKADDR_STORAGE_LEN];
            // SAFETY: `ifa` is a referenced entry of the live list; `storage` is writable for
            // the size given.
            let rc = unsafe {
                sys::ifaddr_address(
                    ifa,
                    storage.as_mut_ptr().cast(),
                    SOCKADDR_STORAGE_LEN as u32,
                )
            };
            let family = u32::from(storage[1]);
            if rc != 0 || !(family == AF_INET || family == AF_INET6) {
                continue;
            }
            let mut bytes = [0u8; MAX_SOCKADDR_LEN];
            bytes.copy_from_slice(&storage[..MAX_SOCKADDR_LEN]);
            f(SockAddr { bytes });
        }
    }
}

impl Drop for AddressList {
    fn drop(&mut self) {
        // SAFETY: the list came from ifnet_get_address_list and is freed once.
        unsafe { sys::ifnet_free_address_list(self.list.as_ptr()) };
    }
}

/// An in-kernel datagram socket of one family, closed on drop.
pub struct KernelSocket {
    so: NonNull<sys::socket>,
    family: u32,
}

impl KernelSocket {
    /// `sock_socket(family, SOCK_DGRAM, 0)` with no upcall.
    pub fn new(family: u32) -> Result<KernelSocket, Errno> {
        let mut so: sys::socket_t = core::ptr::null_mut();
        // SAFETY: valid out-pointer; no upcall, so the cookie is never used.
        check(unsafe {
            sys::sock_socket(
                family as i32,
                sys::SOCK_DGRAM as i32,
                0,
                None,
                core::ptr::null_mut(),
                &mut so,
            )
        })?;
        NonNull::new(so)
            .map(|so| KernelSocket { so, family })
            .ok_or(Errno::ENOMEM)
    }

    /// Removes `addr` from interface `name` (`SIOCDIFADDR` or `SIOCDIFADDR_IN6`, by the
    /// socket's family). The stack then calls the interface's ioctl with `SIOCDIFADDR`: the
    /// caller must not hold a lock that path takes.
    pub fn remove_address(&self, name: &[u8; IFNAMSIZ], addr: &SockAddr) -> Result<(), Errno> {
        let mut req = [0u8; IN6_IFREQ_LEN];
        let (cmd, len) = if self.family == AF_INET6 {
            (ioctl::SIOCDIFADDR_IN6, IN6_IFREQ_LEN)
        } else {
            (ioctl::SIOCDIFADDR, IFREQ_LEN)
        };
        req[..IFNAMSIZ].copy_from_slice(name);
        let sa = addr.as_bytes();
        let room = (len - IFREQ_ADDR.start).min(sa.len());
        req[IFREQ_ADDR.start..IFREQ_ADDR.start + room].copy_from_slice(&sa[..room]);
        // SAFETY: live socket; `req` is at least the size the command encodes and is only
        // used during the call.
        check(unsafe {
            sys::sock_ioctl(
                self.so.as_ptr(),
                cmd as core::ffi::c_ulong,
                req.as_mut_ptr().cast::<c_void>(),
            )
        })
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        // SAFETY: the socket came from sock_socket and is closed once.
        unsafe { sys::sock_close(self.so.as_ptr()) };
    }
}
