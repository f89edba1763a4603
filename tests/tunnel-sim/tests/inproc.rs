//! The in-process client path (needs no FUSE, no root): the VTun-like relay moves packets
//! between the real driver's /dev/tun0 and /dev/tun1 through the syscall API and a Unix
//! datagram socket pair (no network: these tests run in the host's namespace); the sim's input
//! hook delivers them (push, no polling).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tunnel_sim::bridge::{configure_sim_interface, route};
use tunnel_sim::relay::{InProcRelay, Transport};
use xnu_sim::abi::{AF_INET, AF_INET6};
use xnu_sim::{netinspect, stack};

fn hook(name: &str) -> mpsc::Receiver<(u32, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    netinspect::set_input_hook(
        name,
        Some(Arc::new(move |family, packet: &[u8]| {
            let _ = tx.lock().unwrap().send((family, packet.to_vec()));
        })),
    );
    rx
}

/// O5 + RD-1 on tun0, then W9/WR-1 on tun1: a packet the stack sends through tun0 is read by
/// the relay, written to /dev/tun1 and reaches the stack on tun1 byte for byte, both families
/// and both directions; the driver's counters say so too.
#[test]
fn inproc_relay_carries_ipv4_and_ipv6_both_ways_through_the_driver() {
    tunnel_sim::boot_and_load(true);
    let in0 = hook("tun0");
    let in1 = hook("tun1");
    let relay = InProcRelay::start(&configure_sim_interface, Transport::Unix).expect("relay");
    let v4 = driver_tests::ipv4_udp([10, 66, 0, 1], [10, 66, 0, 2], &[0xa5; 1000]);
    let v6 = driver_tests::ipv6_udp([0xfd; 16], [0xfe; 16], b"six");
    for (name, packet, rx) in [
        ("tun0", &v4, &in1),
        ("tun1", &v4, &in0),
        ("tun0", &v6, &in1),
        ("tun1", &v6, &in0),
    ] {
        let (family, dest) = route(packet).unwrap();
        stack::output(name, family, &dest, packet).expect("output");
        let (got_family, got) = rx.recv_timeout(Duration::from_secs(10)).expect("relayed");
        assert_eq!(got, *packet, "{name}: byte for byte");
        assert_eq!(
            got_family,
            if packet[0] >> 4 == 4 {
                AF_INET
            } else {
                AF_INET6
            }
        );
    }
    for name in ["tun0", "tun1"] {
        let s = netinspect::interface(name).unwrap().stats;
        let bytes = (v4.len() + v6.len()) as u64;
        assert_eq!(
            (s.opackets, s.obytes, s.oerrors),
            (2, bytes, 0),
            "{name} O5"
        );
        assert_eq!(
            (s.ipackets, s.ibytes, s.ierrors),
            (2, bytes, 0),
            "{name} W9"
        );
    }
    relay.stop();
    netinspect::set_input_hook("tun0", None);
    netinspect::set_input_hook("tun1", None);
    driver_tests::unload_clean();
}

/// The hook replaces the capture: with it removed, input is recorded for `received` again.
#[test]
fn input_hook_removed_falls_back_to_capture() {
    tunnel_sim::boot_and_load(true);
    let rx = hook("tun0");
    let fd = driver_tests::open_unit(0);
    configure_sim_interface(0);
    let p = driver_tests::ipv4_udp([10, 66, 0, 2], [10, 66, 0, 1], b"hooked");
    xnu_sim::syscalls::write(fd, &p).unwrap();
    assert_eq!(rx.try_recv().unwrap(), (AF_INET, p.clone()));
    assert!(netinspect::received("tun0").is_empty());
    netinspect::set_input_hook("tun0", None);
    xnu_sim::syscalls::write(fd, &p).unwrap();
    assert_eq!(netinspect::received("tun0"), vec![(AF_INET, p)]);
    xnu_sim::syscalls::close(fd).unwrap();
    driver_tests::unload_clean();
}
