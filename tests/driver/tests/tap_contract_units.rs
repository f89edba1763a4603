//! Tap units, their nodes and interfaces (docs/tap-contract.md section 2: TU-1..TU-6), their
//! MAC address (section 3: TA-1..TA-5), and load and unload with both kinds (section 13:
//! TL-1..TL-3).

use driver_tests::tap::*;
use driver_tests::*;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use xnu_sim::abi::*;
use xnu_sim::config::{clear_faults, fail_nth, Fault};
use xnu_sim::syscalls::{self, O_RDWR};
use xnu_sim::{devices, link, netinspect, proc, socket, stack, Errno, KextError};

/// TU-1, TL-1: sixteen character nodes `/dev/tap0..15` on a major of their own (not tun's),
/// minor = unit, root:wheel 0600; no `/dev/tap16`, and no tap interface until an open.
#[test]
fn load_makes_sixteen_tap_nodes_on_their_own_major_and_no_interface_tu1() {
    boot_and_load();
    let tun_major = major(devices::node("tun0").unwrap().dev);
    let tap_major = major(devices::node("tap0").unwrap().dev);
    assert_ne!(tap_major, tun_major, "TU-1: a second cdevsw_add");
    for n in 0..16 {
        let node = devices::node(&format!("tap{n}")).expect("TU-1: node");
        assert_eq!(
            (node.chrblk, node.uid, node.gid, node.perms),
            (DEVFS_CHAR, 0, 0, 0o600)
        );
        assert_eq!((major(node.dev), minor(node.dev)), (tap_major, n as i32));
        assert!(
            netinspect::interface(&tap_name(n)).is_none(),
            "no ifnet yet"
        );
    }
    assert!(devices::node("tap16").is_none());
    assert_eq!(syscalls::open("/dev/tap16", O_RDWR), Err(Errno::ENOENT));
    // The tap major's entry points open tap units, not tun ones.
    let fd = open_tap(9);
    let info = netinspect::interface("tap9").expect("tap9 made by its open");
    assert_eq!(info.family, IFNET_FAMILY_ETHERNET);
    assert!(netinspect::interface("tun9").is_none());
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TU-2 (U-2, U-3, U-6 for tap): non-root `EACCES` without reaching the driver, a hand-made
/// minor 16 `ENXIO`, exclusive opens (`EBUSY`, the holder keeps working, `dup` and `fork` are
/// not second opens), the next open after the holder's close succeeds, and the opener's pid in
/// the status.
#[test]
fn tap_opens_are_exclusive_and_fail_as_tun_opens_do_tu2() {
    boot_and_load();
    let user = proc::spawn_process(501);
    proc::set_current_pid(user);
    assert_eq!(syscalls::open("/dev/tap0", O_RDWR), Err(Errno::EACCES));
    proc::set_current_pid(proc::INIT_PID);
    assert!(netinspect::interface("tap0").is_none(), "never reached");
    let tap_major = major(devices::node("tap0").unwrap().dev);
    devices::mknod("tapbad", makedev(tap_major, 16), 0o600);
    assert_eq!(syscalls::open("/dev/tapbad", O_RDWR), Err(Errno::ENXIO));

    let fd = open_tap(0);
    assert_eq!(
        if_status("tap0"),
        format!("\topen (pid {})\n", proc::INIT_PID),
        "U-6: the opener's pid"
    );
    assert_eq!(syscalls::open("/dev/tap0", O_RDWR), Err(Errno::EBUSY));
    let dup = syscalls::dup(fd).unwrap();
    let child = syscalls::fork();
    proc::set_current_pid(child);
    syscalls::close(fd).unwrap(); // the child's copies: not a last close
    syscalls::close(dup).unwrap();
    proc::set_current_pid(proc::INIT_PID);
    syscalls::close(dup).unwrap();
    assert_eq!(
        syscalls::open("/dev/tap0", O_RDWR),
        Err(Errno::EBUSY),
        "U-3: dup and fork share the one open"
    );
    syscalls::fcntl_setfl(fd, syscalls::O_NONBLOCK).unwrap();
    assert_eq!(syscalls::read(fd, &mut [0u8; 64]), Err(Errno::EAGAIN));
    syscalls::close(fd).unwrap();
    let again = syscalls::open("/dev/tap0", O_RDWR).expect("U-3: open after close");
    syscalls::close(again).unwrap();
    unload_clean();
}

/// TU-2 (U-4, U-5 for tap): the first open makes tapN, kept with its index until unload; a
/// failing `ifnet_allocate` or `ifnet_attach` answers `ENOMEM` with the unit closed and no
/// interface left, and the next open completes.
#[test]
fn the_interface_is_made_by_the_first_open_and_kept_tu2() {
    boot_and_load();
    for fault in [Fault::IfnetAllocate, Fault::IfnetAttach] {
        fail_nth(fault, 1);
        assert_eq!(
            syscalls::open("/dev/tap4", O_RDWR),
            Err(Errno::ENOMEM),
            "{fault:?}"
        );
        clear_faults();
        assert!(netinspect::interface("tap4").is_none(), "{fault:?}");
    }
    let fd = open_tap(4);
    let index = netinspect::if_nametoindex("tap4");
    assert_ne!(index, 0);
    syscalls::close(fd).unwrap();
    assert_eq!(
        netinspect::interface("tap4").unwrap().state,
        netinspect::IfState::Attached,
        "close does not detach"
    );
    for _ in 0..3 {
        let fd = open_tap(4);
        assert_eq!(netinspect::if_nametoindex("tap4"), index, "U-4: reused");
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// TU-3: an open changes neither the flags nor the addresses nor the counters of an interface
/// an admin configured while it was closed.
#[test]
fn open_changes_no_flag_address_or_counter_tu3() {
    boot_and_load();
    let fd = open_tap(2);
    configure_tap("tap2", Some(fd), TAP_IP);
    let f = ipv4_frame(mac_of("tap2"), b"count me");
    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    syscalls::close(fd).unwrap();
    stack::add_address("tap2", AF_INET, &[10, 9, 9, 1]).unwrap();
    stack::set_mtu("tap2", 9000).unwrap();
    let before = netinspect::interface("tap2").unwrap();
    let counters = tap_counters(2);
    assert_ne!(
        before.flags & IFF_UP,
        0,
        "the admin's address brought it up"
    );
    let fd = open_tap(2);
    let after = netinspect::interface("tap2").unwrap();
    assert_eq!(after.flags, before.flags, "TU-3: flags");
    assert_eq!(after.addresses, before.addresses, "TU-3: addresses");
    assert_eq!(after.stats, before.stats, "TU-3: counters");
    assert_eq!(after.mtu, 9000);
    assert_eq!(tap_counters(2), counters);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TU-4: tapN's `ifnet_init_params` and set-up: name, unit, unique id, Ethernet family and
/// type, broadcast address, MTU, header length, baudrate, flags 0x8802, the TA-1 link address
/// from the `sockaddr_dl`, BPF `DLT_EN10MB`/14; XNU's own demux (marks a broadcast `M_BCAST`)
/// and framer (prepends destination, tapN's MAC and type).
#[test]
fn the_interface_has_the_creation_properties_tu4() {
    boot_and_load();
    let fd = open_tap(12);
    let i = netinspect::interface("tap12").unwrap();
    assert_eq!((i.name.as_str(), i.unit), ("tap12", 12));
    assert_eq!(i.uniqueid, b"tap12", "never a tun uniqueid");
    assert_eq!((i.family, i.if_type), (IFNET_FAMILY_ETHERNET, IFT_ETHER));
    assert_eq!(i.broadcast, BROADCAST);
    assert_eq!((i.mtu, i.hdrlen, i.baudrate), (1500, 14, 0));
    assert_eq!(i.flags, 0x8802, "BROADCAST|SIMPLEX|MULTICAST");
    assert_eq!(i.flags, IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST);
    assert_eq!(i.addrlen, 6, "sdl_alen");
    assert_eq!(i.lladdr, mac_register(fd), "the TA-1 MAC");
    assert_eq!(i.bpf, Some((DLT_EN10MB, 14)));
    assert!(i.protocols.is_empty());
    // ether_demux: a broadcast is M_BCAST; ether_frameout: the header from the current MAC.
    configure_tap("tap12", Some(fd), TAP_IP);
    let bcast = frame(BROADCAST, PEER_MAC, ETHERTYPE_IP, &[0x45; 30]);
    assert_eq!(syscalls::write(fd, &bcast), Ok(bcast.len()));
    let seen = netinspect::frames_in("tap12").pop().unwrap();
    assert_eq!(seen.flags & netinspect::M_BCAST, netinspect::M_BCAST);
    link::arp_set("tap12", PEER_IP, PEER_MAC).unwrap();
    let p = ipv4_udp(TAP_IP, PEER_IP, b"framed by XNU");
    stack::output("tap12", AF_INET, &sockaddr_in(PEER_IP), &p).unwrap();
    assert_eq!(
        read_frame(fd),
        frame(PEER_MAC, mac_of("tap12"), ETHERTYPE_IP, &p)
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TU-5: no offload and no VLAN capability: frames pass with their 802.1Q tags as bytes in
/// both directions (no hardware tag is taken out or put in), the header length stays 14, and
/// nothing but the driver's own MTU range bounds a VLAN above it. (`ifnet_set_offload` is not
/// in the simulated kernel at all, so a driver calling it would not even link here.)
#[test]
fn no_offload_and_no_vlan_capability_tu5() {
    boot_and_load();
    let fd = open_tap(5);
    stack::set_flags("tap5", IFF_UP, 0).unwrap();
    let mac = mac_of("tap5");
    let up = tagged_frame(mac, PEER_MAC, 7, ETHERTYPE_IP, &[0x45; 40]);
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    let seen = netinspect::frames_in("tap5").pop().unwrap();
    assert_eq!(seen.bytes, up, "the tag reaches the stack in the frame");
    assert_eq!(seen.demux, Ok(netinspect::PF_VLAN));
    let down = tagged_frame(PEER_MAC, mac, 7, ETHERTYPE_IP, &[0x45; 40]);
    stack::output_raw("tap5", &down).unwrap();
    assert_eq!(read_frame(fd), down, "the tag stays in the frame read");
    let i = netinspect::interface("tap5").unwrap();
    assert_eq!(i.hdrlen, 14, "no room for a tag in the link header");
    assert_eq!(
        link::vlan_configure("tap5").map(|d| (d.current, d.min, d.max)),
        Ok((1500, 72, 65517))
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TU-6, TN-2: the driver registers no plumber for tap and attaches no protocol: after load
/// only its two tun plumbers exist; an open tap has no protocol; its first IPv4 address
/// attaches PF_INET through XNU's Ethernet plumber (with the ARP type: a written ARP request
/// reaches it); unload leaves XNU's plumbers in place.
#[test]
fn tap_has_no_plumber_of_the_driver_tu6() {
    boot_and_load();
    assert_eq!(netinspect::plumber_calls(), 2, "the tun plumbers only");
    for family in [AF_INET, AF_INET6] {
        assert!(netinspect::is_plumber_registered(family, IFNET_FAMILY_TUN));
        assert!(netinspect::is_plumber_registered(
            family,
            IFNET_FAMILY_ETHERNET
        ));
    }
    let fd = open_tap(6);
    assert!(netinspect::interface("tap6").unwrap().protocols.is_empty());
    configure_tap("tap6", Some(fd), TAP_IP);
    assert_eq!(netinspect::interface("tap6").unwrap().protocols, [AF_INET]);
    let req = arp_request_from_peer(TAP_IP);
    assert_eq!(syscalls::write(fd, &req), Ok(req.len()));
    assert_eq!(
        netinspect::frames_in("tap6").pop().unwrap().demux,
        Ok(AF_INET),
        "0x0806 was added by XNU's ether_attach_inet"
    );
    assert_eq!(
        parse_arp(&read_frame(fd)).map(|a| a.op),
        Some(ARPOP_REPLY),
        "the stack's ARP answered"
    );
    assert_eq!(netinspect::plumber_calls(), 2, "none registered since");
    syscalls::close(fd).unwrap();
    unload_clean();
    assert!(!netinspect::is_plumber_registered(
        AF_INET,
        IFNET_FAMILY_TUN
    ));
    assert!(netinspect::is_plumber_registered(
        AF_INET,
        IFNET_FAMILY_ETHERNET
    ));
}

/// TA-1: each unit's MAC is made with its interface: unicast, locally administered, last byte
/// the unit, bytes from a random UUID's first six (whose fixed version and variant bits are in
/// bytes 6 and 8: the high nibble of byte 0 and the top bits of byte 2 vary across units).
#[test]
fn each_unit_gets_a_random_local_unicast_mac_ending_in_its_number_ta1() {
    boot_and_load();
    let fds: Vec<_> = (0..16).map(open_tap).collect();
    let macs: Vec<[u8; 6]> = (0..16).map(|n| mac_of(&tap_name(n))).collect();
    for (n, (mac, &fd)) in macs.iter().zip(&fds).enumerate() {
        assert_eq!(mac[0] & 0x01, 0, "tap{n}: unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "tap{n}: locally administered");
        assert_eq!(mac[5], n as u8, "tap{n}: last byte the unit");
        assert_eq!(
            mac_register(fd),
            *mac,
            "TI-1: the register starts as the MAC"
        );
    }
    let distinct: std::collections::BTreeSet<_> = macs.iter().collect();
    assert_eq!(distinct.len(), 16, "units of one load never collide");
    let nibbles: std::collections::BTreeSet<u8> = macs.iter().map(|m| m[0] >> 4).collect();
    let top_bits: std::collections::BTreeSet<u8> = macs.iter().map(|m| m[2] >> 6).collect();
    assert!(
        nibbles.len() > 1,
        "byte 0 random (not UUID byte 6): {macs:02x?}"
    );
    assert!(
        top_bits.len() > 1,
        "byte 2 random (not UUID byte 8): {macs:02x?}"
    );
    for fd in fds {
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// TA-2, TA-3: the MAC stays across closes, reopens, down/up and MTU changes;
/// `SIOCGIFLLADDR` (no driver code) reports it, and the new one after `SIOCSIFLLADDR`, which
/// then stays in turn.
#[test]
fn the_mac_is_stable_until_changed_ta2_ta3() {
    boot_and_load();
    let fd = open_tap(3);
    let mac = mac_of("tap3");
    assert_eq!(link::get_lladdr("tap3"), Ok(mac.to_vec()), "TA-3");
    syscalls::close(fd).unwrap();
    for round in 0..4 {
        let fd = open_tap(3);
        stack::set_flags("tap3", IFF_UP, 0).unwrap();
        stack::set_mtu("tap3", 1400 + round).unwrap();
        stack::set_flags("tap3", 0, IFF_UP).unwrap();
        assert_eq!(mac_of("tap3"), mac, "round {round}: TA-2");
        assert_eq!(mac_register(fd), mac, "round {round}: TI-1");
        syscalls::close(fd).unwrap();
        assert_eq!(
            link::get_lladdr("tap3"),
            Ok(mac.to_vec()),
            "TA-3 while closed"
        );
    }
    let new = [0x06, 1, 2, 3, 4, 5];
    link::set_lladdr("tap3", &new).unwrap();
    assert_eq!(
        link::get_lladdr("tap3"),
        Ok(new.to_vec()),
        "TA-3 after TA-4"
    );
    let fd = open_tap(3);
    assert_eq!(mac_of("tap3"), new, "TA-2: the changed MAC stays too");
    assert_eq!(mac_register(fd), new);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TA-4: `SIOCSIFLLADDR` changes the MAC at any time; XNU posts
/// `KEV_DL_LINK_ADDRESS_CHANGED` and, with an IPv4 address on tapN, sends a gratuitous ARP
/// from the new MAC through the driver's output before the ioctl returns (the driver holds no
/// lock there: the simulator panics on a recursive unit mutex). Demux and framer use the new
/// MAC from then on. A malformed request is `EINVAL` and changes nothing.
#[test]
fn sifllladdr_changes_the_mac_and_the_stack_announces_it_ta4() {
    boot_and_load();
    let fd = open_tap(1);
    configure_tap("tap1", Some(fd), TAP_IP);
    let old = mac_of("tap1");
    let new = [0x0a, 0x11, 0x22, 0x33, 0x44, 0x55];
    let events = netinspect::events("tap1").len();
    assert_eq!(link::set_lladdr("tap1", &new), Ok(()));
    assert_eq!(mac_of("tap1"), new);
    let posted = netinspect::events("tap1");
    assert_eq!(posted.len(), events + 1);
    assert_eq!(posted[events].event_code, KEV_DL_LINK_ADDRESS_CHANGED);
    assert!(
        queued(fd) > 0,
        "the announcement is queued before the ioctl returned"
    );
    let Arp {
        dst,
        src,
        op,
        sha,
        spa,
        tpa,
    } = parse_arp(&read_frame(fd)).expect("an ARP frame");
    assert_eq!((dst, src, op, sha), (BROADCAST, new, ARPOP_REQUEST, new));
    assert_eq!((spa, tpa), (TAP_IP, TAP_IP), "gratuitous");
    // Frames to the old MAC are now another station's (M_PROMISC); the framer uses the new.
    let f = ipv4_frame(old, b"old");
    syscalls::write(fd, &f).unwrap();
    let seen = netinspect::frames_in("tap1").pop().unwrap();
    assert_ne!(seen.flags & netinspect::M_PROMISC, 0);
    link::arp_set("tap1", PEER_IP, PEER_MAC).unwrap();
    stack::output("tap1", AF_INET, &sockaddr_in(PEER_IP), &[0x45; 20]).unwrap();
    assert_eq!(&read_frame(fd)[6..12], &new);
    // Malformed: multicast, all zero, another family, another length.
    let bad: [(u8, u8, [u8; 6]); 4] = [
        (6, AF_LINK as u8, [0x01, 0, 0x5e, 0, 0, 1]),
        (6, AF_LINK as u8, [0; 6]),
        (6, AF_INET as u8, [0x02, 9, 9, 9, 9, 9]),
        (8, AF_LINK as u8, [0x02, 9, 9, 9, 9, 9]),
    ];
    for (len, family, mac) in bad {
        assert_eq!(
            link::set_lladdr_sockaddr("tap1", len, family, &mac),
            Err(Errno::EINVAL),
            "{len} {family} {mac:02x?}"
        );
        assert_eq!(mac_of("tap1"), new, "unchanged");
    }
    // While down and while closed too.
    stack::set_flags("tap1", 0, IFF_UP).unwrap();
    link::set_lladdr("tap1", &[0x02, 7, 7, 7, 7, 7]).unwrap();
    syscalls::close(fd).unwrap();
    let closed = [0x02, 8, 8, 8, 8, 8];
    assert_eq!(link::set_lladdr("tap1", &closed), Ok(()));
    assert_eq!(mac_of("tap1"), closed);
    unload_clean();
}

/// TA-5: close keeps the current MAC (also one set by TA-4); unload forgets it: after a
/// reload the unit draws a new one.
#[test]
fn close_keeps_the_mac_and_unload_forgets_it_ta5() {
    boot_and_load();
    let fd = open_tap(8);
    let first = mac_of("tap8");
    syscalls::close(fd).unwrap();
    let fd = open_tap(8);
    assert_eq!(mac_register(fd), first);
    let set = [0x02, 0xab, 0xab, 0xab, 0xab, 0x08];
    link::set_lladdr("tap8", &set).unwrap();
    syscalls::close(fd).unwrap();
    assert_eq!(mac_of("tap8"), set, "kept by close");
    unload_clean();
    load();
    let fd = open_tap(8);
    let second = mac_of("tap8");
    assert_ne!(second, first, "a new draw");
    assert_ne!(second, set);
    assert_eq!(second[5], 8);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TL-1: start makes tun's cdevsw and nodes, then tap's (the driver names a failing node in
/// the log: the 17th node made is tap0); a failing tap `cdevsw_add`, or any tap node, undoes
/// both kinds; an existing `/dev/tap3` (another tap kext) fails the start and stays.
#[test]
fn start_does_tun_then_tap_and_any_failure_undoes_both_tl1() {
    boot();
    fail_nth(Fault::CdevswAdd, 2);
    match xnu_sim::kextload(kmod()) {
        Err(KextError::StartFailed(leaks)) => assert!(leaks.is_clean(), "{leaks:?}"),
        r => panic!("the tap cdevsw_add failing: {r:?}"),
    }
    assert!(devices::node_names().is_empty(), "tun's nodes undone too");
    assert!(xnu_sim::log::log_lines()
        .iter()
        .any(|l| l.contains("no free character-device major for tap")));
    for k in 1..=32u64 {
        xnu_sim::log::clear_log();
        fail_nth(Fault::DevfsMakeNode, k);
        match xnu_sim::kextload(kmod()) {
            Err(KextError::StartFailed(leaks)) => assert!(leaks.is_clean(), "{k}: {leaks:?}"),
            r => panic!("node {k} failing: {r:?}"),
        }
        clear_faults();
        assert!(devices::node_names().is_empty(), "node {k}");
        let (kind, unit) = if k <= 16 {
            ("tun", k - 1)
        } else {
            ("tap", k - 17)
        };
        let named = format!("devfs_make_node {kind}{unit} failed");
        assert!(
            xnu_sim::log::log_lines().iter().any(|l| l.contains(&named)),
            "node {k} is {kind}{unit}: {:?}",
            xnu_sim::log::log_lines()
        );
    }
    load();
    assert!(netinspect::interface("tap0").is_none(), "no ifnet at start");
    unload_clean();
    // Another tap kext's node, on its own major.
    devices::mknod("tap3", makedev(60, 3), 0o600);
    match xnu_sim::kextload(kmod()) {
        Err(KextError::StartFailed(leaks)) => assert!(leaks.is_clean(), "{leaks:?}"),
        r => panic!("/dev/tap3 taken: {r:?}"),
    }
    assert_eq!(
        devices::node_names(),
        ["tap3"],
        "the other kext's node stays"
    );
}

/// A round trip on `tapN`, open for the call: a frame written reaches the stack, a raw output
/// is read back.
fn tap_round_trip(n: usize) {
    let fd = open_tap(n);
    let name = tap_name(n);
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    let f = frame(mac_of(&name), PEER_MAC, 0x88b5, &[n as u8; 50]);
    assert_eq!(syscalls::write(fd, &f), Ok(f.len()));
    assert_eq!(netinspect::frames_in(&name).pop().unwrap().bytes, f);
    stack::output_raw(&name, &f).unwrap();
    assert_eq!(read_frame(fd), f);
    syscalls::close(fd).unwrap();
}

/// TL-2: one gate covers both kinds: unload is refused, with nothing changed, while only a tap
/// unit is open, while only a tun unit is open, and while a thread is inside the tap driver
/// after its unit was closed; a refused attempt wakes a tap reader, which sleeps again and
/// gets its frame.
#[test]
fn unload_refuses_while_any_tun_or_tap_is_open_or_busy_tl2() {
    boot_and_load();
    let fd = open_tap(7);
    configure_tap("tap7", Some(fd), TAP_IP);
    let before = netinspect::interface("tap7").unwrap();
    let nodes = devices::node_names();
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "a tap open");
    let after = netinspect::interface("tap7").unwrap();
    assert_eq!(devices::node_names(), nodes);
    assert_eq!(
        (after.index, after.flags, after.lladdr, after.addresses),
        (before.index, before.flags, before.lladdr, before.addresses)
    );
    // A reader asleep on tap7 is woken by the attempt, sleeps again, and is served.
    let reader = proc::spawn_thread(proc::INIT_PID, move || read_frame(fd));
    wait_for_sleepers(1);
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy));
    wait_for_sleepers(1);
    let f = frame(PEER_MAC, mac_of("tap7"), 0x88b5, b"served");
    stack::output_raw("tap7", &f).unwrap();
    assert_eq!(reader.join(), f);
    syscalls::close(fd).unwrap();
    // Only a tun unit open.
    let tun = open_unit(7);
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy), "a tun open");
    syscalls::close(tun).unwrap();
    // A thread inside tap7's write (in ifnet_input) after the unit was closed under it.
    let fd = open_tap(7);
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let hook: netinspect::FrameInHook = Arc::new(move |_frame| {
        syscalls::close(fd).unwrap();
        inside_tx.send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
    });
    netinspect::set_frame_in_hook("tap7", Some(hook));
    stack::set_flags("tap7", IFF_UP, 0).unwrap();
    let f = ipv4_frame(mac_of("tap7"), b"busy");
    let len = f.len();
    let writer = proc::spawn_thread(proc::INIT_PID, move || syscalls::write(fd, &f));
    inside_rx.recv().unwrap();
    assert_eq!(if_status("tap7"), "\tclosed\n", "no unit is open now");
    assert_eq!(
        xnu_sim::kextunload(),
        Err(KextError::Busy),
        "a tap call inside"
    );
    release_tx.send(()).unwrap();
    assert_eq!(writer.join(), Ok(len), "TW8: the write completes");
    netinspect::set_frame_in_hook("tap7", None);
    tap_round_trip(7);
    unload_clean();
}

/// TL-3: a committed unload with both kinds' interfaces: every node and both cdevsw entries
/// go, addresses an admin left on a closed tap are removed, every tap and tun interface is
/// detached and released, nothing leaks. A failing `ifnet_detach` of a tap keeps it attached
/// and the driver loaded and working.
#[test]
fn committed_unload_detaches_both_kinds_tl3() {
    boot_and_load();
    for n in 0..16 {
        tap_round_trip(n);
        syscalls::close(open_unit(n)).unwrap();
    }
    stack::add_address("tap3", AF_INET, &[192, 168, 3, 1]).unwrap();
    stack::add_address("tap3", AF_INET6, &TAP_IP6).unwrap();
    unload_clean();
    assert!(devices::node_names().is_empty());
    for n in 0..16 {
        assert!(netinspect::interface(&tap_name(n)).is_none(), "tap{n}");
        assert!(
            netinspect::interface(&format!("tun{n}")).is_none(),
            "tun{n}"
        );
    }
    let removed: Vec<_> = socket::removed_addresses()
        .into_iter()
        .filter(|(name, _, _)| name == "tap3")
        .collect();
    assert_eq!(
        removed,
        [
            ("tap3".to_string(), AF_INET, vec![192, 168, 3, 1]),
            ("tap3".to_string(), AF_INET6, TAP_IP6.to_vec())
        ]
    );
    // Only taps this time, so the first detach is a tap's.
    load();
    tap_round_trip(2);
    let index = netinspect::if_nametoindex("tap2");
    fail_nth(Fault::IfnetDetach, 1);
    assert_eq!(xnu_sim::kextunload(), Err(KextError::Busy));
    clear_faults();
    assert_eq!(
        netinspect::interface("tap2").unwrap().state,
        netinspect::IfState::Attached
    );
    assert_eq!(netinspect::if_nametoindex("tap2"), index);
    assert_eq!(devices::node_names().len(), 32, "nodes are back");
    tap_round_trip(2);
    unload_clean();
}
