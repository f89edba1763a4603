//! Ethernet interfaces (xnu bsd/net/ether_if_module.c): `ether_add_proto` and `ether_del_proto`
//! keep ETYPE2, SAP and SNAP descriptors and refuse bad or duplicate ones; `ether_demux`
//! matches frames against them, marks `M_BCAST`/`M_MCAST`/`M_PROMISC` against the current
//! link address, removes a priority tag (`ether_remove_vlan_encapsulation`) and drops a tagged
//! frame whose header is not right before the tag; `ether_check_multi` accepts group
//! addresses only; `ether_frameout` prepends destination, source and type and loops
//! broadcasts (and frames to itself) on a simplex interface.

mod common;
mod ifdrv;

use common::*;
use ifdrv::ether::{self, ether_add_proto, ether_check_multi, ether_demux, ether_frameout, mac};
use std::ffi::{c_char, c_void};
use xnu_sim::abi::*;
use xnu_sim::netinspect::{
    frames_in, looped_to_loopback, received, stack_drops, take_frames_in, M_BCAST, M_MCAST,
    M_PROMISC, PF_VLAN,
};
use xnu_sim::{link, mbuf, stack, Errno};

const NAME: &str = "ethtest0";
const IP4: [u8; 4] = [10, 0, 0, 1];
const PEER: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];

fn tap() -> ifnet_t {
    boot();
    ether::attach("ethtest", 0)
}

fn desc(kind: u32, data: &[u8]) -> ifnet_demux_desc {
    ifnet_demux_desc {
        type_: kind,
        data: data.as_ptr().cast_mut().cast(),
        datalen: data.len() as u32,
    }
}

/// The demux result and flags of the last frame `ifnet_input` saw on the test interface.
fn last_demux() -> (Result<u32, Errno>, u32) {
    let f = frames_in(NAME).pop().expect("a frame was recorded");
    (f.demux, f.flags)
}

/// A minimal IPv4 header and payload.
fn ipv4_packet() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    p.extend_from_slice(&[1, 2, 3, 4, 0, 8, 0, 0]);
    p
}

#[test]
fn add_proto_checks_types_lengths_and_duplicates() {
    let ifp = tap();
    let (ip, other) = (0x0800u16.to_be_bytes(), 0x88b5u16.to_be_bytes());
    // SAFETY: descriptor arrays that outlive each call, with the counts given.
    unsafe {
        assert_eq!(
            ether_add_proto(ifp, 100, &desc(7, &ip), 1),
            Errno::ENOTSUP.0
        );
        assert_eq!(
            ether_add_proto(ifp, 100, &desc(4, &ip[..1]), 1),
            Errno::EINVAL.0
        );
        assert_eq!(
            ether_add_proto(ifp, 100, &desc(5, &ip), 1),
            Errno::EINVAL.0,
            "SAP is 3"
        );
        assert_eq!(ether_add_proto(ifp, 100, &desc(4, &ip), 1), 0);
        assert_eq!(
            ether_add_proto(ifp, 101, &desc(4, &ip), 1),
            Errno::EADDRINUSE.0,
            "another protocol with the same type"
        );
        let list = [desc(4, &other), desc(4, &ip)];
        assert_eq!(
            ether_add_proto(ifp, 102, list.as_ptr(), 2),
            Errno::EADDRINUSE.0
        );
    }
    ether::input(ifp, &ether::frame(mac(0), PEER, 0x0800, &ipv4_packet()));
    assert_eq!(last_demux().0, Ok(100));
    ether::input(ifp, &ether::frame(mac(0), PEER, 0x88b5, &[0; 46]));
    assert_eq!(
        last_demux().0,
        Err(Errno::ENOENT),
        "the failed list took its first descriptor back (ether_del_proto)"
    );
    assert_eq!(
        stack_drops(NAME),
        2,
        "no protocol 100 is attached: both dropped"
    );
}

#[test]
fn demux_matches_sap_and_snap_descriptors() {
    let ifp = tap();
    let (sap, snap) = ([0x42, 0x42, 0x03], [0x00, 0x00, 0x0c, 0x20, 0x00]);
    // SAFETY: as above.
    unsafe {
        assert_eq!(ether_add_proto(ifp, 200, &desc(5, &sap), 1), 0);
        assert_eq!(ether_add_proto(ifp, 201, &desc(6, &snap), 1), 0);
    }
    let stp = [0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 1, 2];
    ether::input(ifp, &ether::frame(mac(0), PEER, stp.len() as u16, &stp));
    assert_eq!(last_demux().0, Ok(200), "SAP 42 42 03");
    let cdp = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00, 9, 9];
    ether::input(ifp, &ether::frame(mac(0), PEER, cdp.len() as u16, &cdp));
    assert_eq!(last_demux().0, Ok(201), "SNAP AA AA 03 + 00 00 0c 20 00");
    let mut other = cdp;
    other[7] = 0x01;
    ether::input(ifp, &ether::frame(mac(0), PEER, other.len() as u16, &other));
    assert_eq!(last_demux().0, Err(Errno::ENOENT), "another SNAP type");
}

#[test]
fn demux_flags_follow_the_current_link_address() {
    let ifp = tap();
    let payload = [0u8; 46];
    let flags_for = |dst: [u8; 6]| {
        ether::input(ifp, &ether::frame(dst, PEER, 0x0800, &payload));
        last_demux().1
    };
    assert_eq!(flags_for([0xff; 6]), M_BCAST);
    assert_eq!(flags_for([0x01, 0x00, 0x5e, 0, 0, 1]), M_MCAST);
    assert_eq!(flags_for([0x33, 0x33, 0, 0, 0, 1]), M_MCAST);
    assert_eq!(flags_for(mac(0)), 0, "our own unicast address");
    assert_eq!(flags_for(PEER), M_PROMISC, "another station's");
    let new = [0x02, 0x55, 0x55, 0x55, 0x55, 0x55];
    // SAFETY: an attached ifnet and a 6-byte address.
    let rc = unsafe { ether::ifnet_set_lladdr(ifp, new.as_ptr().cast(), 6) };
    assert_eq!(rc, 0);
    assert_eq!(
        flags_for(mac(0)),
        M_PROMISC,
        "the old address is foreign now"
    );
    assert_eq!(flags_for(new), 0);
}

#[test]
fn promiscuous_frames_never_reach_the_protocol() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    ether::input(ifp, &ether::frame(PEER, PEER, 0x0800, &ipv4_packet()));
    assert_eq!(last_demux(), (Ok(AF_INET), M_PROMISC));
    assert!(
        received(NAME).is_empty(),
        "dlil drops M_PROMISC after the filters"
    );
    ether::input(ifp, &ether::frame(mac(0), PEER, 0x0800, &ipv4_packet()));
    assert_eq!(received(NAME), vec![(AF_INET, ipv4_packet())]);
}

#[test]
fn vlan_priority_tag_is_removed_and_the_inner_type_demuxed() {
    let ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    for tag in [0x0000u16, 0xe000] {
        let mut payload = tag.to_be_bytes().to_vec();
        payload.extend_from_slice(&0x0800u16.to_be_bytes());
        payload.extend_from_slice(&ipv4_packet());
        ether::input(ifp, &ether::frame(mac(0), PEER, 0x8100, &payload));
        assert_eq!(last_demux(), (Ok(AF_INET), 0), "tag {tag:#x}: VLAN ID 0");
    }
    assert_eq!(
        received(NAME),
        vec![(AF_INET, ipv4_packet()), (AF_INET, ipv4_packet())],
        "the protocol gets the packet without the tag"
    );
}

#[test]
fn vlan_tagged_frame_is_pf_vlan() {
    let ifp = tap();
    let mut payload = 0x2005u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&0x0800u16.to_be_bytes());
    payload.extend_from_slice(&ipv4_packet());
    ether::input(ifp, &ether::frame(mac(0), PEER, 0x8100, &payload));
    assert_eq!(last_demux().0, Ok(PF_VLAN), "VLAN ID 5");
    assert_eq!(stack_drops(NAME), 1, "no VLAN configured on the interface");
    assert_eq!(xnu_sim::leaks().mbufs, 0);
}

/// A packet whose frame header lies apart from its data (a separate buffer).
fn packet_with_header_apart(ifp: ifnet_t, header: &mut [u8; 14], payload: &[u8]) -> mbuf_t {
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: KPI calls on a fresh chain of `payload.len()` bytes.
    unsafe {
        assert_eq!(
            ether::mbuf_allocpacket(MBUF_WAITOK, payload.len(), std::ptr::null_mut(), &mut m),
            0
        );
        ether::fill(m, payload);
        ether::mbuf_pkthdr_setrcvif(m, ifp);
        ether::mbuf_pkthdr_setheader(m, header.as_mut_ptr().cast());
    }
    m
}

#[test]
fn vlan_frame_whose_header_is_not_before_the_tag_is_dropped() {
    let ifp = tap();
    let mut header = [0u8; 14];
    header[..6].copy_from_slice(&mac(0));
    header[12..].copy_from_slice(&0x8100u16.to_be_bytes());
    let payload = [0, 0, 0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0];
    let before = mbuf::live_mbufs();
    let m = packet_with_header_apart(ifp, &mut header, &payload);
    let mut pf = 0u32;
    // SAFETY: a live packet, its 14-byte header and a writable family.
    let rc = unsafe { ether_demux(ifp, m, header.as_mut_ptr().cast(), &mut pf) };
    assert_eq!(rc, Errno::EJUSTRETURN.0, "dropped (xnu-11215 and later)");
    assert_eq!(mbuf::live_mbufs(), before, "demux freed it");
}

#[test]
fn demux_read_beyond_the_first_mbuf_panics() {
    const TEST: &str = "demux_read_beyond_the_first_mbuf_panics";
    if is_child(TEST) {
        let ifp = tap();
        let mut header = [0u8; 14];
        header[..6].copy_from_slice(&mac(0));
        header[12..].copy_from_slice(&100u16.to_be_bytes());
        let mut m: mbuf_t = std::ptr::null_mut();
        let mut max = 2u32;
        // SAFETY: a two-segment chain (96 + 224 bytes) whose first segment holds 2 bytes.
        unsafe {
            assert_eq!(
                ether::mbuf_allocpacket(MBUF_WAITOK, 200, &mut max, &mut m),
                0
            );
            ether::mbuf_setlen(m, 2);
            ether::mbuf_setlen(ether::mbuf_next(m), 98);
            ether::mbuf_pkthdr_setlen(m, 100);
            ether::mbuf_pkthdr_setrcvif(m, ifp);
            let mut pf = 0u32;
            ether_demux(ifp, m, header.as_mut_ptr().cast(), &mut pf);
        }
        child_survived();
    }
    expect_kernel_panic(TEST, "reads 4 payload bytes at the data start");
}

#[test]
fn check_multi_accepts_group_addresses_only() {
    let ifp = tap();
    let mut sa = sockaddr {
        sa_len: 16,
        sa_family: AF_UNSPEC as u8,
        ..Default::default()
    };
    let check = |sa: &sockaddr| {
        // SAFETY: a readable sockaddr.
        unsafe { ether_check_multi(ifp, sa) }
    };
    sa.sa_data[0] = 0x01;
    assert_eq!(check(&sa), 0, "AF_UNSPEC multicast");
    sa.sa_data[0] = 0x02;
    assert_eq!(check(&sa), Errno::EADDRNOTAVAIL.0, "AF_UNSPEC unicast");
    let mut sdl = sockaddr_dl {
        sdl_len: 20,
        sdl_family: AF_LINK as u8,
        sdl_nlen: 3,
        sdl_alen: 6,
        ..Default::default()
    };
    sdl.sdl_data[0] = 0x02; // a name byte: not the address
    sdl.sdl_data[3] = 0x33;
    // SAFETY: a sockaddr_dl read as the sockaddr it starts with.
    let as_sa = unsafe { &*(&sdl as *const sockaddr_dl).cast::<sockaddr>() };
    assert_eq!(check(as_sa), 0, "AF_LINK: the byte after the name");
    sdl.sdl_data[3] = 0x02;
    // SAFETY: as above.
    let as_sa = unsafe { &*(&sdl as *const sockaddr_dl).cast::<sockaddr>() };
    assert_eq!(check(as_sa), Errno::EADDRNOTAVAIL.0);
    sa.sa_family = AF_INET as u8;
    assert_eq!(check(&sa), Errno::EAFNOSUPPORT.0);
}

#[test]
fn frameout_prepends_destination_source_and_type() {
    let ifp = tap();
    let payload = ipv4_packet();
    let mut m: mbuf_t = std::ptr::null_mut();
    // SAFETY: KPI calls on a fresh chain.
    unsafe {
        assert_eq!(
            ether::mbuf_allocpacket(MBUF_WAITOK, payload.len(), std::ptr::null_mut(), &mut m),
            0
        );
        ether::fill(m, &payload);
    }
    let dest = sockaddr {
        sa_len: 16,
        sa_family: AF_INET as u8,
        ..Default::default()
    };
    let ty = 0x0800u16.to_be_bytes();
    // SAFETY: the packet, a destination, 6 destination and 2 type bytes.
    let rc = unsafe {
        ether_frameout(
            ifp,
            &mut m,
            &dest,
            PEER.as_ptr().cast::<c_char>(),
            ty.as_ptr().cast::<c_char>(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: the framed packet, copied out and freed.
    let bytes = unsafe {
        let len = mbuf_pkthdr_len(m);
        let mut out = vec![0u8; len];
        assert_eq!(
            mbuf_copydata(m, 0, len, out.as_mut_ptr().cast::<c_void>()),
            0
        );
        mbuf_freem(m);
        out
    };
    assert_eq!(bytes, ether::frame(PEER, mac(0), 0x0800, &payload));
}

#[test]
fn frameout_loops_broadcasts_and_keeps_frames_to_itself() {
    let _ifp = tap();
    stack::add_address(NAME, AF_INET, &IP4).unwrap();
    let before = ifdrv::outputs().len();
    let mut dest = [0u8; 16];
    dest[0] = 16;
    dest[1] = AF_INET as u8;
    dest[4..8].copy_from_slice(&[255; 4]);
    stack::output(NAME, AF_INET, &dest, &ipv4_packet()).unwrap();
    let out = ifdrv::outputs();
    assert_eq!(out.len(), before + 1, "the device still gets the broadcast");
    assert_eq!(out.last().unwrap()[..6], [0xff; 6]);
    assert_eq!(looped_to_loopback(NAME), 1, "and lo0 a copy (IFF_SIMPLEX)");

    link::arp_set(NAME, [10, 0, 0, 9], mac(0)).unwrap();
    dest[4..8].copy_from_slice(&[10, 0, 0, 9]);
    assert_eq!(
        stack::output(NAME, AF_INET, &dest, &ipv4_packet()),
        Err(Errno::EJUSTRETURN)
    );
    assert_eq!(
        ifdrv::outputs().len(),
        before + 1,
        "a frame to itself goes to lo0 only"
    );
    assert_eq!(looped_to_loopback(NAME), 2);
    assert_eq!(xnu_sim::leaks().mbufs, 0);
    let _ = take_frames_in(NAME);
}
