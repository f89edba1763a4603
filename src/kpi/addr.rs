//! Interface addresses (xnu bsd/net/kpi_interface.h: `ifnet_get_address_list`,
//! `ifaddr_address`) and their removal through in-kernel sockets (xnu bsd/sys/kpi_socket.h),
//! the way `ifconfig tunN ADDR -alias` removes one (contract section 10 step 4, ST-3).

use super::errno::{check, Errno};
use super::ifnet::{Ifnet, AF_INET, AF_INET6};
use super::ioccom::{self, IFNAMSIZ, IFREQ_LEN, IN6_IFREQ_LEN};
use super::sys;
use core::ffi::c_void;
use core::ptr::NonNull;

/// The largest sockaddr the driver keeps: a `sockaddr_in6` (bsd/netinet6/in6.h).
pub const SOCKADDR_MAX_LEN: usize = 28;
/// `sizeof(struct sockaddr_in)`.
const SOCKADDR_IN_LEN: u8 = 16;
/// `sizeof(struct sockaddr_storage)`: room for any address `ifaddr_address` returns.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// Offset of the address in `struct ifreq` and `struct in6_ifreq`: right after the name.
const IFREQ_ADDR: usize = IFNAMSIZ;

static_assertions::const_assert_eq!(IFREQ_LEN, ioccom::arg_len(ioccom::SIOCDIFADDR));
static_assertions::const_assert_eq!(IN6_IFREQ_LEN, ioccom::arg_len(ioccom::SIOCDIFADDR_IN6));

/// A socket address (`sa_len`, `sa_family`, then the address) of at most `SOCKADDR_MAX_LEN`
/// bytes, copied out of the kernel: an interface address, or where the stack sent a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr {
    bytes: [u8; SOCKADDR_MAX_LEN],
    len: u8,
}

impl SockAddr {
    /// Keeps at most `SOCKADDR_MAX_LEN` bytes of `sockaddr`, whose `sa_len` is not trusted:
    /// the length kept is the length given.
    pub fn new(sockaddr: &[u8]) -> SockAddr {
        let len = sockaddr.len().min(SOCKADDR_MAX_LEN);
        let mut bytes = [0; SOCKADDR_MAX_LEN];
        bytes[..len].copy_from_slice(&sockaddr[..len]);
        SockAddr {
            bytes,
            len: len as u8,
        }
    }

    /// The unspecified address of `family`: a `sockaddr_in6` of zeros for `AF_INET6`, else a
    /// `sockaddr_in` of zeros.
    pub fn unspecified(family: u32) -> SockAddr {
        let len = if family == AF_INET6 {
            SOCKADDR_MAX_LEN as u8
        } else {
            SOCKADDR_IN_LEN
        };
        let mut bytes = [0; SOCKADDR_MAX_LEN];
        bytes[0] = len;
        bytes[1] = family as u8;
        SockAddr { bytes, len }
    }

    /// The address family (`sa_family`); 0 (`AF_UNSPEC`) for a sockaddr too short to have one.
    pub fn family(&self) -> u32 {
        if self.len >= 2 {
            u32::from(self.bytes[1])
        } else {
            0
        }
    }

    /// The sockaddr bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
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
            let len = usize::from(storage[0]).clamp(2, SOCKADDR_MAX_LEN);
            f(SockAddr::new(&storage[..len]));
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
            (ioccom::SIOCDIFADDR_IN6, IN6_IFREQ_LEN)
        } else {
            (ioccom::SIOCDIFADDR, IFREQ_LEN)
        };
        req[..IFNAMSIZ].copy_from_slice(name);
        let sa = addr.as_bytes();
        let room = (len - IFREQ_ADDR).min(sa.len());
        req[IFREQ_ADDR..IFREQ_ADDR + room].copy_from_slice(&sa[..room]);
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

#[cfg(test)]
mod tests {
    use super::{SockAddr, AF_INET, AF_INET6};

    #[test]
    fn a_sockaddr_keeps_at_most_a_sockaddr_in6() {
        let long = [7u8; 40];
        assert_eq!(SockAddr::new(&long).as_bytes().len(), 28);
        assert_eq!(SockAddr::new(&[16, 2, 0, 0]).as_bytes(), &[16, 2, 0, 0]);
        assert_eq!(SockAddr::new(&[1]).family(), 0);
    }

    #[test]
    fn unspecified_addresses_have_their_family_and_length() {
        assert_eq!(
            SockAddr::unspecified(AF_INET).as_bytes(),
            &[16, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let v6 = SockAddr::unspecified(AF_INET6);
        assert_eq!((v6.as_bytes().len(), v6.family()), (28, AF_INET6));
    }
}
