//! Lifecycle soak (issue 5; docs/tun-contract.md ST-1, ST-5, U-4, W9, O5, RD-1): load → open all
//! sixteen units → traffic both ways on every unit at once → unload refused while open →
//! close → unload with zero leaks, repeated. A handful of cycles in the suite; 1,000 in the
//! long mode (`TUNNEL_SOAK=1`, `scripts/soak.sh`). Schedule perturbation is on throughout.

mod common;

use common::*;
use driver_tests::*;
use std::time::Duration;
use xnu_sim::abi::{AF_INET, AF_INET6};
use xnu_sim::syscalls;
use xnu_sim::{devices, netinspect, stack, KextError};

/// ST-5: the full lifecycle, repeated; every unload attempt while a unit is open is refused
/// with nothing changed, every clean unload leaves nothing behind.
#[test]
fn load_open_all_traffic_close_unload_cycles_leak_nothing() {
    boot_perturbed(0x5eed_0101);
    let cycles = scaled(50, 1000);
    let mut refused = 0u64;
    let mut packets = 0u64;
    for cycle in 0..cycles {
        load();
        let fds: Vec<_> = (0..16).map(open_unit).collect();
        // Every unit's traffic in its own thread: the units share the driver's gate and
        // global state, so this also runs sixteen callers against one driver at once.
        let traffic: Vec<_> = fds
            .iter()
            .enumerate()
            .map(|(unit, &fd)| {
                spawn(move || {
                    let name = format!("tun{unit}");
                    configure(&name);
                    let tag = [cycle as u8, unit as u8];
                    let up4 = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], &tag);
                    let up6 = ipv6_udp([0xfd; 16], [0xfe; 16], &tag);
                    assert_eq!(syscalls::write(fd, &up4), Ok(up4.len()), "W9");
                    assert_eq!(syscalls::write(fd, &up6), Ok(up6.len()), "W9");
                    assert_eq!(
                        netinspect::take_received(&name),
                        vec![(AF_INET, up4), (AF_INET6, up6)],
                        "W9, WR-1: both reach the stack, in order, as written"
                    );
                    let down4 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &tag);
                    let down6 = ipv6_udp([0xfe; 16], [0xfd; 16], &tag);
                    stack::output(&name, AF_INET, &sockaddr_in([10, 0, 0, 2]), &down4).unwrap();
                    stack::output(&name, AF_INET6, &sockaddr_in6([0xfd; 16]), &down6).unwrap();
                    for expected in [down4, down6] {
                        let mut buf = [0u8; 256];
                        let n = syscalls::read(fd, &mut buf).expect("RD-1");
                        assert_eq!(&buf[..n], &expected[..], "O5, OUT-3, RD-1");
                    }
                })
            })
            .collect();
        for (unit, t) in traffic.into_iter().enumerate() {
            join_within(t, Duration::from_secs(10), &format!("traffic on tun{unit}"));
        }
        packets += 64;
        // ST-1: refused, and nothing changed.
        let nodes = devices::node_names();
        let index = netinspect::if_nametoindex("tun7");
        assert_eq!(
            xnu_sim::kextunload(),
            Err(KextError::Busy),
            "cycle {cycle}: ST-1"
        );
        refused += 1;
        assert_eq!(
            devices::node_names(),
            nodes,
            "cycle {cycle}: nodes unchanged"
        );
        assert_eq!(
            netinspect::if_nametoindex("tun7"),
            index,
            "cycle {cycle}: tun7 kept"
        );
        for fd in fds {
            syscalls::close(fd).unwrap();
        }
        assert_eq!(xnu_sim::kextunload(), Ok(()), "cycle {cycle}: ST-2..ST-4");
        assert_no_leaks(&format!("cycle {cycle}"));
        assert!(devices::node_names().is_empty(), "cycle {cycle}: no node");
        assert!(
            netinspect::interface("tun0").is_none(),
            "cycle {cycle}: released"
        );
    }
    figure("soak_cycles", cycles);
    figure("soak_packets", packets);
    figure("soak_unloads_refused", refused);
    figure("leaks", 0);
}
