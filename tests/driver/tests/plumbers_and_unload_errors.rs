//! The plumbers (U-8, U-8a, LD-4), the 4-byte output link header and framer-less output
//! (OUT-6), the write path's one allocation, and unload's error paths (ST-2, ST-3) — each
//! against the simulator's XNU behaviour (docs/xnu-fidelity.md).

use driver_tests::*;
use xnu_sim::abi::*;
use xnu_sim::config::{clear_faults, fail_nth, Fault};
use xnu_sim::syscalls::{self, O_NONBLOCK};
use xnu_sim::{devices, netinspect, stack, Errno, KextError};

extern "C" {
    fn proto_unregister_plumber(pf: u32, family: u32);
}

/// A UDP-in-IPv4 packet toward the unit's peer.
fn v4(payload: &[u8]) -> Vec<u8> {
    ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], payload)
}

/// One non-blocking read.
fn read_one(fd: xnu_sim::Fd) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = syscalls::read(fd, &mut buf).expect("a packet is queued");
    buf.truncate(n);
    buf
}

/// U-8, C1: the OpenVPN IPv6 sequence works end to end: `ifconfig tunN inet6 A/64 mtu M up`
/// plumbs PF_INET6 through the driver's plumber, which marks tunN up (U-8a); raw IPv6 flows
/// both ways.
#[test]
fn openvpn_ipv6_sequence_works_end_to_end_through_the_plumber() {
    boot_and_load();
    let fd = open_unit(0);
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    assert!(
        netinspect::interface("tun0").unwrap().protocols.is_empty(),
        "U-8"
    );
    stack::add_address("tun0", AF_INET6, &V6_LOCAL).expect("ifconfig inet6");
    stack::set_mtu("tun0", 1400).unwrap();
    stack::set_flags("tun0", IFF_UP, 0).unwrap();
    let info = netinspect::interface("tun0").unwrap();
    assert_eq!(info.protocols, vec![AF_INET6]);
    assert_eq!(
        netinspect::inet6_setups("tun0"),
        1,
        "IPv6 set-up after the plumber's 0"
    );
    let inbound = ipv6_udp(V6_PEER, V6_LOCAL, b"in");
    assert_eq!(syscalls::write(fd, &inbound), Ok(inbound.len()));
    assert_eq!(netinspect::take_received("tun0"), vec![(AF_INET6, inbound)]);
    let outbound = ipv6_udp(V6_LOCAL, V6_PEER, b"out");
    send_ipv6("tun0", &outbound).unwrap();
    assert_eq!(read_one(fd), outbound);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// U-8: without the plumbers (the landed driver registered none) XNU's IPv6 add fails with
/// ENXIO; IPv4 only logs, and its traffic then has no protocol to reach.
#[test]
fn without_the_plumbers_the_ipv6_add_is_enxio() {
    boot_and_load();
    let fd = open_unit(1);
    // SAFETY: plain KPI calls, as if the driver had never registered its plumbers.
    unsafe {
        proto_unregister_plumber(AF_INET, IFNET_FAMILY_TUN);
        proto_unregister_plumber(AF_INET6, IFNET_FAMILY_TUN);
    }
    assert_eq!(
        stack::add_address("tun1", AF_INET6, &V6_LOCAL),
        Err(Errno::ENXIO)
    );
    stack::add_address("tun1", AF_INET, &[10, 0, 0, 1]).expect("IPv4 goes on");
    assert!(netinspect::interface("tun1").unwrap().protocols.is_empty());
    syscalls::close(fd).unwrap();
    assert_eq!(xnu_sim::kextunload(), Ok(()));
}

/// LD-4, U-8: another tun driver owns a plumber: load fails cleanly, with one log line
/// naming the conflict; once it is gone, load works.
#[test]
fn a_second_tun_driver_makes_load_fail_cleanly() {
    boot();
    for family in [AF_INET6, AF_INET] {
        netinspect::register_foreign_plumber(family, IFNET_FAMILY_TUN);
        match xnu_sim::kextload(kmod()) {
            Err(KextError::StartFailed(leaks)) => assert!(leaks.is_clean(), "{leaks:?}"),
            other => panic!("load with a foreign plumber for {family}: {other:?}"),
        }
        assert!(devices::node_names().is_empty(), "no node left");
        let lines: Vec<String> = xnu_sim::log::log_lines()
            .into_iter()
            .filter(|l| l.contains("another tun driver"))
            .collect();
        assert_eq!(lines.len(), 1, "one line names the conflict: {lines:?}");
        assert!(lines[0].contains(&format!("protocol family {family}")));
        // The other driver unloads; the KPI removes its plumber.
        // SAFETY: a plain KPI call.
        unsafe { proto_unregister_plumber(family, IFNET_FAMILY_TUN) };
        load();
        assert_eq!(xnu_sim::kextunload(), Ok(()));
        assert!(xnu_sim::leaks().is_clean());
        xnu_sim::log::clear_log();
    }
}

/// WR-1: a write of up to 1500 bytes of IP is one allocation and one segment (the family word
/// shares it); the lengths the driver set add up to the packet (the simulator checks it).
#[test]
fn a_1500_byte_write_is_one_mbuf() {
    boot_and_load();
    let fd = open_unit(2);
    configure("tun2");
    for len in [28usize, 100, 1000, 1500] {
        let mut packet = v4(&vec![7; len - 28]);
        packet.truncate(len);
        let before = xnu_sim::mbuf::mbufs_allocated();
        assert_eq!(syscalls::write(fd, &packet), Ok(len));
        assert_eq!(
            xnu_sim::mbuf::mbufs_allocated() - before,
            1,
            "{len} bytes: one mbuf"
        );
        assert_eq!(netinspect::take_received("tun2"), vec![(AF_INET, packet)]);
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// OUT-6: the link header is the 4-byte host-order family word; output also takes packets
/// that skipped the framer (raw output with a complete `DLT_NULL` header, or a bare packet)
/// and `AF_UNSPEC` BPF writes (family from the version nibble); anything else is O3.
#[test]
fn output_takes_raw_and_unspec_packets_out6() {
    boot_and_load();
    let fd = open_unit(3);
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    configure("tun3");
    let p4 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"raw4");
    let p6 = ipv6_udp(V6_LOCAL, V6_PEER, b"raw6");
    let mut framed = AF_INET6.to_ne_bytes().to_vec();
    framed.extend_from_slice(&p6);
    stack::output_raw("tun3", &framed).unwrap();
    assert_eq!(read_one(fd), p6, "a complete DLT_NULL header is taken off");
    stack::output_raw("tun3", &p4).unwrap();
    assert_eq!(read_one(fd), p4, "a bare packet: the nibble decides");
    stack::bpf_write("tun3", &p6).unwrap();
    assert_eq!(read_one(fd), p6, "AF_UNSPEC: the nibble decides");
    let oerrors = if_stats("tun3").oerrors;
    assert_eq!(
        stack::bpf_write("tun3", &[0x00; 24]),
        Err(Errno::EAFNOSUPPORT)
    );
    assert_eq!(
        stack::output_raw("tun3", &[0x33; 24]),
        Err(Errno::EAFNOSUPPORT)
    );
    assert_eq!(if_stats("tun3").oerrors, oerrors + 2, "O3 twice");
    // BPF sees the 4-byte family word, and the queue holds the bare packet.
    send_ipv4("tun3", &p4).unwrap();
    let tap = netinspect::taps("tun3").pop().unwrap();
    assert_eq!(
        (tap.header, tap.packet.clone()),
        (AF_INET.to_ne_bytes().to_vec(), p4.clone())
    );
    assert_eq!(read_one(fd), p4);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// Opens unit `n`, configures it, sends one packet each way, closes: the driver works.
fn round_trip(n: usize) {
    let name = format!("tun{n}");
    let fd = open_unit(n);
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap();
    configure(&name);
    let p = v4(b"alive");
    assert_eq!(syscalls::write(fd, &p), Ok(p.len()));
    assert_eq!(netinspect::take_received(&name), vec![(AF_INET, p)]);
    let q = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"back");
    send_ipv4(&name, &q).unwrap();
    assert_eq!(read_one(fd), q);
    syscalls::close(fd).unwrap();
}

/// ST-2: `cdevsw_remove` failing leaves the driver loaded and working: the nodes are back and
/// opens, writes and reads work again; the next unload succeeds.
#[test]
fn a_failed_cdevsw_remove_leaves_the_driver_working() {
    boot_and_load();
    round_trip(4);
    fail_nth(Fault::CdevswRemove, 1);
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy));
    clear_faults();
    assert_eq!(
        devices::node_names().len(),
        32,
        "nodes are back (tun and tap)"
    );
    round_trip(4);
    unload_clean();
}

/// ST-3: `ifnet_detach` or a protocol detach failing is never followed by `ifnet_release`: the
/// interface stays attached with its reference, stop fails, and the driver stays usable (the
/// simulator panics if a released ifnet's callback runs); the next unload is clean.
#[test]
fn a_failed_detach_keeps_the_interface_and_the_driver() {
    for fault in [Fault::IfnetDetach, Fault::IfnetDetachProtocol] {
        if fault == Fault::IfnetDetach {
            boot_and_load();
        } else {
            load();
        }
        round_trip(5);
        let index = netinspect::if_nametoindex("tun5");
        fail_nth(fault, 1);
        assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "{fault:?}");
        clear_faults();
        let info = netinspect::interface("tun5").expect("not released");
        assert_eq!(info.state, netinspect::IfState::Attached, "{fault:?}");
        assert_eq!(
            netinspect::if_nametoindex("tun5"),
            index,
            "the same interface"
        );
        assert_eq!(
            devices::node_names().len(),
            32,
            "{fault:?}: nodes are back (tun and tap)"
        );
        round_trip(5);
        unload_clean();
    }
}
