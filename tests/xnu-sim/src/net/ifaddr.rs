//! Interface address lists (xnu bsd/net/kpi_interface.h: `ifnet_get_address_list`,
//! `ifnet_free_address_list`, `ifaddr_address`): a snapshot of the fake stack's addresses of
//! one interface, the link-level (`AF_LINK`) address first as on XNU. Every entry stays
//! referenced until the list is freed; a list never freed is a leak, and an entry used after
//! its list was freed panics.

use crate::abi::*;
use crate::errno::Errno;
use crate::net::kpi_interface::with_if;
use std::ffi::c_void;
use std::sync::Mutex;

/// `EMSGSIZE` (xnu bsd/sys/errno.h, 40): the caller's buffer is shorter than the address.
const EMSGSIZE: Errno = Errno(40);

/// One referenced address: the sockaddr bytes `ifaddr_address` copies out. Its handle is its
/// address in the list's heap buffer, which never moves while the list lives.
struct Entry {
    sockaddr: Vec<u8>,
}

/// A list handed out: the NULL-terminated array the caller sees, and its entries.
struct List {
    array: Box<[usize]>,
    entries: Vec<Entry>,
}

static LISTS: Mutex<Vec<List>> = Mutex::new(Vec::new());

fn lists<R>(f: impl FnOnce(&mut Vec<List>) -> R) -> R {
    f(&mut LISTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The sockaddr of an address of `family` (`sockaddr_in`, `sockaddr_in6` or `sockaddr_dl`).
pub(crate) fn sockaddr_of(family: u32, addr: &[u8]) -> Vec<u8> {
    match family {
        AF_INET => {
            let mut sa = vec![0u8; 16];
            sa[0] = 16;
            sa[1] = AF_INET as u8;
            sa[4..4 + addr.len().min(4)].copy_from_slice(&addr[..addr.len().min(4)]);
            sa
        }
        AF_INET6 => {
            let mut sa = vec![0u8; 28];
            sa[0] = 28;
            sa[1] = AF_INET6 as u8;
            sa[8..8 + addr.len().min(16)].copy_from_slice(&addr[..addr.len().min(16)]);
            sa
        }
        _ => {
            // sockaddr_dl: len, family, index(2), type, nlen, alen, slen, data[12]
            let mut sa = vec![0u8; 20];
            sa[0] = 20;
            sa[1] = AF_LINK as u8;
            sa[4] = IFT_OTHER as u8;
            let n = addr.len().min(12);
            sa[5] = n as u8;
            sa[8..8 + n].copy_from_slice(&addr[..n]);
            sa
        }
    }
}

/// The interface's `AF_LINK` address (bsd/net/dlil.c `dlil_alloc_lladdr`): a `sockaddr_dl`
/// with its index and type, the name, then the link address (`LLADDR`).
fn link_sockaddr(name: &[u8], if_type: u32, index: u32, lladdr: &[u8]) -> Vec<u8> {
    let data = (name.len() + lladdr.len()).max(12);
    let mut sa = vec![0u8; 8 + data];
    sa[0] = sa.len() as u8;
    sa[1] = AF_LINK as u8;
    sa[2..4].copy_from_slice(&(index as u16).to_ne_bytes());
    sa[4] = if_type as u8;
    sa[5] = name.len() as u8;
    sa[6] = lladdr.len() as u8;
    sa[8..8 + name.len()].copy_from_slice(name);
    sa[8 + name.len()..8 + name.len() + lladdr.len()].copy_from_slice(lladdr);
    sa
}

/// Lists not yet freed (leak accounting).
pub(crate) fn live_address_lists() -> usize {
    lists(|l| l.len())
}

/// `ifnet_get_address_list` (bsd/net/kpi_interface.c): a NULL-terminated array of the interface's
/// addresses, the link-level (`AF_LINK`) one first, each entry referenced until the list is freed.
/// `EINVAL` for a NULL interface or out-pointer (XNU lists every interface for NULL).
#[no_mangle]
unsafe extern "C" fn ifnet_get_address_list(ifp: ifnet_t, out: *mut *mut *mut c_void) -> errno_t {
    if ifp.is_null() || out.is_null() {
        return Errno::EINVAL.0;
    }
    let (name, addresses, if_type, index, lladdr) = with_if(ifp, |i| {
        (
            i.name.clone(),
            i.addresses.clone(),
            i.if_type,
            i.index,
            i.link.addr.clone(),
        )
    });
    let mut entries: Vec<Entry> = vec![Entry {
        sockaddr: link_sockaddr(name.as_bytes(), if_type, index, &lladdr),
    }];
    entries.extend(addresses.iter().map(|(family, addr)| Entry {
        sockaddr: sockaddr_of(*family, addr),
    }));
    let mut array: Vec<usize> = entries.iter().map(|e| e as *const Entry as usize).collect();
    array.push(0);
    let array = array.into_boxed_slice();
    // SAFETY: checked non-NULL above; the KPI contract: `out` is writable.
    unsafe { *out = array.as_ptr() as *mut *mut c_void };
    lists(|l| l.push(List { array, entries }));
    0
}

/// `ifnet_free_address_list` (bsd/net/kpi_interface.c): drops the entries and frees the array;
/// NULL is accepted. Stricter than XNU: a pointer that is not a live list panics.
#[no_mangle]
extern "C" fn ifnet_free_address_list(list: *mut *mut c_void) {
    if list.is_null() {
        return;
    }
    lists(|l| {
        let at = l
            .iter()
            .position(|x| std::ptr::eq(x.array.as_ptr().cast::<*mut c_void>(), list))
            .unwrap_or_else(|| panic!("ifnet_free_address_list {list:p}: not a live list"));
        l.remove(at);
    });
}

/// `ifaddr_address` (bsd/net/kpi_interface.c): copies the entry's sockaddr; `EINVAL` for NULL
/// arguments, `EMSGSIZE` (nothing copied) when the buffer is too short. Stricter than XNU: an entry
/// whose list was freed panics.
#[no_mangle]
unsafe extern "C" fn ifaddr_address(ifa: *mut c_void, out: *mut c_void, size: u32) -> errno_t {
    if ifa.is_null() || out.is_null() {
        return Errno::EINVAL.0;
    }
    let sockaddr = lists(|l| {
        l.iter()
            .flat_map(|x| x.entries.iter())
            .find(|e| std::ptr::eq(*e as *const Entry, ifa.cast::<Entry>()))
            .map(|e| e.sockaddr.clone())
    })
    .unwrap_or_else(|| panic!("ifaddr {ifa:p}: not in a live address list (used after free?)"));
    if sockaddr.len() > size as usize {
        return EMSGSIZE.0;
    }
    // SAFETY: `out` is non-NULL (checked above) and the KPI contract gives it `size` writable
    // bytes, at least `sockaddr.len()` (checked above); a simulator buffer cannot overlap it.
    unsafe { std::ptr::copy_nonoverlapping(sockaddr.as_ptr(), out.cast::<u8>(), sockaddr.len()) };
    0
}
