//! A minimal ARP (xnu bsd/netinet/in_arp.c `arp_lookup_ip`, `arp_ip_handle_input`,
//! `inet_arp_init_ifaddr`; bsd/net/ether_inet_pr_module.c `ether_inet_arp_input`,
//! `ether_inet_arp`): one table per Ethernet interface from IPv4 address to link address,
//! with no timers, no rate limits and no probes. Pre-output looks the destination up; a miss
//! keeps the packet (one per neighbour, the latest) and sends a request; a reply (or a request
//! for one of our addresses) fills the table and sends the kept packet; a request for one of
//! our addresses is answered. Requests, replies and announcements leave as raw output
//! (`ifnet_output_raw`), never through the framer. Tests may set entries.

use crate::abi::*;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::dlil_output;
use crate::net::kpi_interface::with_if;
use crate::net::lladdr;
use std::collections::HashMap;
use std::sync::Mutex;

/// `ARPOP_REQUEST` (bsd/net/if_arp.h).
pub const ARPOP_REQUEST: u16 = 1;
/// `ARPOP_REPLY` (bsd/net/if_arp.h).
pub const ARPOP_REPLY: u16 = 2;
const BROADCAST: [u8; 6] = [0xff; 6];

/// One neighbour: its link address once known, and the packet kept until then.
#[derive(Default)]
struct Entry {
    mac: Option<[u8; 6]>,
    held: Option<Vec<u8>>,
}

/// (interface handle, IPv4 address) → entry.
type Table = HashMap<(usize, [u8; 4]), Entry>;

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    f(TABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new))
}

/// The interface's IPv4 addresses, in the order added.
pub(crate) fn own_addresses(ifp: ifnet_t) -> Vec<[u8; 4]> {
    with_if(ifp, |i| {
        i.addresses
            .iter()
            .filter(|(f, a)| *f == AF_INET && a.len() == 4)
            .map(|(_, a)| [a[0], a[1], a[2], a[3]])
            .collect()
    })
}

/// Sets (or replaces) the entry for `ip` on `ifp`; a packet kept for it is sent.
pub(crate) fn set(ifp: ifnet_t, ip: [u8; 4], mac: [u8; 6]) {
    let held = table(|t| {
        let e = t.entry((ifp as usize, ip)).or_default();
        e.mac = Some(mac);
        e.held.take()
    });
    send_held(ifp, ip, held);
}

/// The link address known for `ip` on `ifp`.
pub(crate) fn entry(ifp: ifnet_t, ip: [u8; 4]) -> Option<[u8; 6]> {
    table(|t| t.get(&(ifp as usize, ip)).and_then(|e| e.mac))
}

/// `arp_lookup_ip`: `ENETDOWN` unless `IFF_UP|IFF_RUNNING`; a packet marked `M_BCAST` or
/// sent to 255.255.255.255 goes to the interface's broadcast address; an IPv4 multicast to
/// 01:00:5e and the low 23 bits; a known neighbour to its address. Otherwise the packet's
/// bytes are kept (replacing any kept before), `m` is freed, a request is sent from the
/// interface's first IPv4 address (none: no request, logged) and the answer is `EJUSTRETURN`.
pub(crate) fn lookup(ifp: ifnet_t, ip: [u8; 4], m: mbuf_t) -> Result<[u8; 6], Errno> {
    let (flags, broadcast, name) =
        with_if(ifp, |i| (i.flags, i.link.broadcast.clone(), i.name.clone()));
    if flags & (IFF_UP | IFF_RUNNING) != IFF_UP | IFF_RUNNING {
        return Err(Errno::ENETDOWN);
    }
    if mbuf::flags(m) & mbuf::M_BCAST != 0 || ip == [255; 4] {
        return Ok(broadcast.try_into().unwrap_or(BROADCAST));
    }
    if ip[0] & 0xf0 == 0xe0 {
        return Ok([0x01, 0x00, 0x5e, ip[1] & 0x7f, ip[2], ip[3]]);
    }
    if let Some(mac) = entry(ifp, ip) {
        return Ok(mac);
    }
    let bytes = mbuf::packet_bytes(m);
    mbuf::free_chain(m);
    table(|t| t.entry((ifp as usize, ip)).or_default().held = Some(bytes));
    match own_addresses(ifp).first() {
        Some(&source) => send(ifp, ARPOP_REQUEST, source, None, ip),
        None => crate::log::kernel_log(&format!(
            "{name}: arp: no IPv4 address to resolve {}.{}.{}.{} from",
            ip[0], ip[1], ip[2], ip[3]
        )),
    }
    Err(Errno::EJUSTRETURN)
}

/// `inet_arp_init_ifaddr`: announces `ip` with a request whose sender and target are both
/// `ip` (a gratuitous ARP), broadcast.
pub(crate) fn announce(ifp: ifnet_t, ip: [u8; 4]) {
    send(ifp, ARPOP_REQUEST, ip, None, ip);
}

/// `ether_inet_arp_input` → `arp_ip_handle_input` for the ARP packet `m` (consumed): only
/// Ethernet/IPv4 packets with 6- and 4-byte addresses from a sender that is not the broadcast
/// address count. A sender using one of our addresses is logged and ignored. When the target
/// is one of our addresses the sender's entry is made (else only an existing one is updated)
/// and its kept packet sent; a request for one of our addresses is answered.
pub(crate) fn input(ifp: ifnet_t, m: mbuf_t) {
    let p = mbuf::packet_bytes(m);
    mbuf::free_chain(m);
    if p.len() < 28
        || p[0..2] != [0, 1]
        || p[2..4] != [0x08, 0x00]
        || p[4] != 6
        || p[5] != 4
        || p[8..14] == BROADCAST
    {
        return;
    }
    let op = u16::from_be_bytes([p[6], p[7]]);
    let sha: [u8; 6] = p[8..14].try_into().expect("6 bytes");
    let spa: [u8; 4] = p[14..18].try_into().expect("4 bytes");
    let tpa: [u8; 4] = p[24..28].try_into().expect("4 bytes");
    let ours = own_addresses(ifp);
    if ours.contains(&spa) {
        let name = with_if(ifp, |i| i.name.clone());
        crate::log::kernel_log(&format!(
            "{name}: arp: {sha:02x?} is using my IP address {}.{}.{}.{}",
            spa[0], spa[1], spa[2], spa[3]
        ));
        return;
    }
    let for_us = ours.contains(&tpa);
    let held = table(|t| {
        let key = (ifp as usize, spa);
        if !for_us && !t.contains_key(&key) {
            return None;
        }
        let e = t.entry(key).or_default();
        e.mac = Some(sha);
        e.held.take()
    });
    send_held(ifp, spa, held);
    if op == ARPOP_REQUEST && for_us {
        send(ifp, ARPOP_REPLY, tpa, Some(sha), spa);
    }
}

/// Sends a packet kept for `ip`, now resolvable, the way the stack first tried
/// (`dlil_output` with PF_INET).
fn send_held(ifp: ifnet_t, ip: [u8; 4], held: Option<Vec<u8>>) {
    if let Some(payload) = held {
        let dest = [
            16,
            AF_INET as u8,
            0,
            0,
            ip[0],
            ip[1],
            ip[2],
            ip[3],
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let _ = dlil_output::output(ifp, AF_INET, &dest, &payload);
    }
}

/// `ether_inet_arp`: an ARP packet from the interface's link address (sender hardware and
/// Ethernet source), to `target_mac` or, without one, to the broadcast address with a zero
/// target hardware address and `M_BCAST`; sent as raw output, its result ignored.
fn send(
    ifp: ifnet_t,
    op: u16,
    sender_ip: [u8; 4],
    target_mac: Option<[u8; 6]>,
    target_ip: [u8; 4],
) {
    let mut own = lladdr::address(ifp);
    own.resize(6, 0);
    let dst = target_mac.unwrap_or(BROADCAST);
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&own);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&own);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&target_mac.unwrap_or([0; 6]));
    f.extend_from_slice(&target_ip);
    let flags = if dst == BROADCAST { mbuf::M_BCAST } else { 0 };
    let _ = dlil_output::output_raw_flagged(ifp, &f, flags);
}
