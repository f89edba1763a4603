//! Ethernet interfaces (xnu bsd/net/ether_if_module.c): the demux, add_proto, del_proto,
//! check_multi and framer functions an Ethernet driver puts in its `ifnet_init_params`
//! (`ether_demux`, `ether_add_proto`, `ether_del_proto`, `ether_check_multi`,
//! `ether_frameout`, all in BSDKernel.exports), and `ether_family_init`, which registers the
//! stack's own PF_INET and PF_INET6 plumbers for `IFNET_FAMILY_ETHERNET` at boot.
//!
//! Each interface keeps its demux descriptors (ETYPE2, SAP, SNAP) as XNU keeps them behind
//! `if_family_cookie`; demux matches a frame against them and marks it `M_BCAST`, `M_MCAST`
//! or, for a unicast frame to another station, `M_PROMISC` against the current link address.

use crate::abi::*;
use crate::config;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::kpi_interface::with_if;
use crate::net::{ether_inet, ether_inet6, kpi_protocol, lladdr};
use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::Mutex;

/// `DLIL_DESC_ETYPE2` (bsd/net/dlil.h): a 2-byte Ethernet type, network order.
pub(crate) const DLIL_DESC_ETYPE2: u32 = 4;
/// `DLIL_DESC_SAP` (bsd/net/dlil.h): a 3-byte 802.2 SAP.
pub(crate) const DLIL_DESC_SAP: u32 = 5;
/// `DLIL_DESC_SNAP` (bsd/net/dlil.h): a 5-byte SNAP.
pub(crate) const DLIL_DESC_SNAP: u32 = 6;
/// `PF_VLAN` (bsd/net/if_vlan_var.h): 'vlan'.
pub const PF_VLAN: u32 = 0x766c_616e;
/// `ETHERTYPE_VLAN` (bsd/net/ethernet.h).
const ETHERTYPE_VLAN: u16 = 0x8100;
/// `etherbroadcastaddr`.
const BROADCAST: [u8; 6] = [0xff; 6];

/// One demux descriptor (`struct en_desc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Desc {
    /// An Ethernet type, in network order.
    Etype2([u8; 2]),
    /// The first three payload bytes of an 802.3 frame.
    Sap([u8; 3]),
    /// Payload byte 3 and bytes 4..8 of an 802.3 frame whose first three are AA AA 03.
    Snap([u8; 5]),
}

/// Per interface (by handle): (protocol family, descriptor), in the order added.
type Descs = HashMap<usize, Vec<(u32, Desc)>>;

static DESCS: Mutex<Option<Descs>> = Mutex::new(None);
/// Frames `ether_frameout` handed to the loopback interface, per interface name.
static LOOPED: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

fn descs<R>(f: impl FnOnce(&mut Descs) -> R) -> R {
    f(DESCS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new))
}

/// `ether_family_init` (ether_if_module.c, called from bsd_init.c at boot): the stack's
/// plumbers for PF_INET (`ether_attach_inet`) and PF_INET6 (`ether_attach_inet6`) on
/// `IFNET_FAMILY_ETHERNET`, so the first address of either family on an Ethernet interface
/// attaches the protocol with its Ethernet types.
pub(crate) fn family_init() {
    kpi_protocol::register_system_plumber(
        AF_INET,
        IFNET_FAMILY_ETHERNET,
        Some(ether_inet::ether_attach_inet),
        Some(ether_inet::ether_detach_inet),
    );
    kpi_protocol::register_system_plumber(
        AF_INET6,
        IFNET_FAMILY_ETHERNET,
        Some(ether_inet6::ether_attach_inet6),
        Some(ether_inet6::ether_detach_inet6),
    );
}

/// Frames `ether_frameout` handed to the loopback interface from `name`.
pub(crate) fn looped(name: &str) -> u64 {
    LOOPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|l| l.get(name).copied())
        .unwrap_or(0)
}

/// One descriptor of a caller's list, checked as `ether_add_proto_internal` checks it.
///
/// # Safety
/// `d.data` points to `d.datalen` readable bytes when the length is the type's own.
unsafe fn parse(d: &ifnet_demux_desc) -> Result<Desc, Errno> {
    let need = match d.type_ {
        DLIL_DESC_ETYPE2 => 2,
        DLIL_DESC_SAP => 3,
        DLIL_DESC_SNAP => 5,
        _ => return Err(Errno::ENOTSUP),
    };
    if d.datalen != need {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the caller's contract; the length is the type's own (checked above).
    let data = unsafe { std::slice::from_raw_parts(d.data.cast::<u8>(), need as usize) };
    Ok(match d.type_ {
        DLIL_DESC_ETYPE2 => Desc::Etype2([data[0], data[1]]),
        DLIL_DESC_SAP => Desc::Sap([data[0], data[1], data[2]]),
        _ => Desc::Snap([data[0], data[1], data[2], data[3], data[4]]),
    })
}

/// `ether_add_proto` (bsd/net/ether_if_module.c → `ether_add_proto_internal`): adds each
/// descriptor for `pf`: `ENOTSUP` for a type other than ETYPE2, SAP or SNAP, `EINVAL` for a
/// length other than 2, 3 or 5, `EADDRINUSE` when any protocol already has an equal one; on an
/// error the descriptors of `pf` added so far (and before) are removed (`ether_del_proto`).
#[no_mangle]
unsafe extern "C" fn ether_add_proto(
    ifp: ifnet_t,
    pf: u32,
    list: *const ifnet_demux_desc,
    count: u32,
) -> errno_t {
    for k in 0..count as usize {
        // SAFETY: the KPI contract: `list` holds `count` descriptors.
        let d = unsafe { &*list.add(k) };
        // SAFETY: the KPI contract: each descriptor's data has its length.
        let added = unsafe { parse(d) }.and_then(|desc| {
            descs(|t| {
                let own = t.entry(ifp as usize).or_default();
                if own.iter().any(|&(_, e)| e == desc) {
                    return Err(Errno::EADDRINUSE);
                }
                own.push((pf, desc));
                Ok(())
            })
        });
        if let Err(e) = added {
            ether_del_proto(ifp, pf);
            return e.0;
        }
    }
    0
}

/// `ether_del_proto` (bsd/net/ether_if_module.c): removes every descriptor of `pf`; returns 0.
#[no_mangle]
extern "C" fn ether_del_proto(ifp: ifnet_t, pf: u32) -> errno_t {
    descs(|t| {
        if let Some(own) = t.get_mut(&(ifp as usize)) {
            own.retain(|&(p, _)| p != pf);
            if own.is_empty() {
                t.remove(&(ifp as usize));
            }
        }
    });
    0
}

/// `ether_demux` (bsd/net/ether_if_module.c): marks the packet `M_BCAST` (destination
/// ff:ff:ff:ff:ff:ff), `M_MCAST` (group bit) or `M_PROMISC` (unicast to another address than
/// the current link address); an 802.1Q frame loses its tag first
/// (`ether_remove_vlan_encapsulation`, xnu-11215 and later: a header not right before the
/// tag in the first mbuf drops the packet, `EJUSTRETURN`; a VLAN ID other than 0 answers
/// `PF_VLAN`); then a type above 1500 matches the ETYPE2 descriptors, a length reads 4 (SAP)
/// or 8 (SNAP) payload bytes at the data start unchecked and matches those; `ENOENT` when
/// nothing matches. With `Config::check_frame_layout` a read beyond the first mbuf's data
/// panics (XNU reads whatever follows).
#[no_mangle]
unsafe extern "C" fn ether_demux(
    ifp: ifnet_t,
    m: mbuf_t,
    header: *mut c_char,
    pf: *mut u32,
) -> errno_t {
    assert!(!header.is_null(), "ether_demux: NULL frame header");
    // SAFETY: the KPI contract: the frame header is 14 readable bytes.
    let eh = unsafe { std::ptr::read_unaligned(header.cast::<[u8; 14]>()) };
    let dst = &eh[0..6];
    if dst[0] & 1 != 0 {
        let bit = if dst == BROADCAST {
            mbuf::M_BCAST
        } else {
            mbuf::M_MCAST
        };
        mbuf::set_flags(m, bit, 0);
    } else if dst != lladdr::address(ifp).as_slice() {
        mbuf::set_flags(m, mbuf::M_PROMISC, 0);
    }
    let mut ether_type = [eh[12], eh[13]];
    if u16::from_be_bytes(ether_type) == ETHERTYPE_VLAN {
        match mbuf::remove_vlan_encap(m) {
            None => {
                mbuf::free_chain(m);
                return Errno::EJUSTRETURN.0;
            }
            Some((tag, _)) if tag != 0 => {
                // SAFETY: the KPI contract: `pf` is writable.
                unsafe { *pf = PF_VLAN };
                return 0;
            }
            Some((_, inner)) => ether_type = inner,
        }
    }
    let desc = if u16::from_be_bytes(ether_type) > 1500 {
        Desc::Etype2(ether_type)
    } else {
        let snap_probe = read_payload(ifp, m, 4);
        if snap_probe[..3] == [0xaa, 0xaa, 0x03] {
            let p = read_payload(ifp, m, 8);
            Desc::Snap([p[3], p[4], p[5], p[6], p[7]])
        } else {
            Desc::Sap([snap_probe[0], snap_probe[1], snap_probe[2]])
        }
    };
    let found = descs(|t| {
        t.get(&(ifp as usize))
            .and_then(|own| own.iter().find(|&&(_, d)| d == desc).map(|&(p, _)| p))
    });
    match found {
        Some(family) => {
            // SAFETY: the KPI contract: `pf` is writable.
            unsafe { *pf = family };
            0
        }
        None => Errno::ENOENT.0,
    }
}

/// The `n` payload bytes `ether_demux` reads at the data start, unchecked in XNU.
fn read_payload(ifp: ifnet_t, m: mbuf_t, n: usize) -> Vec<u8> {
    if config::config().check_frame_layout {
        let have = mbuf::first_len(m);
        assert!(
            have >= n,
            "ether_demux on {}: reads {n} payload bytes at the data start, the first mbuf holds \
             {have} (contract TW-1/TW-2)",
            with_if(ifp, |i| i.name.clone())
        );
    }
    mbuf::peek_first(m, n)
}

/// `ether_frameout` (bsd/net/ether_if_module.c → `ether_frameout_extended`): on an
/// `IFF_SIMPLEX` interface a packet pre-output marked `M_LOOP` is looped to lo0: a copy when
/// it is `M_BCAST` (the driver still gets the packet), the packet itself when its destination
/// is the interface's own address (`EJUSTRETURN`: the driver never sees it). Then 14 bytes are
/// prepended (`M_PREPEND`, which frees the chain and answers `EJUSTRETURN` when it fails) and
/// filled with the destination, the current link address and the type. The loopback
/// interface is not modelled: looped packets are counted.
#[no_mangle]
unsafe extern "C" fn ether_frameout(
    ifp: ifnet_t,
    mp: *mut mbuf_t,
    _dest: *const sockaddr,
    edst: *const c_char,
    ether_type: *const c_char,
) -> errno_t {
    extern "C" {
        fn mbuf_prepend(mp: *mut mbuf_t, len: usize, how: mbuf_how_t) -> errno_t;
    }
    // SAFETY: the KPI contract: pre-output filled 6 destination bytes and 2 type bytes.
    let (dst, ty) = unsafe {
        (
            std::ptr::read_unaligned(edst.cast::<[u8; 6]>()),
            std::ptr::read_unaligned(ether_type.cast::<[u8; 2]>()),
        )
    };
    let (simplex, name, own) = with_if(ifp, |i| {
        (
            i.flags & IFF_SIMPLEX != 0,
            i.name.clone(),
            i.link.addr.clone(),
        )
    });
    // SAFETY: the KPI contract: `mp` points to the caller's packet.
    let m = unsafe { *mp };
    let flags = mbuf::flags(m);
    if simplex && flags & mbuf::M_LOOP != 0 {
        let to_self = flags & mbuf::M_BCAST == 0 && dst.as_slice() == own.as_slice();
        if flags & mbuf::M_BCAST != 0 || to_self {
            *LOOPED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .entry(name)
                .or_default() += 1;
        }
        if to_self {
            mbuf::free_chain(m);
            return Errno::EJUSTRETURN.0;
        }
    }
    // SAFETY: the simulator's own KPI function on the caller's packet.
    if unsafe { mbuf_prepend(mp, 14, MBUF_DONTWAIT) } != 0 {
        return Errno::EJUSTRETURN.0;
    }
    let mut eh = [0u8; 14];
    eh[0..6].copy_from_slice(&dst);
    eh[6..12].copy_from_slice(&{
        let mut src = own;
        src.resize(6, 0);
        src
    });
    eh[12..14].copy_from_slice(&ty);
    // SAFETY: as above; the prepend succeeded, so `*mp` is the packet's new head.
    mbuf::write_front(unsafe { *mp }, &eh);
    0
}

/// `ether_check_multi` (bsd/net/ether_if_module.c): an `AF_UNSPEC` address (bytes in
/// `sa_data`) or an `AF_LINK` one (`CONST_LLADDR`) is accepted when its group bit is set, else
/// `EADDRNOTAVAIL`; any other family is `EAFNOSUPPORT`.
#[no_mangle]
unsafe extern "C" fn ether_check_multi(_ifp: ifnet_t, sa: *const sockaddr) -> errno_t {
    // SAFETY: the KPI contract: `sa` points to a readable sockaddr.
    let family = u32::from(unsafe { (*sa).sa_family });
    let first = match family {
        // SAFETY: as above; sa_data is inside the 16-byte sockaddr.
        AF_UNSPEC => unsafe { (*sa).sa_data[0] as u8 },
        AF_LINK => {
            let sdl = sa.cast::<sockaddr_dl>();
            // SAFETY: the KPI contract: an AF_LINK address is a sockaddr_dl, whose data holds
            // `sdl_nlen` name bytes before the address.
            unsafe {
                let nlen = usize::from((*sdl).sdl_nlen);
                *sdl.cast::<u8>().add(8 + nlen)
            }
        }
        _ => return Errno::EAFNOSUPPORT.0,
    };
    if first & 1 == 1 {
        0
    } else {
        Errno::EADDRNOTAVAIL.0
    }
}
