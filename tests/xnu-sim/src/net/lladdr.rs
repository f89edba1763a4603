//! The link layer of an interface (xnu bsd/net/kpi_interface.c, bsd/net/dlil.c `ifnet_attach`,
//! bsd/net/if.c `ifnet_set_promiscuous`): the link address and its length (`if_addrlen`, set
//! by the first attach with a `sockaddr_dl`), the header length, the broadcast address given
//! at allocation, and the reference-counted promiscuous mode. Changing the link address posts
//! `KEV_DL_LINK_ADDRESS_CHANGED` synchronously (crate::net::event), so an interface with an IPv4
//! address sends a gratuitous ARP through the driver's output before `ifnet_set_lladdr`
//! returns.

use crate::abi::*;
use crate::errno::Errno;
use crate::net::dlil;
use crate::net::kpi_interface::{with_if, IfState};
use std::ffi::c_void;

/// The link-layer state of one interface.
#[derive(Clone, Debug, Default)]
pub(crate) struct LinkLayer {
    /// `if_addrlen`: 0 until an attach with a link address sets it.
    pub(crate) addrlen: u8,
    /// The link address (`sdl_alen` bytes; empty after `ifnet_set_lladdr` with length 0).
    pub(crate) addr: Vec<u8>,
    /// `if_hdrlen` (`ifnet_set_hdrlen`).
    pub(crate) hdrlen: u8,
    /// `if_broadcast`, copied from the init parameters.
    pub(crate) broadcast: Vec<u8>,
    /// `if_pcount`: promiscuous requests outstanding.
    pub(crate) pcount: i32,
}

impl LinkLayer {
    /// The link layer `ifnet_allocate` sets up: the broadcast address is copied when both its
    /// pointer and length are given (kpi_interface.c `ifnet_set_broadcast_addr`).
    pub(crate) fn allocated(p: &ifnet_init_params) -> LinkLayer {
        let broadcast = if p.broadcast_len != 0 && !p.broadcast_addr.is_null() {
            // SAFETY: the KPI contract: `broadcast_addr` points to `broadcast_len` bytes.
            unsafe {
                std::slice::from_raw_parts(p.broadcast_addr.cast::<u8>(), p.broadcast_len as usize)
            }
            .to_vec()
        } else {
            Vec::new()
        };
        LinkLayer {
            broadcast,
            ..LinkLayer::default()
        }
    }
}

/// The link-address part of `ifnet_attach` (bsd/net/dlil.c): a `sockaddr_dl` sets
/// `if_addrlen` when it is still 0, must match it otherwise (`EINVAL`), and its address
/// (`sdl_alen` bytes after the `sdl_nlen` name bytes, `CONST_LLADDR`) becomes the link
/// address. Stricter than XNU: a `sockaddr_dl` whose `sdl_len` cannot hold its name and
/// address panics (XNU reads past it).
///
/// # Safety
/// `ll` is NULL or points to a readable `sockaddr_dl` of `sdl_len` bytes (the KPI contract).
pub(crate) unsafe fn attach(link: &mut LinkLayer, ll: *const sockaddr_dl) -> Result<(), Errno> {
    if ll.is_null() {
        return Ok(());
    }
    // SAFETY: the caller's contract: `ll` points to a readable sockaddr_dl header.
    let sdl = unsafe { *ll };
    if link.addrlen == 0 {
        link.addrlen = sdl.sdl_alen;
    } else if sdl.sdl_alen != link.addrlen {
        return Err(Errno::EINVAL);
    }
    let (nlen, alen) = (usize::from(sdl.sdl_nlen), usize::from(sdl.sdl_alen));
    assert!(
        8 + nlen + alen <= usize::from(sdl.sdl_len).max(20),
        "ifnet_attach: sockaddr_dl of sdl_len {} cannot hold {nlen} name and {alen} address bytes",
        sdl.sdl_len
    );
    // SAFETY: `sdl_data` starts 8 bytes in; the check above keeps the name and the address
    // inside the `sdl_len` (at least 20) bytes the caller's contract makes readable.
    let bytes = unsafe { std::slice::from_raw_parts(ll.cast::<u8>().add(8 + nlen), alen) };
    link.addr = bytes.to_vec();
    Ok(())
}

/// The current link address of `ifp` (empty when none).
pub(crate) fn address(ifp: ifnet_t) -> Vec<u8> {
    with_if(ifp, |i| i.link.addr.clone())
}

/// `ifnet_set_lladdr` (bsd/net/kpi_interface.c `ifnet_set_lladdr_internal`): `EINVAL` for a
/// NULL interface, or a non-zero length that differs from `if_addrlen` or comes with a NULL
/// address; `ENXIO` once detached (xnu-11417); a length of 0 clears the address. Stricter than
/// XNU: a call before `ifnet_attach` panics, since xnu-4570 (10.13) indexes `ifnet_addrs`
/// with the unset index there (out of bounds) where xnu-11417 answers `ENXIO`
/// (`IFRF_EMBRYONIC`). Then posts
/// `KEV_DL_LINK_ADDRESS_CHANGED` synchronously (`dlil_post_msg`): the protocols' event handlers
/// and the driver's `event` callback run before this returns.
#[no_mangle]
unsafe extern "C" fn ifnet_set_lladdr(ifp: ifnet_t, lladdr: *const c_void, len: usize) -> errno_t {
    if ifp.is_null() {
        return Errno::EINVAL.0;
    }
    let checked = with_if(ifp, |i| {
        if len != 0 && (len != usize::from(i.link.addrlen) || lladdr.is_null()) {
            return Err(Errno::EINVAL);
        }
        match i.state {
            IfState::Attached | IfState::Detaching => Ok(()),
            IfState::Allocated => panic!(
                "ifnet_set_lladdr {}: not attached (xnu-4570 indexes ifnet_addrs out of bounds)",
                i.name
            ),
            IfState::Detached => Err(Errno::ENXIO),
        }
    });
    if let Err(e) = checked {
        return e.0;
    }
    let bytes = if len == 0 {
        Vec::new()
    } else {
        // SAFETY: non-NULL (checked above); the KPI contract: `len` readable bytes.
        unsafe { std::slice::from_raw_parts(lladdr.cast::<u8>(), len) }.to_vec()
    };
    with_if(ifp, |i| i.link.addr = bytes);
    crate::net::event::post_msg(ifp, KEV_DL_LINK_ADDRESS_CHANGED);
    0
}

/// `ifnet_lladdr_copy_bytes` (bsd/net/kpi_interface.c `ifnet_lladdr_copy_bytes_internal`):
/// `EINVAL` for NULL arguments; when `length` is not the address length, zeroes the buffer
/// and returns `EMSGSIZE`; otherwise copies the address. Stricter than XNU: a call before
/// `ifnet_attach` panics (XNU dereferences `if_lladdr`, which attach sets).
#[no_mangle]
unsafe extern "C" fn ifnet_lladdr_copy_bytes(
    ifp: ifnet_t,
    out: *mut c_void,
    length: usize,
) -> errno_t {
    if ifp.is_null() || out.is_null() {
        return Errno::EINVAL.0;
    }
    let (state, name, addr) = with_if(ifp, |i| (i.state, i.name.clone(), i.link.addr.clone()));
    assert!(
        state != IfState::Allocated,
        "ifnet_lladdr_copy_bytes({name}) before ifnet_attach: XNU reads if_lladdr, set by attach"
    );
    if length != addr.len() {
        // SAFETY: the KPI contract: `out` has `length` writable bytes.
        unsafe { std::ptr::write_bytes(out.cast::<u8>(), 0, length) };
        return Errno::EMSGSIZE.0;
    }
    // SAFETY: as above; `addr` is the simulator's own copy, so they cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), out.cast::<u8>(), length) };
    0
}

/// `ifnet_set_hdrlen` (bsd/net/kpi_interface.c): stores the link header length; `EINVAL` for
/// a NULL interface.
#[no_mangle]
extern "C" fn ifnet_set_hdrlen(ifp: ifnet_t, hdrlen: u8) -> errno_t {
    if ifp.is_null() {
        return Errno::EINVAL.0;
    }
    with_if(ifp, |i| i.link.hdrlen = hdrlen);
    0
}

/// `ifnet_set_promiscuous` (bsd/net/if.c): counts the request in `if_pcount`, sets or clears
/// `IFF_PROMISC` by the count, and when the flag changed while the interface is up calls the
/// driver's ioctl with `SIOCSIFFLAGS` and a NULL argument (`ifnet_ioctl` with protocol 0); a
/// non-zero answer reverts the count and the flag and is returned. Called by BPF and bridges,
/// never by the driver (it is not a KPI the kext imports here).
pub(crate) fn set_promiscuous(ifp: ifnet_t, on: bool) -> Result<(), Errno> {
    let step = if on { 1 } else { -1 };
    let apply = |i: &mut crate::net::kpi_interface::SimIfnet, step: i32| {
        i.link.pcount += step;
        if i.link.pcount > 0 {
            i.flags |= IFF_PROMISC;
        } else {
            i.flags &= !IFF_PROMISC;
        }
    };
    let (old, new, name) = with_if(ifp, |i| {
        let old = i.flags;
        apply(i, step);
        (old, i.flags, i.name.clone())
    });
    let mut error = 0;
    if new != old && new & IFF_UP != 0 {
        error = dlil::ifnet_ioctl(
            ifp,
            0,
            crate::stack::cmd::SIOCSIFFLAGS,
            std::ptr::null_mut(),
        );
        if error != 0 {
            with_if(ifp, |i| apply(i, -step));
        }
    }
    if new != old {
        crate::log::kernel_log(&format!(
            "{name}: promiscuous mode {}{}",
            if new & IFF_PROMISC != 0 {
                "enable"
            } else {
                "disable"
            },
            if error != 0 { " failed" } else { " succeeded" }
        ));
    }
    crate::errno::check(error)
}
