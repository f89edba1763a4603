//! IPv6 over Ethernet (xnu bsd/net/ether_inet6_pr_module.c): the PF_INET6 plumber
//! `ether_family_init` registers (`ether_attach_inet6`: Ethernet type 0x86dd through the
//! interface's add_proto), and the protocol it attaches: input (an IPv6 packet to
//! `proto_input`, after neighbour discovery has seen it, crate::net::nd), pre-output
//! (`nd6_lookup_ipv6`: `ENETDOWN` unless `IFF_UP|IFF_RUNNING`, multicast mapped to 33:33:…,
//! otherwise the neighbour cache, which keeps the packet and answers `EJUSTRETURN` while the
//! neighbour is unknown) and the protocol ioctl (the first address marks the interface up
//! when it is not running).

use crate::abi::*;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::ether::DLIL_DESC_ETYPE2;
use crate::net::ether_inet::{copy_lladdr_into_ifreq, header_type, mark_up_unless_running};
use crate::net::kpi_interface::with_if;
use crate::net::{dlil, nd};
use crate::stack::cmd;
use std::ffi::{c_char, c_ulong, c_void};

/// `SIOCGIFADDR` (bsd/sys/sockio.h) on an interface.
const SIOCGIFADDR: u32 = 0xc020_6921;

extern "C" {
    fn proto_input(pf: u32, m: mbuf_t) -> errno_t;
    fn ifnet_detach_protocol(ifp: ifnet_t, pf: u32) -> errno_t;
}

/// `ether_attach_inet6`: attaches PF_INET6 with the IPv6 type; an error other than `EEXIST`
/// is logged.
pub(crate) unsafe extern "C" fn ether_attach_inet6(ifp: ifnet_t, pf: u32) -> errno_t {
    let ip6 = 0x86ddu16.to_be_bytes();
    let mut demux = [ifnet_demux_desc {
        type_: DLIL_DESC_ETYPE2,
        data: ip6.as_ptr().cast_mut().cast(),
        datalen: 2,
    }];
    let param = ifnet_attach_proto_param {
        demux_array: demux.as_mut_ptr(),
        demux_count: 1,
        input: Some(ether_inet6_input),
        pre_output: Some(ether_inet6_pre_output),
        event: None,
        ioctl: Some(ether_inet6_prmod_ioctl),
        detached: None,
        resolve: None,
        send_arp: None,
    };
    // SAFETY: the demux list and its data live on this stack frame for the whole call.
    let error = unsafe { dlil::attach_protocol(ifp, pf, param) };
    if error != 0 && error != Errno::EEXIST.0 {
        let name = with_if(ifp, |i| i.name.clone());
        crate::log::kernel_log(&format!(
            "WARNING: ether_attach_inet6 can't attach ipv6 to {name}"
        ));
    }
    error
}

/// `ether_detach_inet6`: detaches the protocol.
pub(crate) unsafe extern "C" fn ether_detach_inet6(ifp: ifnet_t, pf: u32) {
    // SAFETY: the simulator's own KPI function with the live ifnet.
    unsafe { ifnet_detach_protocol(ifp, pf) };
}

/// `ether_inet6_input`: an IPv6 packet goes up (`proto_input`; the simulator's neighbour
/// discovery reads it first, as ICMPv6 input would), anything else is freed.
unsafe extern "C" fn ether_inet6_input(
    ifp: ifnet_t,
    pf: u32,
    m: mbuf_t,
    header: *mut c_char,
) -> errno_t {
    // SAFETY: the stack passes the packet's 14-byte frame header.
    if unsafe { header_type(header) } != 0x86dd {
        mbuf::free_chain(m);
        return 0;
    }
    nd::input(ifp, &mbuf::packet_bytes(m));
    // SAFETY: the simulator's own KPI function, given the packet it now owns.
    unsafe { proto_input(pf, m) };
    0
}

/// `ether_inet6_pre_output` → `nd6_lookup_ipv6`: marks the packet `M_LOOP`, then resolves the
/// IPv6 destination (`EAFNOSUPPORT` for another family).
unsafe extern "C" fn ether_inet6_pre_output(
    ifp: ifnet_t,
    _pf: u32,
    mp: *mut mbuf_t,
    dest: *const sockaddr,
    _route: *mut c_void,
    frame_type: *mut c_char,
    edst: *mut c_char,
) -> errno_t {
    // SAFETY: the stack passes its packet and a destination sockaddr; an IPv6 one has 28
    // bytes, and the family byte is read first.
    let (m, family) = unsafe { (*mp, (*dest).sa_family) };
    mbuf::set_flags(m, mbuf::M_LOOP, 0);
    if u32::from(family) != AF_INET6 {
        return Errno::EAFNOSUPPORT.0;
    }
    // SAFETY: an AF_INET6 destination is a 28-byte sockaddr_in6.
    let sa = unsafe { std::ptr::read_unaligned(dest.cast::<[u8; 28]>()) };
    let mut ip6 = [0u8; 16];
    ip6.copy_from_slice(&sa[8..24]);
    match nd::lookup(ifp, ip6, m) {
        Ok(mac) => {
            // SAFETY: the stack passes writable 6-byte destination and 2-byte type buffers.
            unsafe {
                std::ptr::copy_nonoverlapping(mac.as_ptr(), edst.cast::<u8>(), 6);
                std::ptr::copy_nonoverlapping(
                    0x86ddu16.to_be_bytes().as_ptr(),
                    frame_type.cast::<u8>(),
                    2,
                );
            }
            0
        }
        Err(e) => e.0,
    }
}

/// `ether_inet6_prmod_ioctl`: `SIOCSIFADDR` marks the interface up unless it is running;
/// `SIOCGIFADDR` copies the link address; anything else is `EOPNOTSUPP`.
unsafe extern "C" fn ether_inet6_prmod_ioctl(
    ifp: ifnet_t,
    _pf: u32,
    command: c_ulong,
    data: *mut c_void,
) -> errno_t {
    match command as u32 {
        cmd::SIOCSIFADDR => {
            mark_up_unless_running(ifp);
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
