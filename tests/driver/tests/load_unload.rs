//! Load and unload of the real driver in the simulated kernel (docs/tun-contract.md sections 2, 11).

use driver_tests::*;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_RDWR};
use xnu_sim::{devices, netinspect, Errno, KextError};

/// U-1, LD-2, LD-4, TU-1, TL-1: sixteen tun and sixteen tap character nodes, root:wheel 0600,
/// one major per kind, minor = unit; no ifnet.
#[test]
fn load_creates_16_nodes_and_no_interface() {
    boot_and_load();
    let names = devices::node_names();
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..16)
            .flat_map(|n| [format!("tun{n}"), format!("tap{n}")])
            .collect();
        v.sort();
        v
    };
    assert_eq!(names, expected);
    let major0 = major(devices::node("tun0").unwrap().dev);
    assert!(major0 >= 24, "LD-1: searched from 24, got {major0}");
    for n in 0..16 {
        let node = devices::node(&format!("tun{n}")).unwrap();
        assert_eq!(node.chrblk, DEVFS_CHAR);
        assert_eq!(
            (node.uid, node.gid, node.perms),
            (0, 0, 0o600),
            "U-1 owner and mode"
        );
        assert_eq!(major(node.dev), major0);
        assert_eq!(minor(node.dev), n);
        let tap = devices::node(&format!("tap{n}")).unwrap();
        assert_eq!(
            (tap.chrblk, tap.uid, tap.gid, tap.perms),
            (DEVFS_CHAR, 0, 0, 0o600)
        );
        assert_ne!(major(tap.dev), major0, "TU-1: tap has a major of its own");
        assert_eq!(minor(tap.dev), n);
    }
    assert_eq!(
        netinspect::if_nametoindex("tun0"),
        0,
        "U-1/LD-4: no ifnet before the first open"
    );
    assert!(netinspect::interface("tun0").is_none());
    assert_eq!(netinspect::plumber_calls(), 2, "LD-4/U-8: the two plumbers");
    for family in [AF_INET, AF_INET6] {
        assert!(xnu_sim::netinspect::is_plumber_registered(
            family,
            IFNET_FAMILY_TUN
        ));
    }
    unload_clean();
}

/// U-4, U-9, U-8: the first open attaches tun0 with the creation properties.
#[test]
fn first_open_attaches_tun0() {
    boot_and_load();
    let fd = open_unit(0);
    let info = netinspect::interface("tun0").expect("tun0 attached");
    assert_eq!(info.state, netinspect::IfState::Attached);
    assert_eq!(info.unit, 0);
    assert_eq!(info.uniqueid, b"tun0");
    assert_eq!(info.family, IFNET_FAMILY_TUN);
    assert_eq!(info.if_type, IFT_OTHER);
    assert_eq!(
        info.flags,
        IFF_POINTOPOINT | IFF_MULTICAST,
        "U-4: POINTOPOINT|MULTICAST, not up"
    );
    assert_eq!(info.mtu, 1500);
    assert_eq!(
        info.bpf,
        Some((DLT_NULL, 4)),
        "U-9: BPF DLT_NULL with a 4-byte header"
    );
    assert!(info.protocols.is_empty(), "U-8: no protocol at open");
    configure("tun0");
    assert_eq!(
        netinspect::interface("tun0").unwrap().protocols,
        vec![AF_INET, AF_INET6],
        "U-8: PF_INET and PF_INET6 plumbed by the first address of each family"
    );
    assert_ne!(netinspect::if_nametoindex("tun0"), 0);
    assert!(
        netinspect::interface("tun1").is_none(),
        "other units untouched"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// U-4: close does not detach; the index is stable across opens.
#[test]
fn interface_persists_after_close_with_the_same_index() {
    boot_and_load();
    let fd = open_unit(3);
    let index = netinspect::if_nametoindex("tun3");
    syscalls::close(fd).unwrap();
    assert_eq!(
        netinspect::interface("tun3").unwrap().state,
        netinspect::IfState::Attached
    );
    let fd = open_unit(3);
    assert_eq!(netinspect::if_nametoindex("tun3"), index);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// U-3, errno #1: a second open is EBUSY and the holder keeps working; after close it opens.
#[test]
fn second_open_is_ebusy() {
    boot_and_load();
    let fd = open_unit(0);
    assert_eq!(syscalls::open("/dev/tun0", O_RDWR), Err(Errno::EBUSY));
    let dup = syscalls::dup(fd).unwrap();
    // The holder's descriptor, and its dup, keep working.
    syscalls::fcntl_setfl(fd, syscalls::O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(dup, &mut [0u8; 64]), Err(Errno::EAGAIN));
    syscalls::close(dup).unwrap();
    assert_eq!(
        syscalls::open("/dev/tun0", O_RDWR),
        Err(Errno::EBUSY),
        "dup shares the one open"
    );
    syscalls::close(fd).unwrap();
    let again = syscalls::open("/dev/tun0", O_RDWR).expect("open after close");
    syscalls::close(again).unwrap();
    unload_clean();
}

/// U-2, errno #2, #3, #5: no node above 15; a hand-made minor 16 is ENXIO; non-root is EACCES.
#[test]
fn bad_opens_fail_with_the_documented_errno() {
    boot_and_load();
    assert_eq!(syscalls::open("/dev/tun16", O_RDWR), Err(Errno::ENOENT));
    let major0 = major(devices::node("tun0").unwrap().dev);
    devices::mknod("tun99", makedev(major0, 16), 0o600);
    assert_eq!(syscalls::open("/dev/tun99", O_RDWR), Err(Errno::ENXIO));
    let user = xnu_sim::proc::spawn_process(501);
    xnu_sim::proc::set_current_pid(user);
    assert_eq!(syscalls::open("/dev/tun0", O_RDWR), Err(Errno::EACCES));
    xnu_sim::proc::set_current_pid(xnu_sim::proc::INIT_PID);
    assert!(
        netinspect::interface("tun0").is_none(),
        "U-2: the driver was never called"
    );
    unload_clean();
}

/// ST-1, errno #34: unload while a unit is open is refused and nothing changes.
#[test]
fn unload_while_open_is_refused_and_changes_nothing() {
    boot_and_load();
    let fd = open_unit(5);
    configure("tun5");
    let before = netinspect::interface("tun5").unwrap();
    let nodes = devices::node_names();
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy));
    let after = netinspect::interface("tun5").unwrap();
    assert_eq!(devices::node_names(), nodes, "nodes unchanged");
    assert_eq!(
        (after.flags, after.mtu, after.index, after.state),
        (before.flags, before.mtu, before.index, before.state)
    );
    assert_eq!(after.addresses, before.addresses);
    // The holder's descriptor still works.
    let packet = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"still here");
    assert_eq!(syscalls::write(fd, &packet), Ok(packet.len()));
    assert_eq!(netinspect::received("tun5").len(), 1);
    assert_eq!(
        syscalls::open("/dev/tun6", O_RDWR).map(syscalls::close),
        Ok(Ok(())),
        "other units still open"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
    assert!(
        devices::node_names().is_empty(),
        "ST-2: no node after unload"
    );
}

/// ST-2..ST-4: unload after close detaches every interface and leaves zero leaks, no node.
#[test]
fn unload_after_close_leaves_no_leak_and_no_node() {
    boot_and_load();
    for n in [0, 7, 15] {
        let fd = open_unit(n);
        syscalls::close(fd).unwrap();
    }
    unload_clean();
    assert!(devices::node_names().is_empty());
    for n in [0, 7, 15] {
        assert!(
            netinspect::interface(&format!("tun{n}")).is_none(),
            "ST-3: tun{n} detached and released"
        );
    }
}

/// ST-5 (short): load → open → a packet each way → close → unload, 100 times, zero leaks.
#[test]
fn load_open_traffic_close_unload_100_times() {
    boot();
    for cycle in 0..100 {
        load();
        let unit = cycle % 16;
        let name = format!("tun{unit}");
        let fd = open_unit(unit);
        configure(&name);
        let up = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[cycle as u8; 40]);
        assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
        assert_eq!(netinspect::take_received(&name), vec![(AF_INET, up)]);
        let down = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], &[!(cycle as u8); 60]);
        xnu_sim::stack::output(&name, AF_INET, &sockaddr_in([10, 0, 0, 2]), &down).unwrap();
        let mut buf = [0u8; 2000];
        let n = syscalls::read(fd, &mut buf).unwrap();
        assert_eq!(&buf[..n], &down[..]);
        syscalls::close(fd).unwrap();
        assert_eq!(xnu_sim::kextunload(), Ok(()), "cycle {cycle}");
        assert!(
            xnu_sim::leaks().is_clean(),
            "cycle {cycle}: {:?}",
            xnu_sim::leaks()
        );
    }
}

/// LD-3, errno #35: a failure at each failable KPI call of start, in turn, fails the load
/// cleanly (nothing left behind); past the last call, the load succeeds.
#[test]
fn start_failure_at_each_step_leaves_nothing_behind() {
    boot();
    let mut step = 1;
    loop {
        xnu_sim::config::fail_nth_call(step);
        match xnu_sim::kextload(kmod()) {
            Err(KextError::StartFailed(leaks)) => {
                assert!(leaks.is_clean(), "step {step}: {leaks:?}");
                assert!(devices::node_names().is_empty(), "step {step}: nodes left");
            }
            Ok(()) => break,
            Err(e) => panic!("step {step}: {e:?}"),
        }
        step += 1;
        assert!(step < 100, "start never succeeded");
    }
    xnu_sim::config::clear_faults();
    // 3 lock objects + 33 mutexes (global, 16 tun, 16 tap) + 2 cdevsw_add + 32 nodes +
    // 2 plumbers = 72 failable calls (TL-1: a failure at any of them undoes both kinds).
    assert_eq!(step, 73, "every step of start was tried");
    assert_eq!(devices::node_names().len(), 32);
    unload_clean();
}
