//! Lifecycle soak with both kinds (issue 14; docs/tap-contract.md TL-2, TL-3, TU-2, TA-5, TW8,
//! TO5, TO-3, TR-1): load → open all sixteen tap and sixteen tun units → on every unit at once,
//! in its own thread, frames both ways with ARP resolution (tap) or packets both ways (tun) →
//! unload refused while open, nothing changed → close → unload with zero leaks, repeated. A
//! handful of cycles in the suite; 1,000 in the long mode (`TUNNEL_SOAK=1`). Schedule
//! perturbation is on throughout.

mod common;

use common::*;
use driver_tests::tap::*;
use driver_tests::*;
use std::time::Duration;
use xnu_sim::abi::*;
use xnu_sim::syscalls;
use xnu_sim::{devices, netinspect, stack, KextError};

/// One tap unit's traffic: the stack resolves the peer (ARP request read, reply written),
/// the waiting packet is read, then a frame each way.
fn tap_traffic(unit: usize, fd: xnu_sim::Fd, cycle: usize) {
    let name = tap_name(unit);
    configure_tap(&name, Some(fd), TAP_IP);
    let mac = mac_of(&name);
    let tag = [cycle as u8, unit as u8];
    let p = ipv4_udp(TAP_IP, PEER_IP, &tag);
    stack::output(&name, AF_INET, &sockaddr_in(PEER_IP), &p).unwrap();
    let ask = read_frame(fd);
    assert_eq!(
        parse_arp(&ask).map(|a| (a.op, a.tpa)),
        Some((ARPOP_REQUEST, PEER_IP)),
        "TO-3"
    );
    let reply = arp_reply_from_peer(mac, TAP_IP);
    assert_eq!(syscalls::write(fd, &reply), Ok(reply.len()), "TW8");
    assert_eq!(
        read_frame(fd),
        frame(PEER_MAC, mac, ETHERTYPE_IP, &p),
        "TO5, TR-1"
    );
    let up = ipv4_frame(mac, &tag);
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()), "TW8");
    assert_eq!(
        netinspect::take_received(&name),
        [(AF_INET, up[14..].to_vec())]
    );
}

/// One tun unit's traffic: a packet each way.
fn tun_traffic(unit: usize, fd: xnu_sim::Fd, cycle: usize) {
    let name = format!("tun{unit}");
    configure(&name);
    let tag = [cycle as u8, unit as u8];
    let up = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], &tag);
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(netinspect::take_received(&name), [(AF_INET, up)]);
    let down = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &tag);
    send_ipv4(&name, &down).unwrap();
    let mut buf = [0u8; 256];
    let n = syscalls::read(fd, &mut buf).unwrap();
    assert_eq!(&buf[..n], &down[..]);
}

/// TL-2, TL-3: the full lifecycle with both kinds, repeated; every unload attempt while units
/// are open is refused with nothing changed, every clean unload leaves nothing behind, and each
/// load gives the tap units fresh MACs (TA-5) on interfaces made by the first open (TU-2).
#[test]
fn load_open_both_kinds_traffic_close_unload_cycles_leak_nothing() {
    boot_perturbed(0x7a9_0101);
    let cycles = scaled(20, 1000);
    let mut refused = 0u64;
    let mut previous_macs: Option<Vec<Vec<u8>>> = None;
    for cycle in 0..cycles {
        load();
        assert!(
            netinspect::interface("tap0").is_none(),
            "cycle {cycle}: TU-2"
        );
        let taps: Vec<_> = (0..16).map(open_tap).collect();
        let tuns: Vec<_> = (0..16).map(open_unit).collect();
        let mut threads = Vec::new();
        for (unit, &fd) in taps.iter().enumerate() {
            threads.push(spawn(move || tap_traffic(unit, fd, cycle)));
        }
        for (unit, &fd) in tuns.iter().enumerate() {
            threads.push(spawn(move || tun_traffic(unit, fd, cycle)));
        }
        for (k, t) in threads.into_iter().enumerate() {
            join_within(
                t,
                Duration::from_secs(20),
                &format!("cycle {cycle}: unit thread {k}"),
            );
        }
        let macs: Vec<Vec<u8>> = (0..16)
            .map(|n| netinspect::interface(&tap_name(n)).unwrap().lladdr)
            .collect();
        if let Some(previous) = &previous_macs {
            assert_ne!(
                &macs, previous,
                "cycle {cycle}: TA-5, unload forgot the MACs"
            );
        }
        let nodes = devices::node_names();
        let index = netinspect::if_nametoindex("tap7");
        let flags = netinspect::interface("tap7").unwrap().flags;
        assert_eq!(
            xnu_sim::kextunload(),
            Err(KextError::Busy),
            "cycle {cycle}: TL-2"
        );
        refused += 1;
        assert_eq!(
            devices::node_names(),
            nodes,
            "cycle {cycle}: nodes unchanged"
        );
        assert_eq!(netinspect::if_nametoindex("tap7"), index, "cycle {cycle}");
        assert_eq!(
            netinspect::interface("tap7").unwrap().flags,
            flags,
            "cycle {cycle}"
        );
        for fd in taps.into_iter().chain(tuns) {
            syscalls::close(fd).unwrap();
        }
        assert_eq!(xnu_sim::kextunload(), Ok(()), "cycle {cycle}: TL-3");
        assert_no_leaks(&format!("cycle {cycle}"));
        assert!(devices::node_names().is_empty(), "cycle {cycle}: no node");
        assert!(
            netinspect::interface("tap15").is_none(),
            "cycle {cycle}: released"
        );
        previous_macs = Some(macs);
    }
    figure("soak_cycles", cycles);
    figure("soak_unloads_refused", refused);
}
