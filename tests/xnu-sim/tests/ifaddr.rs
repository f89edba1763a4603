//! Interface address lists (xnu bsd/net/kpi_interface.c `ifnet_get_address_list`,
//! `ifnet_free_address_list`, `ifaddr_address`): a NULL-terminated array whose first entry is
//! the link-level (`AF_LINK`) address, entries referenced until the list is freed, and a panic
//! (stricter than XNU) for an entry used after its list was freed.

mod common;
mod ifdrv;

use common::*;
use std::ffi::c_void;
use xnu_sim::abi::*;
use xnu_sim::{leaks, stack, Errno};

extern "C" {
    fn ifnet_get_address_list(ifp: ifnet_t, out: *mut *mut *mut c_void) -> errno_t;
    fn ifnet_free_address_list(list: *mut *mut c_void);
    fn ifaddr_address(ifa: *mut c_void, out: *mut c_void, size: u32) -> errno_t;
}

const EMSGSIZE: i32 = 40;
const V4: [u8; 4] = [192, 0, 2, 1];
const V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The entries of a NULL-terminated list.
fn entries(list: *mut *mut c_void) -> Vec<*mut c_void> {
    let mut out = Vec::new();
    // SAFETY: a live, NULL-terminated list.
    unsafe {
        let mut at = list;
        while !(*at).is_null() {
            out.push(*at);
            at = at.add(1);
        }
    }
    out
}

/// The sockaddr bytes `ifaddr_address` copies out (its first byte is the length).
fn sockaddr(ifa: *mut c_void) -> Vec<u8> {
    let mut buf = [0u8; 128];
    // SAFETY: a live entry; a 128-byte buffer.
    let rc = unsafe { ifaddr_address(ifa, buf.as_mut_ptr().cast(), 128) };
    assert_eq!(rc, 0);
    buf[..usize::from(buf[0])].to_vec()
}

fn list_of(ifp: ifnet_t) -> *mut *mut c_void {
    let mut list: *mut *mut c_void = std::ptr::null_mut();
    // SAFETY: a live ifnet; a valid out-pointer.
    assert_eq!(unsafe { ifnet_get_address_list(ifp, &mut list) }, 0);
    assert!(!list.is_null());
    list
}

#[test]
fn address_list_starts_with_the_link_address_and_must_be_freed() {
    boot();
    let ifp = ifdrv::attach("addrtest", 0);
    stack::add_address("addrtest0", AF_INET, &V4).unwrap();
    ifdrv::plumb_inet6();
    stack::add_address("addrtest0", AF_INET6, &V6).unwrap();

    let list = list_of(ifp);
    let e = entries(list);
    assert_eq!(e.len(), 3, "link address, then the two addresses");
    let link = sockaddr(e[0]);
    assert_eq!(
        u32::from(link[1]),
        AF_LINK,
        "the link-level address comes first"
    );
    let v4 = sockaddr(e[1]);
    assert_eq!((v4[0], u32::from(v4[1])), (16, AF_INET));
    assert_eq!(v4[4..8], V4, "sockaddr_in.sin_addr");
    let v6 = sockaddr(e[2]);
    assert_eq!((v6[0], u32::from(v6[1])), (28, AF_INET6));
    assert_eq!(v6[8..24], V6, "sockaddr_in6.sin6_addr");

    // Argument errors.
    let mut small = [0u8; 8];
    // SAFETY: live entries; the buffer is 8 bytes and the size says so; NULLs are refused.
    unsafe {
        assert_eq!(
            ifaddr_address(e[2], small.as_mut_ptr().cast(), 8),
            EMSGSIZE,
            "a sockaddr_in6 does not fit in 8 bytes"
        );
        assert_eq!(
            ifaddr_address(std::ptr::null_mut(), small.as_mut_ptr().cast(), 8),
            Errno::EINVAL.0
        );
        assert_eq!(
            ifaddr_address(e[1], std::ptr::null_mut(), 16),
            Errno::EINVAL.0
        );
        let mut out: *mut *mut c_void = std::ptr::null_mut();
        assert_eq!(
            ifnet_get_address_list(std::ptr::null_mut(), &mut out),
            Errno::EINVAL.0,
            "stricter than XNU, which lists every interface for NULL"
        );
    }

    // A list is a resource until freed; two lists are two resources.
    assert_eq!(leaks().address_lists, 1);
    let second = list_of(ifp);
    assert_eq!(leaks().address_lists, 2);
    // SAFETY: each list freed once; NULL is accepted.
    unsafe {
        ifnet_free_address_list(list);
        ifnet_free_address_list(second);
        ifnet_free_address_list(std::ptr::null_mut());
    }
    assert_eq!(leaks().address_lists, 0);
}

#[test]
fn an_entry_used_after_its_list_was_freed_panics() {
    const NAME: &str = "an_entry_used_after_its_list_was_freed_panics";
    if is_child(NAME) {
        boot();
        let ifp = ifdrv::attach("addrtest", 0);
        let list = list_of(ifp);
        let first = entries(list)[0];
        assert_eq!(u32::from(sockaddr(first)[1]), AF_LINK, "live: usable");
        // SAFETY: the list is freed, then its entry used: must panic.
        unsafe { ifnet_free_address_list(list) };
        sockaddr(first);
        child_survived();
    }
    expect_kernel_panic(NAME, "not in a live address list");
}
