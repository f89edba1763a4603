//! In-kernel sockets (xnu bsd/sys/kpi_socket.h: `sock_socket`, `sock_ioctl`, `sock_close`),
//! only as far as the driver uses them: removing an address from an interface with
//! `SIOCDIFADDR` on an `AF_INET` socket or `SIOCDIFADDR_IN6` on an `AF_INET6` socket, against
//! the fake stack's address list (which then tells the driver, as `ifconfig -alias` does).
//! Anything else answers `EOPNOTSUPP`. Sockets never closed are reported as leaks.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use std::collections::HashMap;
use std::ffi::{c_int, c_ulong, c_void};
use std::sync::Mutex;

/// `SIOCDIFADDR`: `_IOW('i', 25, struct ifreq)`.
pub const SIOCDIFADDR: u32 = 0x8020_6919;
/// `SIOCDIFADDR_IN6`: `_IOW('i', 25, struct in6_ifreq)`, 288 bytes on Darwin.
pub const SIOCDIFADDR_IN6: u32 = 0x8120_6919;

#[derive(Default)]
struct Sockets {
    /// Live sockets: handle → domain.
    live: HashMap<usize, u32>,
    next: usize,
    /// Addresses removed through sockets: (interface, family, address).
    removed: Vec<(String, u32, Vec<u8>)>,
}

static SOCKETS: Mutex<Option<Sockets>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Sockets) -> R) -> R {
    f(SOCKETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| Sockets {
            next: 0x5000_0000,
            ..Sockets::default()
        }))
}

/// Sockets not yet closed (leak accounting).
pub(crate) fn live_sockets() -> usize {
    with(|s| s.live.len())
}

/// Addresses removed through in-kernel sockets so far: (interface, family, address).
pub fn removed_addresses() -> Vec<(String, u32, Vec<u8>)> {
    with(|s| s.removed.clone())
}

/// The interface name at the start of an `ifreq`/`in6_ifreq` (NUL-terminated, 16 bytes).
fn ifr_name(req: &[u8]) -> String {
    let end = req[..16].iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&req[..end]).into_owned()
}

/// `sock_socket` (bsd/kern/kpi_socket.c): a handle for a new `AF_INET` or `AF_INET6` socket;
/// `EINVAL` for a NULL out-pointer, `EAFNOSUPPORT` for other domains, `ENOBUFS` when injected.
#[no_mangle]
unsafe extern "C" fn sock_socket(
    domain: c_int,
    _type: c_int,
    _protocol: c_int,
    _callback: *const c_void,
    _cookie: *mut c_void,
    out: *mut *mut c_void,
) -> errno_t {
    if out.is_null() {
        return Errno::EINVAL.0;
    }
    let domain = domain as u32;
    if domain != AF_INET && domain != AF_INET6 {
        return Errno::EAFNOSUPPORT.0;
    }
    if config::should_fail(Fault::SockSocket) {
        return Errno::ENOBUFS.0;
    }
    let h = with(|s| {
        s.next += 64;
        s.live.insert(s.next, domain);
        s.next
    });
    // SAFETY: checked non-NULL above; the KPI contract: `out` is writable.
    unsafe { *out = h as *mut c_void };
    0
}

/// `sock_ioctl` (bsd/kern/kpi_socket.c → `soioctl`): only `SIOCDIFADDR` (`AF_INET`) and
/// `SIOCDIFADDR_IN6` (`AF_INET6`), which remove the address from the fake stack; anything else is
/// `EOPNOTSUPP`. Stricter than XNU: a handle that is not a live socket panics.
#[no_mangle]
unsafe extern "C" fn sock_ioctl(so: *mut c_void, request: c_ulong, argp: *mut c_void) -> errno_t {
    let domain = with(|s| s.live.get(&(so as usize)).copied())
        .unwrap_or_else(|| panic!("sock_ioctl {so:p}: not a live socket"));
    let request = request as u32;
    let (family, len, addr_at, addr_len) = match (domain, request) {
        (AF_INET, SIOCDIFADDR) => (AF_INET, 32, 16 + 4, 4),
        (AF_INET6, SIOCDIFADDR_IN6) => (AF_INET6, 288, 16 + 8, 16),
        _ => return Errno::EOPNOTSUPP.0,
    };
    if argp.is_null() {
        return Errno::EFAULT.0;
    }
    // SAFETY: checked non-NULL above; the KPI contract: `argp` points to the request's whole
    // `ifreq` (32 bytes) or `in6_ifreq` (288 bytes), as `len` is for this command.
    let req = unsafe { std::slice::from_raw_parts(argp.cast::<u8>(), len) };
    if u32::from(req[17]) != family {
        return Errno::EINVAL.0;
    }
    let name = ifr_name(req);
    let addr = req[addr_at..addr_at + addr_len].to_vec();
    if crate::net::kpi_interface::by_name(&name).is_none() {
        return Errno::ENXIO.0;
    }
    match crate::stack::delete_address(&name, family, &addr) {
        Ok(()) => {
            with(|s| s.removed.push((name, family, addr)));
            0
        }
        // EADDRNOTAVAIL (49) when the interface has no such address.
        Err(e) => e.0,
    }
}

/// `sock_close` (bsd/kern/kpi_socket.c): closes the socket. Stricter than XNU: closing a socket
/// twice or an unknown handle panics.
#[no_mangle]
extern "C" fn sock_close(so: *mut c_void) {
    with(|s| {
        s.live
            .remove(&(so as usize))
            .unwrap_or_else(|| panic!("sock_close {so:p}: not a live socket (closed twice?)"));
    });
}
