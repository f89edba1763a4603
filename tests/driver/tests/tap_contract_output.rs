//! The output path of tapN, stack → /dev/tapN (docs/tap-contract.md section 7): TO1..TO5 in
//! order, TO-1..TO-4, and the stack's neighbour resolution the reader sees.

use driver_tests::tap::*;
use driver_tests::*;
use xnu_sim::abi::*;
use xnu_sim::syscalls;
use xnu_sim::{link, netinspect, stack, Errno};

/// A frame from tapN to the peer, `len` bytes in all.
fn out_frame(mac: [u8; 6], ether_type: u16, len: usize) -> Vec<u8> {
    frame(PEER_MAC, mac, ether_type, &vec![len as u8; len - 14])
}

/// TO1: output to a unit that is not open is `EHOSTDOWN`, freed, counted in oerrors, not
/// tapped; also after an admin brought the closed interface up.
#[test]
fn output_to_a_closed_unit_is_ehostdown_to1() {
    boot_and_load();
    let fd = open_tap(0);
    syscalls::close(fd).unwrap();
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    let f = out_frame(mac_of("tap0"), ETHERTYPE_IP, 60);
    assert_eq!(stack::output_raw("tap0", &f), Err(Errno::EHOSTDOWN));
    assert_eq!(if_stats("tap0").oerrors, 1);
    assert_eq!(tap_counters(0).oerrors, 1);
    assert_eq!(netinspect::tap_count("tap0"), 0, "TO-1: not tapped");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    unload_clean();
}

/// TO2: output while tapN is down is `EHOSTDOWN` (raw output: the stack's own pre-output
/// would refuse first with `ENETDOWN`, before the driver, as XNU's does).
#[test]
fn output_while_down_is_ehostdown_to2() {
    boot_and_load();
    let fd = open_tap(1);
    configure_tap("tap1", Some(fd), TAP_IP);
    link::arp_set("tap1", PEER_IP, PEER_MAC).unwrap();
    stack::set_flags("tap1", 0, IFF_UP).unwrap();
    let before = if_stats("tap1").oerrors;
    let f = out_frame(mac_of("tap1"), ETHERTYPE_IP, 60);
    assert_eq!(stack::output_raw("tap1", &f), Err(Errno::EHOSTDOWN));
    assert_eq!(if_stats("tap1").oerrors, before + 1);
    let p = ipv4_udp(TAP_IP, PEER_IP, b"down");
    assert_eq!(
        stack::output("tap1", AF_INET, &sockaddr_in(PEER_IP), &p),
        Err(Errno::ENETDOWN),
        "ether_inet_pre_output"
    );
    assert_eq!(
        if_stats("tap1").oerrors,
        before + 1,
        "the driver was not called"
    );
    assert_eq!(queued(fd), 0);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TO3: a frame shorter than its header is `EINVAL`, freed, oerrors; 14 bytes is a frame.
#[test]
fn output_shorter_than_a_header_is_einval_to3() {
    boot_and_load();
    let fd = open_tap(2);
    stack::set_flags("tap2", IFF_UP, 0).unwrap();
    let mac = mac_of("tap2");
    let header = out_frame(mac, ETHERTYPE_IP, 14);
    for len in [1usize, 6, 13] {
        assert_eq!(
            stack::output_raw("tap2", &header[..len]),
            Err(Errno::EINVAL),
            "{len}"
        );
    }
    assert_eq!(if_stats("tap2").oerrors, 3);
    assert_eq!(netinspect::tap_count("tap2"), 0, "TO-1: not tapped");
    assert_eq!(stack::output_raw("tap2", &header), Ok(()));
    assert_eq!(read_frame(fd), header);
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TO4, TO5, TO-1: 128 frames queue (opackets, obytes of whole frames); the 129th is
/// `ENOBUFS`, counted as an output error and a queue drop, and BPF saw it all the same.
#[test]
fn the_queue_holds_128_frames_then_enobufs_to4_to5() {
    boot_and_load();
    let fd = open_tap(3);
    stack::set_flags("tap3", IFF_UP, 0).unwrap();
    let mac = mac_of("tap3");
    let mut bytes = 0;
    for k in 0..128usize {
        let f = out_frame(mac, ETHERTYPE_IP, 14 + k);
        assert_eq!(stack::output_raw("tap3", &f), Ok(()), "TO5 {k}");
        bytes += f.len() as u64;
    }
    let s = if_stats("tap3");
    assert_eq!((s.opackets, s.obytes, s.oerrors), (128, bytes, 0), "TO5");
    let extra = out_frame(mac, ETHERTYPE_ARP, 42);
    assert_eq!(
        stack::output_raw("tap3", &extra),
        Err(Errno::ENOBUFS),
        "TO4"
    );
    let s = if_stats("tap3");
    assert_eq!((s.opackets, s.oerrors), (128, 1));
    let c = tap_counters(3);
    assert_eq!((c.opackets, c.oerrors, c.queue_drops), (128, 1, 1));
    let t = netinspect::taps("tap3").pop().unwrap();
    assert_eq!(
        (t.outbound, t.packet.clone()),
        (true, extra),
        "TO-1: before TO4"
    );
    assert_eq!(netinspect::tap_count("tap3"), 129);
    for k in 0..128usize {
        assert_eq!(read_frame(fd).len(), 14 + k, "OUT-3: FIFO");
    }
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TO1..TO5 in order: a closed or down unit is `EHOSTDOWN` before a short frame is `EINVAL`,
/// and a short frame is `EINVAL` before a full queue is `ENOBUFS`.
#[test]
fn the_output_checks_run_in_table_order_to_order() {
    boot_and_load();
    let fd = open_tap(4);
    let runt = [0u8; 5];
    assert_eq!(
        stack::output_raw("tap4", &runt),
        Err(Errno::EHOSTDOWN),
        "TO2 < TO3"
    );
    stack::set_flags("tap4", IFF_UP, 0).unwrap();
    let f = out_frame(mac_of("tap4"), ETHERTYPE_IP, 60);
    for _ in 0..128 {
        stack::output_raw("tap4", &f).unwrap();
    }
    assert_eq!(
        stack::output_raw("tap4", &runt),
        Err(Errno::EINVAL),
        "TO3 < TO4"
    );
    assert_eq!(stack::output_raw("tap4", &f), Err(Errno::ENOBUFS));
    syscalls::close(fd).unwrap();
    assert_eq!(
        stack::output_raw("tap4", &runt),
        Err(Errno::EHOSTDOWN),
        "TO1 < TO3"
    );
    let c = tap_counters(4);
    assert_eq!((c.oerrors, c.queue_drops, c.opackets), (4, 1, 128));
    unload_clean();
}

/// TO-2: every ethertype is queued and read back unchanged: IPv4, ARP, IPv6, 802.1Q, LLDP, an
/// 802.3 length, anything.
#[test]
fn every_ethertype_is_queued_to_2() {
    boot_and_load();
    let fd = open_tap(5);
    stack::set_flags("tap5", IFF_UP, 0).unwrap();
    let mac = mac_of("tap5");
    let types = [
        ETHERTYPE_IP,
        ETHERTYPE_ARP,
        ETHERTYPE_IPV6,
        ETHERTYPE_VLAN,
        0x88cc,
        0x0040,
        0x0000,
        0xffff,
    ];
    for ty in types {
        stack::output_raw("tap5", &out_frame(mac, ty, 64)).unwrap();
    }
    for ty in types {
        assert_eq!(read_frame(fd), out_frame(mac, ty, 64), "{ty:#06x}");
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TO-3: neighbour resolution is the stack's: an IPv4 packet to an unknown neighbour first
/// reaches the reader as a broadcast ARP request; the packet waits until the reader writes the
/// reply, then arrives addressed to the peer. IPv6 alike with a solicitation to the
/// solicited-node group and an advertisement. The driver itself answers no ARP request.
#[test]
fn neighbour_resolution_is_the_stacks_to_3() {
    boot_and_load();
    let fd = open_tap(6);
    let mac = mac_of("tap6");
    stack::set_flags("tap6", IFF_UP, 0).unwrap();
    let ask = arp_request_from_peer(TAP_IP);
    assert_eq!(syscalls::write(fd, &ask), Ok(ask.len()));
    assert_eq!(
        queued(fd),
        0,
        "no address: nobody answers, the driver least of all"
    );
    configure_tap("tap6", Some(fd), TAP_IP);
    let p = ipv4_udp(TAP_IP, PEER_IP, b"after ARP");
    stack::output("tap6", AF_INET, &sockaddr_in(PEER_IP), &p).unwrap();
    let Arp {
        dst,
        src,
        op,
        spa,
        tpa,
        ..
    } = parse_arp(&read_frame(fd)).expect("ARP first");
    assert_eq!(
        (dst, src, op, spa, tpa),
        (BROADCAST, mac, ARPOP_REQUEST, TAP_IP, PEER_IP)
    );
    assert_eq!(queued(fd), 0, "the packet waits");
    let reply = arp_reply_from_peer(mac, TAP_IP);
    assert_eq!(syscalls::write(fd, &reply), Ok(reply.len()));
    assert_eq!(read_frame(fd), frame(PEER_MAC, mac, ETHERTYPE_IP, &p));
    stack::add_address("tap6", AF_INET6, &TAP_IP6).unwrap();
    drain(fd);
    let p6 = ipv6_udp(TAP_IP6, PEER_IP6, b"after ND");
    stack::output("tap6", AF_INET6, &sockaddr_in6(PEER_IP6), &p6).unwrap();
    let ns = read_frame(fd);
    assert_eq!(
        &ns[..6],
        &[0x33, 0x33, 0xff, 0, 0, 2],
        "solicited-node group"
    );
    assert!(is_neighbor_solicit_for(&ns, &PEER_IP6), "{ns:02x?}");
    assert_eq!(queued(fd), 0, "the packet waits");
    let na = neighbor_advert_from_peer(mac, TAP_IP6);
    assert_eq!(syscalls::write(fd, &na), Ok(na.len()));
    assert_eq!(read_frame(fd), frame(PEER_MAC, mac, ETHERTYPE_IPV6, &p6));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TO-4: the stack's broadcasts are looped to lo0 (`IFF_SIMPLEX`) and the device still gets a
/// copy.
#[test]
fn broadcasts_loop_to_lo0_and_still_reach_the_reader_to_4() {
    boot_and_load();
    let fd = open_tap(7);
    configure_tap("tap7", Some(fd), TAP_IP);
    let p = ipv4_udp(TAP_IP, [255; 4], b"to all");
    let looped = netinspect::looped_to_loopback("tap7");
    stack::output("tap7", AF_INET, &sockaddr_in([255; 4]), &p).unwrap();
    assert_eq!(netinspect::looped_to_loopback("tap7"), looped + 1);
    assert_eq!(
        read_frame(fd),
        frame(BROADCAST, mac_of("tap7"), ETHERTYPE_IP, &p)
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}
