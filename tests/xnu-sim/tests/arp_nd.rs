//! IPv4 and IPv6 over Ethernet and neighbour resolution (xnu bsd/net/ether_if_module.c
//! `ether_family_init`; bsd/net/ether_inet_pr_module.c `ether_attach_inet`,
//! `ether_inet_pre_output`, `ether_inet_arp`; bsd/net/ether_inet6_pr_module.c
//! `ether_attach_inet6`, `ether_inet6_pre_output`; bsd/netinet/in_arp.c `arp_lookup_ip`,
//! `arp_ip_handle_input`; bsd/netinet6/nd6.c `nd6_lookup_ipv6`, nd6_nbr.c): boot registers
//! the Ethernet plumbers; an address plumbs its family with its Ethernet types; pre-output
//! answers `ENETDOWN` unless up and running; an unknown neighbour gets an ARP request (raw,
//! never framed) or a neighbour solicitation while its packet waits; replies fill the tables
//! and release the packet; requests for our addresses are answered.

mod common;
mod ifdrv;

use common::*;
use ifdrv::ether::{self, mac};
use xnu_sim::abi::*;
use xnu_sim::netinspect::{
    frames_in, inet6_setups, interface, is_plumber_registered, plumber_calls, received, M_BCAST,
};
use xnu_sim::{link, stack, Errno};

const NAME: &str = "arptest0";
const IP4: [u8; 4] = [10, 77, 0, 1];
const PEER_IP: [u8; 4] = [10, 77, 0, 2];
const PEER: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
const V6: [u8; 16] = [0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const PEER6: [u8; 16] = [0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A tap-like unit whose framer counts its calls (raw output never reaches it).
fn tap() -> ifnet_t {
    boot();
    ether::attach_with("arptest", 0, |p| p.framer = Some(ether::counting_framer))
}

fn sin(ip: [u8; 4]) -> [u8; 16] {
    let mut sa = [0u8; 16];
    sa[0] = 16;
    sa[1] = AF_INET as u8;
    sa[4..8].copy_from_slice(&ip);
    sa
}

fn sin6(ip: [u8; 16]) -> [u8; 28] {
    let mut sa = [0u8; 28];
    sa[0] = 28;
    sa[1] = AF_INET6 as u8;
    sa[8..24].copy_from_slice(&ip);
    sa
}

/// An Ethernet/IPv4 ARP packet.
fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa);
    p
}

fn ip4_packet() -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&IP4);
    p.extend_from_slice(&PEER_IP);
    p.extend_from_slice(&[0x30, 0x39, 0, 7, 0, 8, 0, 0]);
    p
}

fn ip6_packet() -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    p.extend_from_slice(&V6);
    p.extend_from_slice(&PEER6);
    p.extend_from_slice(&[0x30, 0x39, 0, 7, 0, 8, 0, 0]);
    p
}

/// RFC 4443 section 2.3: the ICMPv6 checksum over the pseudo-header; 0 when `icmp` is right.
fn icmp6_sum(src: &[u8; 16], dst: &[u8; 16], icmp: &[u8]) -> u16 {
    let mut bytes = src.to_vec();
    bytes.extend_from_slice(dst);
    bytes.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(icmp);
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 packet (hop limit 255) carrying the ICMPv6 message `icmp`, checksummed.
fn icmp6_packet(src: [u8; 16], dst: [u8; 16], mut icmp: Vec<u8>) -> Vec<u8> {
    let sum = icmp6_sum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.extend_from_slice(&[58, 255]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&icmp);
    p
}

/// The frames the driver's output got since `from`.
fn outputs_since(from: usize) -> Vec<Vec<u8>> {
    ifdrv::outputs()[from..].to_vec()
}

#[test]
fn boot_registers_the_ethernet_plumbers() {
    boot();
    assert!(is_plumber_registered(AF_INET, IFNET_FAMILY_ETHERNET));
    assert!(is_plumber_registered(AF_INET6, IFNET_FAMILY_ETHERNET));
    assert_eq!(
        plumber_calls(),
        0,
        "the kernel's own, not proto_register_plumber calls"
    );
}

#[test]
fn inet_address_plumbs_ip_and_arp_and_marks_up() {
    let ifp = tap();
    ifdrv::clear_ioctls();
    let from = ifdrv::outputs().len();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    let info = interface(NAME).unwrap();
    assert_eq!(info.protocols, vec![AF_INET]);
    assert_eq!(info.flags & (IFF_UP | IFF_RUNNING), IFF_UP | IFF_RUNNING);
    assert_eq!(
        ifdrv::ioctl_calls(),
        vec![(ether::SIOCSIFFLAGS, true), (0x8020_690c, false)],
        "the attach marks it up (NULL SIOCSIFFLAGS), then the driver gets SIOCSIFADDR"
    );
    let out = outputs_since(from);
    assert_eq!(out.len(), 1, "a gratuitous ARP announces the address");
    assert_eq!(
        out[0],
        ether::frame([0xff; 6], mac(0), 0x0806, &arp(1, mac(0), IP4, [0; 6], IP4))
    );
    ether::input(
        ifp,
        &ether::frame(
            [0xff; 6],
            PEER,
            0x0806,
            &arp(1, PEER, PEER_IP, [0; 6], [10, 77, 0, 9]),
        ),
    );
    let f = frames_in(NAME).pop().unwrap();
    assert_eq!(
        (f.demux, f.flags),
        (Ok(AF_INET), M_BCAST),
        "0x0806 demuxes to PF_INET"
    );
    assert!(
        received(NAME).is_empty(),
        "ARP goes to ARP input, not to IP"
    );
}

#[test]
fn inet6_address_plumbs_the_ipv6_type() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET6, &V6).unwrap();
    assert_eq!(interface(NAME).unwrap().protocols, vec![AF_INET6]);
    assert_eq!(inet6_setups(NAME), 1);
    ether::input(ifp, &ether::frame(mac(0), PEER, 0x86dd, &ip6_packet()));
    assert_eq!(frames_in(NAME).pop().unwrap().demux, Ok(AF_INET6));
    assert_eq!(received(NAME), vec![(AF_INET6, ip6_packet())]);
}

#[test]
fn pre_output_is_enetdown_unless_up_and_running() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    stack::add_address(NAME, AF_INET6, &V6).unwrap();
    link::arp_set(NAME, PEER_IP, PEER).unwrap();
    link::nd_set(NAME, PEER6, PEER).unwrap();
    // SAFETY: an attached ifnet.
    unsafe { ether::ifnet_set_flags(ifp, 0, IFF_RUNNING) };
    let from = ifdrv::outputs().len();
    assert_eq!(
        stack::output(NAME, AF_INET, &sin(PEER_IP), &ip4_packet()),
        Err(Errno::ENETDOWN)
    );
    assert_eq!(
        stack::output(NAME, AF_INET6, &sin6(PEER6), &ip6_packet()),
        Err(Errno::ENETDOWN)
    );
    assert!(outputs_since(from).is_empty());
    // SAFETY: as above.
    unsafe { ether::ifnet_set_flags(ifp, IFF_RUNNING, IFF_RUNNING) };
    stack::output(NAME, AF_INET, &sin(PEER_IP), &ip4_packet()).unwrap();
    stack::output(NAME, AF_INET6, &sin6(PEER6), &ip6_packet()).unwrap();
    assert_eq!(
        outputs_since(from),
        vec![
            ether::frame(PEER, mac(0), 0x0800, &ip4_packet()),
            ether::frame(PEER, mac(0), 0x86dd, &ip6_packet())
        ]
    );
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

#[test]
fn unresolved_neighbour_gets_an_arp_request_and_its_packet_waits() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    let (from, framed) = (ifdrv::outputs().len(), ether::framed());
    let mut first = ip4_packet();
    first[27] = 0x99;
    stack::output(NAME, AF_INET, &sin(PEER_IP), &first).unwrap();
    stack::output(NAME, AF_INET, &sin(PEER_IP), &ip4_packet()).unwrap();
    let request = ether::frame(
        [0xff; 6],
        mac(0),
        0x0806,
        &arp(1, mac(0), IP4, [0; 6], PEER_IP),
    );
    assert_eq!(
        outputs_since(from),
        vec![request.clone(), request],
        "no IP packet yet"
    );
    assert_eq!(
        ether::framed(),
        framed,
        "ARP leaves as raw output, not through the framer"
    );
    assert_eq!(link::arp_entry(NAME, PEER_IP), None);
    assert_eq!(
        xnu_sim::leaks().mbufs,
        0,
        "the stack keeps bytes, not mbufs"
    );

    let from = ifdrv::outputs().len();
    ether::input(
        ifp,
        &ether::frame(mac(0), PEER, 0x0806, &arp(2, PEER, PEER_IP, mac(0), IP4)),
    );
    assert_eq!(link::arp_entry(NAME, PEER_IP), Some(PEER));
    assert_eq!(
        outputs_since(from),
        vec![ether::frame(PEER, mac(0), 0x0800, &ip4_packet())],
        "the reply releases the latest packet kept, through the framer"
    );
    assert_eq!(ether::framed(), framed + 1);
}

#[test]
fn arp_request_for_our_address_is_answered_from_our_mac() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    let from = ifdrv::outputs().len();
    let other = [10, 77, 0, 50];
    ether::input(
        ifp,
        &ether::frame(
            [0xff; 6],
            PEER,
            0x0806,
            &arp(1, PEER, PEER_IP, [0; 6], other),
        ),
    );
    assert!(outputs_since(from).is_empty(), "not for us: no reply");
    assert_eq!(link::arp_entry(NAME, PEER_IP), None, "and no entry made");
    ether::input(
        ifp,
        &ether::frame([0xff; 6], PEER, 0x0806, &arp(1, PEER, PEER_IP, [0; 6], IP4)),
    );
    assert_eq!(
        outputs_since(from),
        vec![ether::frame(
            PEER,
            mac(0),
            0x0806,
            &arp(2, mac(0), IP4, PEER, PEER_IP)
        )]
    );
    assert_eq!(
        link::arp_entry(NAME, PEER_IP),
        Some(PEER),
        "the requester is learned"
    );
}

#[test]
fn unresolved_ipv6_neighbour_gets_a_solicitation() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET6, &V6).unwrap();
    let (from, framed) = (ifdrv::outputs().len(), ether::framed());
    stack::output(NAME, AF_INET6, &sin6(PEER6), &ip6_packet()).unwrap();
    let out = outputs_since(from);
    assert_eq!(out.len(), 1, "a solicitation, not the packet");
    let group = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2];
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&PEER6);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&mac(0));
    assert_eq!(
        out[0],
        ether::frame(
            [0x33, 0x33, 0xff, 0, 0, 2],
            mac(0),
            0x86dd,
            &icmp6_packet(V6, group, ns)
        )
    );
    assert_eq!(
        ether::framed(),
        framed + 1,
        "ICMPv6 output goes through the framer"
    );

    let from = ifdrv::outputs().len();
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&PEER6);
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&PEER);
    ether::input(
        ifp,
        &ether::frame(mac(0), PEER, 0x86dd, &icmp6_packet(PEER6, V6, na)),
    );
    assert_eq!(link::nd_entry(NAME, PEER6), Some(PEER));
    assert_eq!(
        outputs_since(from),
        vec![ether::frame(PEER, mac(0), 0x86dd, &ip6_packet())]
    );
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

#[test]
fn solicitation_for_our_address_is_answered_with_an_advertisement() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET6, &V6).unwrap();
    let from = ifdrv::outputs().len();
    let group = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&V6);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&PEER);
    let mut bad = icmp6_packet(PEER6, group, ns.clone());
    bad[43] ^= 1;
    ether::input(
        ifp,
        &ether::frame([0x33, 0x33, 0xff, 0, 0, 1], PEER, 0x86dd, &bad),
    );
    assert!(outputs_since(from).is_empty(), "a bad checksum is ignored");
    ether::input(
        ifp,
        &ether::frame(
            [0x33, 0x33, 0xff, 0, 0, 1],
            PEER,
            0x86dd,
            &icmp6_packet(PEER6, group, ns),
        ),
    );
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&V6);
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&mac(0));
    assert_eq!(
        outputs_since(from),
        vec![ether::frame(
            PEER,
            mac(0),
            0x86dd,
            &icmp6_packet(V6, PEER6, na)
        )],
        "solicited + override, from the target address, to the solicitor's learned MAC"
    );
    assert_eq!(link::nd_entry(NAME, PEER6), Some(PEER));
}

/// dlil.c `ifnet_detach_final`: the protocols still attached when an interface detaches are
/// unplumbed (the Ethernet plumbers' detach); the last one marks the interface down and sends
/// the driver `SIOCSIFFLAGS` with a NULL argument, before the interface is detached.
#[test]
fn detach_unplumbs_the_protocols_still_attached() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    stack::add_address(NAME, AF_INET6, &V6).unwrap();
    assert_eq!(interface(NAME).unwrap().protocols.len(), 2);
    ifdrv::clear_ioctls();
    // SAFETY: an attached ifnet of this test's driver, detached once.
    assert_eq!(unsafe { ifdrv::ifnet_detach(ifp) }, 0);
    let detached =
        || interface(NAME).is_some_and(|i| i.state == xnu_sim::netinspect::IfState::Detached);
    assert!(wait_until(std::time::Duration::from_secs(5), detached));
    let info = interface(NAME).unwrap();
    assert!(info.protocols.is_empty(), "{:?}", info.protocols);
    assert_eq!(
        info.flags & IFF_UP,
        0,
        "the last protocol detach marks it down"
    );
    assert_eq!(
        ifdrv::ioctl_calls(),
        vec![(ether::SIOCSIFFLAGS, true)],
        "one NULL SIOCSIFFLAGS, when the last protocol goes"
    );
    // SAFETY: the allocation reference.
    unsafe { ifdrv::ifnet_release(ifp) };
}
