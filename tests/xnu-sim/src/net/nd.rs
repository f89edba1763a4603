//! A minimal IPv6 neighbour discovery (xnu bsd/netinet6/nd6.c `nd6_lookup_ipv6`;
//! bsd/netinet6/nd6_nbr.c `nd6_ns_output`, `nd6_ns_input`, `nd6_na_input`, `nd6_na_output`):
//! one neighbour cache per Ethernet interface, with no timers, no DAD and no router
//! discovery. Pre-output maps a multicast destination to 33:33 and its low 32 bits and looks
//! a unicast one up; a miss keeps the packet (the latest) and sends a neighbour solicitation to
//! the solicited-node group. A solicitation for one of our addresses teaches the sender's
//! address (its source link-layer option) and is answered with a solicited advertisement; an
//! advertisement fills the cache. Both leave through `dlil_output` (pre-output and
//! `ether_frameout`), as ICMPv6 output does. Messages with a bad checksum or a hop limit other
//! than 255 are ignored. Tests may set entries.

use crate::abi::*;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::dlil_output;
use crate::net::kpi_interface::with_if;
use crate::net::lladdr;
use std::collections::HashMap;
use std::sync::Mutex;

/// `ND_NEIGHBOR_SOLICIT` (bsd/netinet/icmp6.h).
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
/// `ND_NEIGHBOR_ADVERT` (bsd/netinet/icmp6.h).
pub const ND_NEIGHBOR_ADVERT: u8 = 136;
const IPPROTO_ICMPV6: u8 = 58;
/// All-nodes, ff02::1.
const ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[derive(Default)]
struct Entry {
    mac: Option<[u8; 6]>,
    held: Option<Vec<u8>>,
}

/// (interface handle, IPv6 address) → entry.
type Cache = HashMap<(usize, [u8; 16]), Entry>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    f(CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new))
}

fn own_addresses(ifp: ifnet_t) -> Vec<[u8; 16]> {
    with_if(ifp, |i| {
        i.addresses
            .iter()
            .filter(|(f, a)| *f == AF_INET6 && a.len() == 16)
            .map(|(_, a)| a.as_slice().try_into().expect("16 bytes"))
            .collect()
    })
}

/// Sets (or replaces) the entry for `ip` on `ifp`; a packet kept for it is sent.
pub(crate) fn set(ifp: ifnet_t, ip: [u8; 16], mac: [u8; 6]) {
    let held = cache(|t| {
        let e = t.entry((ifp as usize, ip)).or_default();
        e.mac = Some(mac);
        e.held.take()
    });
    send_held(ifp, ip, held);
}

/// The link address known for `ip` on `ifp`.
pub(crate) fn entry(ifp: ifnet_t, ip: [u8; 16]) -> Option<[u8; 6]> {
    cache(|t| t.get(&(ifp as usize, ip)).and_then(|e| e.mac))
}

/// `nd6_lookup_ipv6`: `ENETDOWN` unless `IFF_UP|IFF_RUNNING`; a multicast destination (or a
/// packet marked `M_MCAST`) maps to 33:33 and the address's last four bytes; a known neighbour
/// to its address. Otherwise the packet's bytes are kept, `m` is freed, a solicitation is sent
/// and the answer is `EJUSTRETURN`.
pub(crate) fn lookup(ifp: ifnet_t, ip: [u8; 16], m: mbuf_t) -> Result<[u8; 6], Errno> {
    let flags = with_if(ifp, |i| i.flags);
    if flags & (IFF_UP | IFF_RUNNING) != IFF_UP | IFF_RUNNING {
        return Err(Errno::ENETDOWN);
    }
    if ip[0] == 0xff || mbuf::flags(m) & mbuf::M_MCAST != 0 {
        return Ok([0x33, 0x33, ip[12], ip[13], ip[14], ip[15]]);
    }
    if let Some(mac) = entry(ifp, ip) {
        return Ok(mac);
    }
    let bytes = mbuf::packet_bytes(m);
    mbuf::free_chain(m);
    cache(|t| t.entry((ifp as usize, ip)).or_default().held = Some(bytes));
    solicit(ifp, ip);
    Err(Errno::EJUSTRETURN)
}

/// ICMPv6 input for neighbour discovery, given an IPv6 packet received on `ifp`.
pub(crate) fn input(ifp: ifnet_t, p: &[u8]) {
    if p.len() < 40 + 24 || p[0] >> 4 != 6 || p[6] != IPPROTO_ICMPV6 || p[7] != 255 {
        return;
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if p.len() < 40 + plen || plen < 24 {
        return;
    }
    let (src, dst): ([u8; 16], [u8; 16]) = (
        p[8..24].try_into().expect("16 bytes"),
        p[24..40].try_into().expect("16 bytes"),
    );
    let icmp = &p[40..40 + plen];
    if checksum(&src, &dst, icmp) != 0 {
        return;
    }
    let target: [u8; 16] = icmp[8..24].try_into().expect("16 bytes");
    let option_mac = |kind: u8| {
        let mut at = 24;
        while at + 8 <= icmp.len() && icmp[at + 1] != 0 {
            let len = usize::from(icmp[at + 1]) * 8;
            if icmp[at] == kind && len >= 8 {
                return Some(<[u8; 6]>::try_from(&icmp[at + 2..at + 8]).expect("6 bytes"));
            }
            at += len;
        }
        None
    };
    match icmp[0] {
        ND_NEIGHBOR_SOLICIT if own_addresses(ifp).contains(&target) => {
            let unspecified = src == [0; 16];
            if let (false, Some(mac)) = (unspecified, option_mac(1)) {
                set(ifp, src, mac);
            }
            advertise(
                ifp,
                if unspecified { ALL_NODES } else { src },
                target,
                !unspecified,
            );
        }
        ND_NEIGHBOR_ADVERT => {
            if let Some(mac) = option_mac(2) {
                let known = cache(|t| t.contains_key(&(ifp as usize, target)));
                if known {
                    set(ifp, target, mac);
                }
            }
        }
        _ => {}
    }
}

/// Sends a packet kept for `ip` (`dlil_output` with PF_INET6).
fn send_held(ifp: ifnet_t, ip: [u8; 16], held: Option<Vec<u8>>) {
    if let Some(payload) = held {
        let _ = dlil_output::output(ifp, AF_INET6, &sockaddr_in6(ip), &payload);
    }
}

fn sockaddr_in6(ip: [u8; 16]) -> [u8; 28] {
    let mut sa = [0u8; 28];
    sa[0] = 28;
    sa[1] = AF_INET6 as u8;
    sa[8..24].copy_from_slice(&ip);
    sa
}

/// `nd6_ns_output`: a solicitation for `target` from the interface's first IPv6 address (none:
/// nothing is sent, logged) to the solicited-node group ff02::1:ffXX:XXXX, with our link
/// address as source link-layer option.
fn solicit(ifp: ifnet_t, target: [u8; 16]) {
    let Some(&src) = own_addresses(ifp).first() else {
        let name = with_if(ifp, |i| i.name.clone());
        crate::log::kernel_log(&format!("{name}: nd6: no IPv6 address to solicit from"));
        return;
    };
    let mut dst = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
    dst[13..16].copy_from_slice(&target[13..16]);
    let mut body = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&target);
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac_of(ifp));
    let _ = dlil_output::output(ifp, AF_INET6, &sockaddr_in6(dst), &ipv6(src, dst, body));
}

/// `nd6_na_output`: an advertisement of our `target` to `dst` (solicited and override when
/// answering a unicast solicitation), with our link address as target link-layer option.
fn advertise(ifp: ifnet_t, dst: [u8; 16], target: [u8; 16], solicited: bool) {
    let flags = if solicited { 0x60 } else { 0x20 };
    let mut body = vec![ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
    body.extend_from_slice(&target);
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&mac_of(ifp));
    let _ = dlil_output::output(ifp, AF_INET6, &sockaddr_in6(dst), &ipv6(target, dst, body));
}

fn mac_of(ifp: ifnet_t) -> [u8; 6] {
    let mut own = lladdr::address(ifp);
    own.resize(6, 0);
    own.try_into().expect("6 bytes")
}

/// An IPv6 packet (hop limit 255, next header ICMPv6) around `icmp`, its checksum filled in.
fn ipv6(src: [u8; 16], dst: [u8; 16], mut icmp: Vec<u8>) -> Vec<u8> {
    let ck = checksum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IPPROTO_ICMPV6, 255]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&icmp);
    p
}

/// The ICMPv6 checksum over the IPv6 pseudo-header and `icmp` (RFC 4443 section 2.3): 0 when
/// `icmp` carries a correct one; the value to store when its checksum field is 0.
pub fn checksum(src: &[u8; 16], dst: &[u8; 16], icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).copied().map_or(0, u32::from);
        }
    };
    add(src);
    add(dst);
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
