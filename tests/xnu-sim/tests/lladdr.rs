//! The link layer (xnu bsd/net/dlil.c `ifnet_attach`; bsd/net/kpi_interface.c
//! `ifnet_set_lladdr_internal`, `ifnet_lladdr_copy_bytes_internal`, `ifnet_set_hdrlen`;
//! bsd/net/if.c `ifioctl_ifreq` `SIOCSIFLLADDR`/`SIOCGIFLLADDR`, `ifnet_set_promiscuous`): the
//! attach takes the link address from its `sockaddr_dl`; `ifnet_set_lladdr` checks the length
//! and the attachment and announces the IPv4 addresses again (a gratuitous ARP through the
//! driver's output) before it returns; the link-address ioctls; promiscuous mode is counted
//! and reaches the driver only while up, reverted when the driver fails it.

mod common;
mod ifdrv;

use common::*;
use ifdrv::ether::{self, ifnet_lladdr_copy_bytes, ifnet_set_lladdr, mac};
use std::ffi::c_void;
use xnu_sim::abi::*;
use xnu_sim::netinspect::{events, interface};
use xnu_sim::{link, proc, stack, Errno};

const NAME: &str = "lltest0";
const IP4: [u8; 4] = [10, 88, 0, 1];
const NEW: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x01];

fn tap() -> ifnet_t {
    boot();
    ether::attach("lltest", 0)
}

fn set_lladdr(ifp: ifnet_t, addr: *const u8, len: usize) -> errno_t {
    // SAFETY: a live ifnet; `addr` is NULL or has `len` readable bytes.
    unsafe { ifnet_set_lladdr(ifp, addr.cast::<c_void>(), len) }
}

#[test]
fn attach_takes_the_link_address_from_the_sockaddr_dl() {
    let _ifp = tap();
    let info = interface(NAME).unwrap();
    assert_eq!((info.addrlen, info.lladdr.clone()), (6, mac(0).to_vec()));
    assert_eq!((info.hdrlen, info.broadcast), (14, vec![0xff; 6]));
    assert_eq!(link::get_lladdr(NAME), Ok(mac(0).to_vec()), "SIOCGIFLLADDR");

    // A sockaddr_dl with name bytes: the address follows them (CONST_LLADDR).
    let other = ifdrv::allocate_with("llname", 0, std::ptr::null_mut(), |p| {
        p.family = IFNET_FAMILY_ETHERNET;
        p.type_ = IFT_ETHER;
    });
    let mut sdl = sockaddr_dl {
        sdl_len: 20,
        sdl_family: AF_LINK as u8,
        sdl_nlen: 4,
        sdl_alen: 6,
        ..Default::default()
    };
    for (k, b) in b"nameABCDEF".iter().enumerate() {
        sdl.sdl_data[k] = *b as std::ffi::c_char;
    }
    // SAFETY: an allocated ifnet and a valid sockaddr_dl.
    let rc = unsafe { ifdrv::ifnet_attach(other, (&sdl as *const sockaddr_dl).cast()) };
    assert_eq!(rc, 0);
    assert_eq!(interface("llname0").unwrap().lladdr, b"ABCDEF".to_vec());
}

#[test]
fn set_lladdr_checks_length_and_attachment() {
    boot();
    let allocated = ifdrv::allocate_with("llalloc", 0, std::ptr::null_mut(), |p| {
        p.family = IFNET_FAMILY_ETHERNET;
    });
    assert_eq!(
        set_lladdr(allocated, NEW.as_ptr(), 6),
        Errno::EINVAL.0,
        "if_addrlen is 0"
    );
    let ifp = ether::attach("lltest", 0);
    assert_eq!(set_lladdr(ifp, NEW.as_ptr(), 5), Errno::EINVAL.0);
    assert_eq!(set_lladdr(ifp, std::ptr::null(), 6), Errno::EINVAL.0);
    assert_eq!(set_lladdr(ifp, NEW.as_ptr(), 6), 0);
    assert_eq!(link::get_lladdr(NAME), Ok(NEW.to_vec()));
    assert_eq!(
        set_lladdr(ifp, std::ptr::null(), 0),
        0,
        "length 0 clears it"
    );
    assert_eq!(link::get_lladdr(NAME), Err(Errno::EADDRNOTAVAIL));
}

/// Stricter than XNU: before `ifnet_attach`, xnu-4570 reads out of bounds; the simulator panics.
#[test]
fn set_lladdr_before_attach_panics() {
    const TEST: &str = "set_lladdr_before_attach_panics";
    if is_child(TEST) {
        boot();
        let allocated = ifdrv::allocate_with("llalloc", 0, std::ptr::null_mut(), |p| {
            p.family = IFNET_FAMILY_ETHERNET;
        });
        set_lladdr(allocated, std::ptr::null(), 0);
        child_survived();
    }
    expect_kernel_panic(
        TEST,
        "not attached (xnu-4570 indexes ifnet_addrs out of bounds)",
    );
}

#[test]
fn set_lladdr_announces_ipv4_addresses_before_it_returns() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    let from = ifdrv::outputs().len();
    assert_eq!(set_lladdr(ifp, NEW.as_ptr(), 6), 0);
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&NEW);
    arp.extend_from_slice(&IP4);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&IP4);
    assert_eq!(
        ifdrv::outputs()[from..].to_vec(),
        vec![ether::frame([0xff; 6], NEW, 0x0806, &arp)],
        "the gratuitous ARP went through the driver's output during the call"
    );
    let ev = events(NAME).pop().unwrap();
    assert_eq!(
        (ev.vendor_code, ev.kev_class, ev.kev_subclass, ev.event_code),
        (1, 1, 2, KEV_DL_LINK_ADDRESS_CHANGED)
    );
    let mut data = IFNET_FAMILY_ETHERNET.to_ne_bytes().to_vec();
    data.extend_from_slice(&0u32.to_ne_bytes());
    data.extend_from_slice(b"lltest\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(
        ev.data, data,
        "struct net_event_data: family, unit, base name"
    );
}

/// The driver's lock, taken by its output.
static DRIVER_LOCK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe extern "C" fn locking_output(_ifp: ifnet_t, m: mbuf_t) -> errno_t {
    let lock = DRIVER_LOCK.load(std::sync::atomic::Ordering::SeqCst) as *mut c_void;
    // SAFETY: the test's live mutex; the packet is the driver's to free.
    unsafe {
        lck_mtx_lock(lock);
        lck_mtx_unlock(lock);
        mbuf_freem(m);
    }
    0
}

#[test]
fn a_driver_holding_its_lock_across_set_lladdr_panics() {
    const TEST: &str = "a_driver_holding_its_lock_across_set_lladdr_panics";
    if is_child(TEST) {
        boot();
        let ifp = ether::attach_with("lltest", 0, |p| p.output = Some(locking_output));
        let lock = new_mutex();
        DRIVER_LOCK.store(lock as usize, std::sync::atomic::Ordering::SeqCst);
        stack::add_address(NAME, AF_INET, &IP4).unwrap();
        // SAFETY: the test's mutex, held across the KPI call as a careless SIOCSIFLLADDR
        // handler would hold its unit lock.
        unsafe { lck_mtx_lock(lock) };
        set_lladdr(ifp, NEW.as_ptr(), 6);
        child_survived();
    }
    expect_kernel_panic(TEST, "recursive lock by its owner");
}

#[test]
fn siocsiflladdr_needs_root_and_reaches_the_driver() {
    let _ifp = tap();
    let root = proc::current_pid();
    let user = proc::spawn_process(501);
    proc::set_current_pid(user);
    assert_eq!(
        link::set_lladdr(NAME, &NEW),
        Err(Errno::EPERM),
        "proc_suser"
    );
    proc::set_current_pid(root);
    ifdrv::clear_ioctls();
    link::set_lladdr(NAME, &NEW).unwrap();
    assert_eq!(ifdrv::ioctls(), vec![ether::SIOCSIFLLADDR]);
    assert_eq!(link::get_lladdr(NAME), Ok(NEW.to_vec()));
    ether::script_ioctl(ether::SIOCSIFLLADDR, Some(Errno::EINVAL.0));
    assert_eq!(
        link::set_lladdr(NAME, &mac(0)),
        Err(Errno::EINVAL),
        "the driver's answer"
    );
    assert_eq!(link::get_lladdr(NAME), Ok(NEW.to_vec()));
}

#[test]
fn lladdr_copy_bytes_needs_the_exact_length() {
    let ifp = tap();
    let mut buf = [0x5au8; 8];
    // SAFETY: a live ifnet and an 8-byte buffer.
    let rc = unsafe { ifnet_lladdr_copy_bytes(ifp, buf.as_mut_ptr().cast(), 8) };
    assert_eq!((rc, buf), (Errno::EMSGSIZE.0, [0; 8]), "zeroed on EMSGSIZE");
    // SAFETY: as above, 6 bytes.
    let rc = unsafe { ifnet_lladdr_copy_bytes(ifp, buf.as_mut_ptr().cast(), 6) };
    assert_eq!((rc, &buf[..6]), (0, &mac(0)[..]));
    // SAFETY: NULL output: refused before any access.
    let rc = unsafe { ifnet_lladdr_copy_bytes(ifp, std::ptr::null_mut(), 6) };
    assert_eq!(rc, Errno::EINVAL.0);
}

#[test]
fn lladdr_copy_bytes_before_attach_panics() {
    const TEST: &str = "lladdr_copy_bytes_before_attach_panics";
    if is_child(TEST) {
        boot();
        let ifp = ifdrv::allocate("llalloc", 0, std::ptr::null_mut());
        let mut buf = [0u8; 6];
        // SAFETY: an allocated (not attached) ifnet: must panic.
        unsafe { ifnet_lladdr_copy_bytes(ifp, buf.as_mut_ptr().cast(), 6) };
        child_survived();
    }
    expect_kernel_panic(TEST, "before ifnet_attach");
}

#[test]
fn set_hdrlen_is_stored() {
    let ifp = tap();
    // SAFETY: a live ifnet.
    assert_eq!(unsafe { ether::ifnet_set_hdrlen(ifp, 18) }, 0);
    assert_eq!(interface(NAME).unwrap().hdrlen, 18);
    // SAFETY: a NULL interface is refused.
    let rc = unsafe { ether::ifnet_set_hdrlen(std::ptr::null_mut(), 14) };
    assert_eq!(rc, Errno::EINVAL.0);
}

#[test]
fn promiscuous_mode_is_counted_and_reaches_the_driver_only_while_up() {
    let _ifp = tap();
    ifdrv::clear_ioctls();
    link::set_promiscuous(NAME, true).unwrap();
    link::set_promiscuous(NAME, true).unwrap();
    let info = interface(NAME).unwrap();
    assert_eq!(
        (info.flags & IFF_PROMISC, info.promisc_count),
        (IFF_PROMISC, 2)
    );
    assert!(ifdrv::ioctls().is_empty(), "down: the driver is not told");
    link::set_promiscuous(NAME, false).unwrap();
    link::set_promiscuous(NAME, false).unwrap();
    assert_eq!(interface(NAME).unwrap().flags & IFF_PROMISC, 0);

    stack::set_flags(NAME, IFF_UP, 0).unwrap();
    ifdrv::clear_ioctls();
    link::set_promiscuous(NAME, true).unwrap();
    link::set_promiscuous(NAME, true).unwrap();
    assert_eq!(
        ifdrv::ioctl_calls(),
        vec![(ether::SIOCSIFFLAGS, true)],
        "up: one NULL SIOCSIFFLAGS when the flag changes"
    );
    link::set_promiscuous(NAME, false).unwrap();
    ether::script_ioctl(ether::SIOCSIFFLAGS, Some(Errno::EIO.0));
    assert_eq!(link::set_promiscuous(NAME, false), Err(Errno::EIO));
    let info = interface(NAME).unwrap();
    assert_eq!(
        (info.flags & IFF_PROMISC, info.promisc_count),
        (IFF_PROMISC, 1),
        "the driver's error reverts the count and the flag"
    );
}
