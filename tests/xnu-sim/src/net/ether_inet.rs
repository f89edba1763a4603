//! IPv4 over Ethernet (xnu bsd/net/ether_inet_pr_module.c): the PF_INET plumber
//! `ether_family_init` registers (`ether_attach_inet`: Ethernet types 0x0800 and 0x0806 through
//! the interface's add_proto), and the protocol it attaches: input (IP to `proto_input`, ARP to
//! crate::net::arp), pre-output (`ENETDOWN` unless `IFF_UP|IFF_RUNNING`; `arp_lookup_ip` for an
//! IPv4 destination, the header's own destination and type for `AF_UNSPEC`), the protocol
//! ioctl (an address marks the interface up when it is not running and announces itself with a
//! gratuitous ARP) and the event handler (a new link address announces every IPv4 address
//! again, synchronously).

use crate::abi::*;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::ether::DLIL_DESC_ETYPE2;
use crate::net::kpi_interface::with_if;
use crate::net::{arp, dlil, event};
use crate::stack::cmd;
use std::ffi::{c_char, c_ulong, c_void};

/// `pseudo_AF_HDRCMPLT` (bsd/sys/socket.h): a destination with a complete header.
const PSEUDO_AF_HDRCMPLT: u32 = 31;
/// `SIOCGIFADDR` (bsd/sys/sockio.h) on an interface: the link address into `ifr_addr`.
const SIOCGIFADDR: u32 = 0xc020_6921;

extern "C" {
    fn proto_input(pf: u32, m: mbuf_t) -> errno_t;
    fn ifnet_detach_protocol(ifp: ifnet_t, pf: u32) -> errno_t;
}

/// The Ethernet type in a frame header.
///
/// # Safety
/// `header` points to a 14-byte frame header.
pub(crate) unsafe fn header_type(header: *const c_char) -> u16 {
    // SAFETY: the caller's contract.
    let eh = unsafe { std::ptr::read_unaligned(header.cast::<[u8; 14]>()) };
    u16::from_be_bytes([eh[12], eh[13]])
}

/// `ether_attach_inet`: attaches PF_INET with the IPv4 and ARP types; an error other than
/// `EEXIST` is logged.
pub(crate) unsafe extern "C" fn ether_attach_inet(ifp: ifnet_t, pf: u32) -> errno_t {
    let (ip, arp_type) = (0x0800u16.to_be_bytes(), 0x0806u16.to_be_bytes());
    let mut demux = [
        ifnet_demux_desc {
            type_: DLIL_DESC_ETYPE2,
            data: ip.as_ptr().cast_mut().cast(),
            datalen: 2,
        },
        ifnet_demux_desc {
            type_: DLIL_DESC_ETYPE2,
            data: arp_type.as_ptr().cast_mut().cast(),
            datalen: 2,
        },
    ];
    let param = ifnet_attach_proto_param {
        demux_array: demux.as_mut_ptr(),
        demux_count: 2,
        input: Some(ether_inet_input),
        pre_output: Some(ether_inet_pre_output),
        event: Some(ether_inet_event),
        ioctl: Some(ether_inet_prmod_ioctl),
        detached: None,
        resolve: None,
        send_arp: None,
    };
    // SAFETY: the demux list and its data live on this stack frame for the whole call.
    let error = unsafe { dlil::attach_protocol(ifp, pf, param) };
    if error != 0 && error != Errno::EEXIST.0 {
        let name = with_if(ifp, |i| i.name.clone());
        crate::log::kernel_log(&format!(
            "WARNING: ether_attach_inet can't attach ip to {name}"
        ));
    }
    error
}

/// `ether_detach_inet`: detaches the protocol.
pub(crate) unsafe extern "C" fn ether_detach_inet(ifp: ifnet_t, pf: u32) {
    // SAFETY: the simulator's own KPI function with the live ifnet.
    unsafe { ifnet_detach_protocol(ifp, pf) };
}

/// `ether_inet_input`: an IPv4 packet goes to `proto_input(PF_INET)`, an ARP packet to ARP
/// input (`ether_inet_arp_input`), anything else is freed.
unsafe extern "C" fn ether_inet_input(
    ifp: ifnet_t,
    _pf: u32,
    m: mbuf_t,
    header: *mut c_char,
) -> errno_t {
    // SAFETY: the stack passes the packet's 14-byte frame header.
    match unsafe { header_type(header) } {
        0x0800 => {
            // SAFETY: the simulator's own KPI function, given the packet it now owns.
            unsafe { proto_input(AF_INET, m) };
        }
        0x0806 => arp::input(ifp, m),
        _ => mbuf::free_chain(m),
    }
    0
}

/// `ether_inet_pre_output`: `ENETDOWN` unless the interface is `IFF_UP|IFF_RUNNING`; marks the
/// packet `M_LOOP`; an IPv4 destination is resolved by `arp_lookup_ip` (which keeps the packet
/// and answers `EJUSTRETURN` while the neighbour is unknown); an `AF_UNSPEC` or
/// `pseudo_AF_HDRCMPLT` destination carries the Ethernet header in `sa_data` (its destination
/// and type are used, `M_LOOP` cleared); any other family is `EAFNOSUPPORT`.
unsafe extern "C" fn ether_inet_pre_output(
    ifp: ifnet_t,
    _pf: u32,
    mp: *mut mbuf_t,
    dest: *const sockaddr,
    _route: *mut c_void,
    frame_type: *mut c_char,
    edst: *mut c_char,
) -> errno_t {
    let (flags, name) = with_if(ifp, |i| (i.flags, i.name.clone()));
    if flags & (IFF_UP | IFF_RUNNING) != IFF_UP | IFF_RUNNING {
        return Errno::ENETDOWN.0;
    }
    // SAFETY: the stack passes its packet and a destination sockaddr of at least 16 bytes.
    let (m, sa) = unsafe { (*mp, std::ptr::read_unaligned(dest.cast::<[u8; 16]>())) };
    mbuf::set_flags(m, mbuf::M_LOOP, 0);
    let (mac, ty) = match u32::from(sa[1]) {
        AF_INET => match arp::lookup(ifp, [sa[4], sa[5], sa[6], sa[7]], m) {
            Ok(mac) => (mac, 0x0800u16.to_be_bytes()),
            Err(e) => return e.0,
        },
        AF_UNSPEC | PSEUDO_AF_HDRCMPLT => {
            mbuf::set_flags(m, 0, mbuf::M_LOOP);
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&sa[2..8]);
            (mac, [sa[14], sa[15]])
        }
        other => {
            crate::log::kernel_log(&format!("{name}: can't handle af{other}"));
            return Errno::EAFNOSUPPORT.0;
        }
    };
    // SAFETY: the stack passes writable 6-byte destination and 2-byte type buffers.
    unsafe {
        std::ptr::copy_nonoverlapping(mac.as_ptr(), edst.cast::<u8>(), 6);
        std::ptr::copy_nonoverlapping(ty.as_ptr(), frame_type.cast::<u8>(), 2);
    }
    0
}

/// The address-command part of `ether_inet_prmod_ioctl` and `ether_inet6_prmod_ioctl`: an
/// interface that is not `IFF_RUNNING` is marked `IFF_UP` and its driver gets `SIOCSIFFLAGS`
/// with NULL.
pub(crate) fn mark_up_unless_running(ifp: ifnet_t) {
    let running = with_if(ifp, |i| i.flags & IFF_RUNNING != 0);
    if !running {
        with_if(ifp, |i| i.flags |= IFF_UP);
        dlil::ifnet_ioctl(ifp, 0, cmd::SIOCSIFFLAGS, std::ptr::null_mut());
    }
}

/// `SIOCGIFADDR` on an Ethernet interface: the link address into `ifr_addr.sa_data`.
///
/// # Safety
/// `data` points to a writable 32-byte `struct ifreq`.
pub(crate) unsafe fn copy_lladdr_into_ifreq(ifp: ifnet_t, data: *mut c_void) {
    let mut addr = crate::net::lladdr::address(ifp);
    addr.resize(6, 0);
    // SAFETY: the caller's contract: `ifr_addr.sa_data` is bytes 18..32 of the ifreq.
    unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), data.cast::<u8>().add(18), 6) };
}

/// `ether_inet_prmod_ioctl`: `SIOCSIFADDR`/`SIOCAIFADDR` mark the interface up unless it is
/// running and, for an IPv4 address, announce it (`inet_arp_init_ifaddr`: a gratuitous ARP
/// request as raw output); `SIOCGIFADDR` copies the link address; anything else is
/// `EOPNOTSUPP`. The argument of an address command is the stack's `struct ifaddr`, which in
/// the simulator starts with the address's sockaddr.
unsafe extern "C" fn ether_inet_prmod_ioctl(
    ifp: ifnet_t,
    _pf: u32,
    command: c_ulong,
    data: *mut c_void,
) -> errno_t {
    match command as u32 {
        cmd::SIOCSIFADDR | cmd::SIOCAIFADDR => {
            mark_up_unless_running(ifp);
            // SAFETY: the simulator's address commands pass its ifaddr, a sockaddr first.
            let sa = unsafe { std::ptr::read_unaligned(data.cast::<[u8; 16]>()) };
            if u32::from(sa[1]) == AF_INET {
                arp::announce(ifp, [sa[4], sa[5], sa[6], sa[7]]);
            }
            0
        }
        SIOCGIFADDR => {
            // SAFETY: SIOCGIFADDR's argument is a struct ifreq.
            unsafe { copy_lladdr_into_ifreq(ifp, data) };
            0
        }
        _ => Errno::EOPNOTSUPP.0,
    }
}

/// `ether_inet_event`: on `KEV_DL_LINK_ADDRESS_CHANGED` every IPv4 address of the interface
/// is announced again (`inet_arp_init_ifaddr`), through the driver's output, before the event
/// returns.
unsafe extern "C" fn ether_inet_event(ifp: ifnet_t, _pf: u32, msg: *const kev_msg) {
    // SAFETY: the event path passes its live kev_msg.
    let msg = unsafe { event::received(msg) };
    if msg.vendor_code != KEV_VENDOR_APPLE
        || msg.kev_class != KEV_NETWORK_CLASS
        || msg.kev_subclass != KEV_DL_SUBCLASS
        || msg.event_code != KEV_DL_LINK_ADDRESS_CHANGED
    {
        return;
    }
    for ip in arp::own_addresses(ifp) {
        arp::announce(ifp, ip);
    }
}
