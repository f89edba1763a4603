//! Framing modes (docs/tun-contract.md section 3: F-1..F-5), IPv6 end to end and BPF in every mode.

use driver_tests::*;
use tunnel::ioctl::{TUNGIFHEAD, TUNSIFHEAD, TUNSLMODE};
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, ioctl_int};
use xnu_sim::{netinspect, Errno};

fn read_one(fd: xnu_sim::Fd) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = syscalls::read(fd, &mut buf).expect("read");
    buf.truncate(n);
    buf
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// Raw mode (section 3 row 1, W6): the version nibble picks the family on write, 4 → AF_INET,
/// 6 → AF_INET6, anything else → EAFNOSUPPORT and the packet is dropped (nothing leaked).
#[test]
fn raw_write_family_comes_from_the_version_nibble() {
    boot_and_load();
    let fd = open_unit(0);
    configure("tun0");
    let v4 = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"four");
    let v6 = ipv6_udp(V6_PEER, V6_LOCAL, b"six");
    assert_eq!(syscalls::write(fd, &v4), Ok(v4.len()));
    assert_eq!(syscalls::write(fd, &v6), Ok(v6.len()));
    let mut bad = v4.clone();
    bad[0] = 0x55;
    assert_eq!(syscalls::write(fd, &bad), Err(Errno::EAFNOSUPPORT));
    assert_eq!(
        netinspect::received("tun0"),
        vec![(AF_INET, v4.clone()), (AF_INET6, v6.clone())]
    );
    assert_eq!(if_stats("tun0").ierrors, 1, "W6 counts an input error");
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0, "W6: the packet is freed");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// AF-header mode (TUNSIFHEAD, section 3 row 2): a 4-byte family in network order before the
/// packet on read and write, Darwin numbers only (28, FreeBSD's AF_INET6, is refused).
#[test]
fn af_header_mode_frames_both_directions_in_network_order() {
    boot_and_load();
    let fd = open_unit(1);
    configure("tun1");
    assert_eq!(ioctl_int(fd, TUNGIFHEAD, 0), Ok(0));
    assert_eq!(ioctl_int(fd, TUNSIFHEAD, 1), Ok(1));
    assert_eq!(ioctl_int(fd, TUNGIFHEAD, 0), Ok(1));
    let v4 = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"hdr4");
    let v6 = ipv6_udp(V6_PEER, V6_LOCAL, b"hdr6");
    let w4 = cat(&[0, 0, 0, 2], &v4);
    let w6 = cat(&[0, 0, 0, 30], &v6);
    assert_eq!(syscalls::write(fd, &w4), Ok(w4.len()));
    assert_eq!(syscalls::write(fd, &w6), Ok(w6.len()));
    assert_eq!(
        syscalls::write(fd, &cat(&[0, 0, 0, 28], &v6)),
        Err(Errno::EAFNOSUPPORT),
        "FreeBSD's AF_INET6 (28) is not accepted"
    );
    assert_eq!(
        syscalls::write(fd, &cat(&[2, 0, 0, 0], &v4)),
        Err(Errno::EAFNOSUPPORT),
        "host order is not accepted"
    );
    assert_eq!(
        netinspect::received("tun1"),
        vec![(AF_INET, v4.clone()), (AF_INET6, v6.clone())]
    );
    let stats = if_stats("tun1");
    assert_eq!(
        stats.ibytes,
        (v4.len() + v6.len()) as u64,
        "ibytes exclude the header (W9)"
    );
    send_ipv4("tun1", &v4).unwrap();
    send_ipv6("tun1", &v6).unwrap();
    assert_eq!(read_one(fd), cat(&[0, 0, 0, 0x02], &v4));
    assert_eq!(read_one(fd), cat(&[0, 0, 0, 0x1e], &v6));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// F-3: in AF-header mode the header decides the family, not the version nibble.
#[test]
fn af_header_decides_the_family_not_the_nibble_f3() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    let v4 = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"mislabelled");
    let w = cat(&[0, 0, 0, 30], &v4);
    assert_eq!(syscalls::write(fd, &w), Ok(w.len()));
    assert_eq!(netinspect::received("tun2"), vec![(AF_INET6, v4)]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// LMODE (TUNSLMODE, section 3 row 3): reads start with the destination sockaddr (16 bytes for
/// sockaddr_in, 28 for sockaddr_in6); F-5: writes are parsed as raw.
#[test]
fn link_layer_mode_prefixes_reads_with_the_destination_f5() {
    boot_and_load();
    let fd = open_unit(3);
    configure("tun3");
    assert_eq!(ioctl_int(fd, TUNSLMODE, 1), Ok(1));
    let v4 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"lmode4");
    let v6 = ipv6_udp(V6_LOCAL, V6_PEER, b"lmode6");
    send_ipv4("tun3", &v4).unwrap();
    send_ipv6("tun3", &v6).unwrap();
    assert_eq!(read_one(fd), cat(&sockaddr_in([10, 0, 0, 2]), &v4));
    assert_eq!(read_one(fd), cat(&sockaddr_in6(V6_PEER), &v6));
    // F-5: a raw write, no prefix.
    let up = ipv6_udp(V6_PEER, V6_LOCAL, b"raw write in lmode");
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(netinspect::received("tun3"), vec![(AF_INET6, up)]);
    assert_eq!(ioctl_int(fd, TUNGIFHEAD, 0), Ok(0));
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// F-1: TUNSIFHEAD(≠0) turns LMODE off and TUNSLMODE(≠0) turns AF-header mode off; setting one
/// to 0 turns off only that one. Checked by what a read returns.
#[test]
fn af_header_and_link_layer_modes_exclude_each_other_f1() {
    boot_and_load();
    let fd = open_unit(4);
    configure("tun4");
    let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"f1");
    let read_with = |fd| {
        send_ipv4("tun4", &p).unwrap();
        read_one(fd)
    };
    let af = cat(&[0, 0, 0, 2], &p);
    let ll = cat(&sockaddr_in([10, 0, 0, 2]), &p);
    ioctl_int(fd, TUNSLMODE, 1).unwrap();
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    assert_eq!(read_with(fd), af, "TUNSIFHEAD(1) turned LMODE off");
    ioctl_int(fd, TUNSLMODE, 1).unwrap();
    assert_eq!(
        ioctl_int(fd, TUNGIFHEAD, 0),
        Ok(0),
        "TUNSLMODE(1) turned AF mode off"
    );
    assert_eq!(read_with(fd), ll);
    ioctl_int(fd, TUNSIFHEAD, 0).unwrap();
    assert_eq!(read_with(fd), ll, "TUNSIFHEAD(0) leaves LMODE on");
    ioctl_int(fd, TUNSLMODE, 0).unwrap();
    assert_eq!(read_with(fd), p, "TUNSLMODE(0): raw");
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    ioctl_int(fd, TUNSLMODE, 0).unwrap();
    assert_eq!(read_with(fd), af, "TUNSLMODE(0) leaves AF mode on");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// F-2: the queue holds bare packets; a mode change with packets queued applies to the next
/// read. F-6: a packet framed before LMODE was on reads with the unspecified address.
#[test]
fn mode_change_with_packets_queued_applies_to_the_next_read_f2() {
    boot_and_load();
    let fd = open_unit(5);
    configure("tun5");
    let p1 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"one");
    let p2 = ipv6_udp(V6_LOCAL, V6_PEER, b"two");
    let p3 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"three");
    send_ipv4("tun5", &p1).unwrap();
    send_ipv6("tun5", &p2).unwrap();
    send_ipv4("tun5", &p3).unwrap();
    assert_eq!(read_one(fd), p1);
    ioctl_int(fd, TUNSIFHEAD, 1).unwrap();
    assert_eq!(read_one(fd), cat(&[0, 0, 0, 30], &p2));
    ioctl_int(fd, TUNSLMODE, 1).unwrap();
    // F-6: the destination travels in an mbuf tag only while LMODE is on (OUT-6): p3 was
    // framed before, so its link-layer prefix is the unspecified address of its family.
    assert_eq!(read_one(fd), cat(&sockaddr_in([0, 0, 0, 0]), &p3), "F-6");
    send_ipv4("tun5", &p3).unwrap();
    assert_eq!(read_one(fd), cat(&sockaddr_in([10, 0, 0, 2]), &p3), "F-5");
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// F-4, OUT-1, WR-1: BPF sees DLT_NULL with the family as a host-order u32, in every mode and
/// both directions, whatever the user-side framing.
#[test]
fn bpf_sees_a_host_order_family_in_every_mode_f4() {
    boot_and_load();
    let fd = open_unit(6);
    configure("tun6");
    let v4 = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"bpf");
    let v6 = ipv6_udp(V6_PEER, V6_LOCAL, b"bpf6");
    let mut expected = Vec::new();
    for (mode, on) in [(TUNSIFHEAD, 0), (TUNSIFHEAD, 1), (TUNSLMODE, 1)] {
        ioctl_int(fd, mode, on).unwrap();
        let (w4, w6) = if mode == TUNSIFHEAD && on == 1 {
            (cat(&[0, 0, 0, 2], &v4), cat(&[0, 0, 0, 30], &v6))
        } else {
            (v4.clone(), v6.clone())
        };
        syscalls::write(fd, &w4).unwrap();
        syscalls::write(fd, &w6).unwrap();
        send_ipv4("tun6", &v4).unwrap();
        send_ipv6("tun6", &v6).unwrap();
        read_one(fd);
        read_one(fd);
        for (outbound, family, p) in [
            (false, AF_INET, &v4),
            (false, AF_INET6, &v6),
            (true, AF_INET, &v4),
            (true, AF_INET6, &v6),
        ] {
            expected.push(netinspect::Tap {
                outbound,
                dlt: DLT_NULL,
                header: family.to_ne_bytes().to_vec(),
                packet: p.clone(),
            });
        }
    }
    assert_eq!(netinspect::taps("tun6"), expected);
    assert_eq!(netinspect::untapped("tun6"), 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// OUT-4 and IPv6 end to end: in raw mode IPv6 is queued and read like IPv4, and raw IPv6
/// writes reach the IPv6 stack (what OpenVPN and miredo rely on).
#[test]
fn ipv6_end_to_end_in_raw_mode_out4() {
    boot_and_load();
    let fd = open_unit(7);
    xnu_sim::stack::add_address("tun7", AF_INET6, &V6_LOCAL).unwrap();
    let down = ipv6_udp(V6_LOCAL, V6_PEER, &[0x66; 1200]);
    send_ipv6("tun7", &down).unwrap();
    assert_eq!(read_one(fd), down);
    let up = ipv6_udp(V6_PEER, V6_LOCAL, &[0x99; 1200]);
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(netinspect::received("tun7"), vec![(AF_INET6, up.clone())]);
    let stats = if_stats("tun7");
    assert_eq!((stats.opackets, stats.obytes), (1, down.len() as u64));
    assert_eq!((stats.ipackets, stats.ibytes), (1, up.len() as u64));
    syscalls::close(fd).unwrap();
    unload_clean();
}
