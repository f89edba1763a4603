//! The interface side of tapN (docs/tap-contract.md sections 8, 10, 11, 12): XNU's Ethernet
//! demux and plumbing (TN-1, TN-2), multicast and promiscuous mode (TN-3, TN-4), flags and the
//! MTU ioctls (TN-5, TN-6), link events and media (TK-1), and close (TC-1..TC-5).

use driver_tests::tap::*;
use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::{
    FIONBIO, SIOCADDMULTI, SIOCDELMULTI, SIOCSIFADDR, SIOCSIFALTMTU, TAPSIFINFO, TIOCGPGRP,
};
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, ioctl_int, O_ASYNC, O_NONBLOCK};
use xnu_sim::{link, netinspect, proc, socket, stack, Errno};

/// `IFF_DEBUG`, `IFF_LINK0` (bsd/net/if.h): flags `ifconfig tapN debug link0` sets.
const IFF_DEBUG: u16 = 0x4;
const IFF_LINK0: u16 = 0x1000;
/// `IFM_ETHER | IFM_1000_T | IFM_FDX`.
const MEDIA_1000_T_FDX: i32 = 0x0010_0030;
/// `SIOCGIFMEDIA32` (40-byte `ifmediareq`).
const SIOCGIFMEDIA32: u32 = 0xc028_6938;
/// `SIOCGIFMEDIA64` (44-byte `ifmediareq64`, `pack(4)`).
const SIOCGIFMEDIA64: u32 = 0xc02c_6938;

fn flags(name: &str) -> u16 {
    netinspect::interface(name).unwrap().flags
}

/// The last frame `ifnet_input` saw on `name`: (demux answer, link flags).
fn last_in(name: &str) -> (Result<u32, Errno>, u32) {
    let f = netinspect::frames_in(name)
        .pop()
        .expect("a frame reached ifnet_input");
    (f.demux, f.flags)
}

/// TN-1: XNU's `ether_demux` decides: IPv4/ARP/IPv6 only once plumbed (`ENOENT` before, the
/// stack frees the frame); broadcast and group destinations are `M_BCAST`/`M_MCAST` and
/// delivered by type; another station's unicast is `M_PROMISC`, tapped, then dropped by
/// `dlil_input`; a VLAN tag with id 0 is removed, another id answers `PF_VLAN`; an 802.3
/// length finds no SAP/SNAP protocol.
#[test]
fn ether_demux_decides_what_written_frames_become_tn1() {
    boot_and_load();
    let fd = open_tap(0);
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    let mac = mac_of("tap0");
    for f in [
        ipv4_frame(mac, b"x"),
        arp_request_from_peer(TAP_IP),
        ipv6_frame(mac, b"x"),
    ] {
        syscalls::write(fd, &f).unwrap();
        assert_eq!(last_in("tap0").0, Err(Errno::ENOENT), "not plumbed yet");
    }
    assert_eq!(netinspect::stack_drops("tap0"), 3);
    configure_tap("tap0", Some(fd), TAP_IP);
    stack::add_address("tap0", AF_INET6, &TAP_IP6).unwrap();
    drain(fd);
    let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let cases: [(Vec<u8>, Result<u32, Errno>, u32); 7] = [
        (ipv4_frame(mac, b"unicast"), Ok(AF_INET), 0),
        (ipv6_frame(mac, b"unicast"), Ok(AF_INET6), 0),
        (
            ipv4_frame(BROADCAST, b"bcast"),
            Ok(AF_INET),
            netinspect::M_BCAST,
        ),
        (
            ipv4_frame(group, b"mcast"),
            Ok(AF_INET),
            netinspect::M_MCAST,
        ),
        (
            ipv4_frame(OTHER_MAC, b"promisc"),
            Ok(AF_INET),
            netinspect::M_PROMISC,
        ),
        (
            tagged_frame(
                mac,
                PEER_MAC,
                0,
                ETHERTYPE_IP,
                &ipv4_udp(PEER_IP, TAP_IP, b"v0"),
            ),
            Ok(AF_INET),
            0,
        ),
        (
            tagged_frame(mac, PEER_MAC, 9, ETHERTYPE_IP, &[0x45; 30]),
            Ok(netinspect::PF_VLAN),
            0,
        ),
    ];
    let taps = netinspect::tap_count("tap0");
    for (k, (f, demux, link_flags)) in cases.iter().enumerate() {
        syscalls::write(fd, f).unwrap();
        assert_eq!(last_in("tap0"), (*demux, *link_flags), "case {k}");
    }
    assert_eq!(
        netinspect::tap_count("tap0"),
        taps + 7,
        "BPF saw all, M_PROMISC too"
    );
    let received = netinspect::take_received("tap0");
    assert_eq!(
        received.len(),
        5,
        "all but the promiscuous and the PF_VLAN frame"
    );
    syscalls::write(fd, &frame(mac, PEER_MAC, 100, &[0x42; 100])).unwrap();
    assert_eq!(
        last_in("tap0").0,
        Err(Errno::ENOENT),
        "802.3: no SAP/SNAP attached"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TN-2: the first IPv4 (IPv6) address plumbs PF_INET (PF_INET6) through XNU's plumber, which
/// adds its types and marks tapN up and running; the IPv6 set-up runs (the plumber said 0).
#[test]
fn the_first_address_of_a_family_plumbs_it_and_marks_up_tn2() {
    boot_and_load();
    let fd = open_tap(1);
    assert_eq!(flags("tap1"), 0x8802, "open changed nothing");
    stack::add_address("tap1", AF_INET6, &TAP_IP6).unwrap();
    let i = netinspect::interface("tap1").unwrap();
    assert_eq!(i.protocols, [AF_INET6]);
    assert_eq!(i.flags & (IFF_UP | IFF_RUNNING), IFF_UP | IFF_RUNNING);
    assert_eq!(netinspect::inet6_setups("tap1"), 1);
    stack::add_address("tap1", AF_INET, &TAP_IP).unwrap();
    assert_eq!(
        netinspect::interface("tap1").unwrap().protocols,
        [AF_INET, AF_INET6]
    );
    drain(fd);
    let mac = mac_of("tap1");
    for (f, family) in [
        (ipv6_frame(mac, b"6"), AF_INET6),
        (ipv4_frame(mac, b"4"), AF_INET),
    ] {
        syscalls::write(fd, &f).unwrap();
        assert_eq!(last_in("tap1").0, Ok(family));
    }
    assert_eq!(
        netinspect::plumber_calls(),
        2,
        "the driver registered none for tap"
    );
    syscalls::close(fd).unwrap();
    assert_eq!(
        netinspect::interface("tap1").unwrap().protocols,
        [AF_INET, AF_INET6],
        "TC-3: plumbed protocols stay"
    );
    unload_clean();
}

/// TN-3: `SIOCADDMULTI`/`SIOCDELMULTI` answer 0 (argument or NULL) and change nothing; there
/// is no filter: frames to any group pass without a join.
#[test]
fn multicast_joins_succeed_and_every_group_passes_tn3() {
    boot_and_load();
    let fd = open_tap(2);
    configure_tap("tap2", Some(fd), TAP_IP);
    stack::add_address("tap2", AF_INET6, &TAP_IP6).unwrap();
    let before = netinspect::interface("tap2").unwrap();
    let mut req = [0u8; 32];
    req[..4].copy_from_slice(b"tap2");
    req[16..24].copy_from_slice(&[20, AF_LINK as u8, 0, 0, 0, 0, 6, 0]);
    req[24..30].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 0xfb]);
    for cmd in [SIOCADDMULTI, SIOCDELMULTI] {
        assert_eq!(stack::ioctl("tap2", cmd, &mut req), Ok(()));
        assert_eq!(stack::ioctl("tap2", cmd, &mut []), Ok(()), "NULL");
    }
    let after = netinspect::interface("tap2").unwrap();
    assert_eq!((after.flags, after.mtu), (before.flags, before.mtu));
    let v6_group = [0x33, 0x33, 0x12, 0x34, 0x56, 0x78];
    let v4_group = [0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa];
    for (f, family) in [
        (ipv6_frame(v6_group, b"g"), AF_INET6),
        (ipv4_frame(v4_group, b"g"), AF_INET),
    ] {
        syscalls::write(fd, &f).unwrap();
        assert_eq!(last_in("tap2"), (Ok(family), netinspect::M_MCAST));
    }
    assert_eq!(
        netinspect::take_received("tap2").len(),
        2,
        "delivered, never joined"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TN-4: promiscuous requests (BPF, a bridge) set `IFF_PROMISC`, reference counted; while up
/// the change reaches the driver as a NULL `SIOCSIFFLAGS`, which it answers 0 (an error would
/// make XNU revert the flag); `IFF_RUNNING` is untouched.
#[test]
fn promiscuous_mode_is_accepted_while_down_and_up_tn4() {
    boot_and_load();
    let fd = open_tap(3);
    assert_eq!(link::set_promiscuous("tap3", true), Ok(()), "down");
    assert_eq!(flags("tap3") & IFF_PROMISC, IFF_PROMISC);
    assert_eq!(link::set_promiscuous("tap3", false), Ok(()));
    stack::set_flags("tap3", IFF_UP, 0).unwrap();
    assert_eq!(
        link::set_promiscuous("tap3", true),
        Ok(()),
        "up: SIOCSIFFLAGS(NULL) → 0"
    );
    assert_eq!(
        link::bridge_add_member("tap3"),
        Ok(()),
        "ifconfig bridge0 addm tap3"
    );
    let i = netinspect::interface("tap3").unwrap();
    assert_eq!(i.promisc_count, 2);
    assert_eq!(i.flags, 0x8802 | IFF_UP | IFF_RUNNING | IFF_PROMISC);
    assert_eq!(netinspect::bridge_media_active("tap3"), Some(true));
    assert_eq!(link::set_promiscuous("tap3", false), Ok(()));
    assert_eq!(link::bridge_remove_member("tap3"), Ok(()));
    assert_eq!(
        flags("tap3"),
        0x8802 | IFF_UP | IFF_RUNNING,
        "cleared, while up"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TN-5: address ioctls (NULL argument too) set `IFF_UP|IFF_RUNNING`; on every `SIOCSIFFLAGS`
/// (NULL too) `IFF_RUNNING` follows `IFF_UP`, so `ifconfig tapN up` alone runs and the stack's
/// pre-output works again; other flags are kept as set; `IFF_UP` is read live.
#[test]
fn running_follows_up_tn5() {
    boot_and_load();
    let fd = open_tap(4);
    for cmd in [
        stack::cmd::SIOCSIFADDR,
        stack::cmd::SIOCAIFADDR,
        stack::cmd::SIOCSIFDSTADDR,
    ] {
        stack::set_flags("tap4", 0, IFF_UP | IFF_RUNNING).unwrap();
        assert_eq!(stack::ioctl("tap4", cmd, &mut []), Ok(()));
        assert_eq!(
            flags("tap4") & (IFF_UP | IFF_RUNNING),
            IFF_UP | IFF_RUNNING,
            "{cmd:#x}"
        );
    }
    stack::set_flags("tap4", 0, IFF_UP).unwrap();
    assert_eq!(flags("tap4") & IFF_RUNNING, 0, "down: not running");
    stack::set_flags("tap4", IFF_UP, 0).unwrap();
    assert_eq!(
        flags("tap4") & IFF_RUNNING,
        IFF_RUNNING,
        "ifconfig tap4 up alone"
    );
    stack::set_flags("tap4", 0, IFF_RUNNING).unwrap();
    assert_eq!(
        flags("tap4") & IFF_RUNNING,
        IFF_RUNNING,
        "follows UP, not the request"
    );
    stack::set_flags("tap4", IFF_NOARP | IFF_LINK0, 0).unwrap();
    assert_eq!(
        flags("tap4") & (IFF_NOARP | IFF_LINK0),
        IFF_NOARP | IFF_LINK0
    );
    // The stack's own NULL SIOCSIFFLAGS when the last protocol goes (dlil.c if_proto_free).
    configure_tap("tap4", Some(fd), TAP_IP);
    stack::protocol_detach("tap4", AF_INET).unwrap();
    assert_eq!(
        flags("tap4") & (IFF_UP | IFF_RUNNING),
        0,
        "NULL SIOCSIFFLAGS, down"
    );
    let f = ipv4_frame(mac_of("tap4"), b"down");
    syscalls::write(fd, &f).unwrap();
    assert_eq!(if_stats("tap4").iqdrops, 1, "IFF_UP read live: TW7");
    configure_tap("tap4", Some(fd), TAP_IP);
    link::arp_set("tap4", PEER_IP, PEER_MAC).unwrap();
    stack::set_flags("tap4", 0, IFF_UP).unwrap();
    stack::set_flags("tap4", IFF_UP, 0).unwrap();
    let p = ipv4_udp(TAP_IP, PEER_IP, b"up again");
    assert_eq!(
        stack::output("tap4", AF_INET, &sockaddr_in(PEER_IP), &p),
        Ok(())
    );
    assert_eq!(read_frame(fd)[14..], p[..]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TN-6, §10: `SIOCGIFDEVMTU` answers {current, 72, 65517} (so `vlan` configuration over tapN
/// succeeds); `SIOCSIFALTMTU` accepts 72..65517 and changes nothing; `SIOCSIFMTU` sets
/// 72..65517 and refuses anything else with the MTU unchanged.
#[test]
fn vlan_parent_ioctls_and_the_mtu_range_tn6() {
    boot_and_load();
    let fd = open_tap(5);
    let dm = link::vlan_configure("tap5").unwrap();
    assert_eq!((dm.current, dm.min, dm.max), (1500, 72, 65517));
    stack::set_mtu("tap5", 9000).unwrap();
    assert_eq!(link::vlan_configure("tap5").unwrap().current, 9000);
    let altmtu = |mtu: i32| {
        let mut req = [0u8; 32];
        req[16..20].copy_from_slice(&mtu.to_ne_bytes());
        stack::ioctl("tap5", SIOCSIFALTMTU, &mut req)
    };
    for ok in [72, 1496, 65513, 65517] {
        assert_eq!(altmtu(ok), Ok(()), "{ok}");
    }
    for bad in [71, 65518, 0, -1] {
        assert_eq!(altmtu(bad), Err(Errno::EINVAL), "{bad}");
    }
    assert_eq!(
        stack::ioctl("tap5", SIOCSIFALTMTU, &mut []),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        netinspect::interface("tap5").unwrap().mtu,
        9000,
        "ALTMTU changes nothing"
    );
    for ok in [72, 65517] {
        assert_eq!(stack::set_mtu("tap5", ok), Ok(()));
    }
    for bad in [71, 65518, 65535] {
        assert_eq!(stack::set_mtu("tap5", bad), Err(Errno::EINVAL), "{bad}");
        assert_eq!(netinspect::interface("tap5").unwrap().mtu, 65517);
    }
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TK-1, §10 media: open posts `KEV_DL_LINK_ON` and close `KEV_DL_LINK_OFF`, each a 48-byte
/// message whose data is {`IFNET_FAMILY_ETHERNET`, unit, "tap"}; media reads 1000baseT FDX,
/// active only while open; a bridge reading the media inside the event (synchronously) sees
/// the new state, so the driver posts after the change and with no lock held.
#[test]
fn link_events_and_media_follow_open_and_close_tk1() {
    boot_and_load();
    let fd = open_tap(6);
    syscalls::close(fd).unwrap();
    let m = link::media("tap6").unwrap();
    assert_eq!(
        (m.current, m.mask, m.active, m.count),
        (MEDIA_1000_T_FDX, 0, MEDIA_1000_T_FDX, 1)
    );
    assert_eq!(m.status, 1, "IFM_AVALID only while closed");
    link::bridge_add_member("tap6").unwrap();
    assert_eq!(netinspect::bridge_media_active("tap6"), Some(false));
    let mut expected_data = Vec::new();
    expected_data.extend_from_slice(&IFNET_FAMILY_ETHERNET.to_ne_bytes());
    expected_data.extend_from_slice(&6u32.to_ne_bytes());
    expected_data.extend_from_slice(b"tap\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let before = netinspect::events("tap6").len();
    let fd = open_tap(6);
    assert_eq!(
        netinspect::bridge_media_active("tap6"),
        Some(true),
        "read inside LINK_ON"
    );
    assert_eq!(
        link::media("tap6").unwrap().status,
        3,
        "IFM_AVALID|IFM_ACTIVE"
    );
    let mut req = vec![0u8; 40];
    stack::ioctl("tap6", SIOCGIFMEDIA32, &mut req).unwrap();
    assert_eq!(&req[24..28], &3i32.to_ne_bytes(), "SIOCGIFMEDIA32 too");
    syscalls::close(fd).unwrap();
    assert_eq!(
        netinspect::bridge_media_active("tap6"),
        Some(false),
        "read inside LINK_OFF"
    );
    let events = netinspect::events("tap6");
    let codes: Vec<u32> = events[before..].iter().map(|e| e.event_code).collect();
    assert_eq!(codes, [KEV_DL_LINK_ON, KEV_DL_LINK_OFF]);
    for e in &events[before..] {
        assert_eq!(
            (e.vendor_code, e.kev_class, e.kev_subclass),
            (KEV_VENDOR_APPLE, KEV_NETWORK_CLASS, KEV_DL_SUBCLASS)
        );
        assert_eq!(
            e.data, expected_data,
            "total_size 48: 24-byte header, net_event_data"
        );
    }
    unload_clean();
}

/// TC-1, TC-5: close marks the unit not open (a revoked descriptor's read, write and ioctl are
/// `ENXIO`, output `EHOSTDOWN`), purges the queue, posts `KEV_DL_LINK_OFF`, wakes a sleeping
/// reader (`ENXIO`) and a parked selector, and keeps the interface and its counters.
#[test]
fn close_stops_io_purges_and_wakes_everyone_tc1_tc5() {
    boot_and_load();
    let fd = open_tap(7);
    configure_tap("tap7", Some(fd), TAP_IP);
    let f = frame(PEER_MAC, mac_of("tap7"), 0x88b5, &[1; 50]);
    stack::output_raw("tap7", &f).unwrap();
    stack::output_raw("tap7", &f).unwrap();
    assert!(xnu_sim::mbuf::live_mbufs() > 0);
    let index = netinspect::if_nametoindex("tap7");
    let stats = if_stats("tap7");
    let counters = tap_counters(7);
    syscalls::revoke("/dev/tap7").unwrap();
    assert_eq!(xnu_sim::mbuf::live_mbufs(), 0, "TC-1: purged");
    assert_eq!(syscalls::read(fd, &mut [0u8; 64]), Err(Errno::ENXIO));
    assert_eq!(syscalls::write(fd, &f), Err(Errno::ENXIO));
    assert_eq!(ioctl_int(fd, FIONBIO, 1), Err(Errno::ENXIO));
    stack::set_flags("tap7", IFF_UP, 0).unwrap();
    assert_eq!(stack::output_raw("tap7", &f), Err(Errno::EHOSTDOWN));
    syscalls::close(fd).unwrap();
    assert_eq!(
        netinspect::if_nametoindex("tap7"),
        index,
        "TC-5: ifnet kept"
    );
    assert_eq!(
        tap_counters(7).opackets,
        counters.opackets,
        "TC-5: counters kept"
    );
    assert_eq!(if_stats("tap7").opackets, stats.opackets);
    let fd = open_tap(7);
    assert_eq!(queued(fd), 0);
    let reader = proc::spawn_thread(proc::INIT_PID, move || syscalls::read(fd, &mut [0u8; 64]));
    wait_for_sleepers(1);
    let fd2 = syscalls::dup(fd).unwrap();
    let selector = proc::spawn_thread(proc::INIT_PID, move || {
        syscalls::select(&[fd2], &[], Some(Duration::from_secs(30)))
    });
    wait_for_select_record();
    let events = netinspect::events("tap7").len();
    syscalls::revoke("/dev/tap7").unwrap();
    assert_eq!(reader.join(), Err(Errno::ENXIO), "TC-5: woken");
    assert_eq!(selector.join(), Ok((vec![fd2], vec![])), "TC-5: selwakeup");
    assert_eq!(
        netinspect::events("tap7")[events].event_code,
        KEV_DL_LINK_OFF
    );
    syscalls::close(fd2).unwrap();
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TC-2, TC-3, TC-4 and section 12's test: after close tapN has the same MAC, no IPv4 or IPv6
/// address (link-local included; plumbed protocols stay), flags 0x8802 plus the stack's
/// `IFF_PROMISC`/`IFF_ALLMULTI` (every other edit undone), MTU 1500, baudrate 0, status
/// `closed`; the next open finds blocking I/O, no async, no owner, and the MAC register back
/// at the MAC.
#[test]
fn close_restores_the_creation_state_but_keeps_the_mac_tc2_tc3_tc4() {
    boot_and_load();
    let fd = open_tap(8);
    let mac = mac_of("tap8");
    configure_tap("tap8", Some(fd), TAP_IP);
    stack::add_address("tap8", AF_INET, &[10, 9, 8, 8]).unwrap();
    stack::add_address("tap8", AF_INET6, &TAP_IP6).unwrap();
    stack::add_address("tap8", AF_INET6, &V6_LINK_LOCAL).unwrap();
    link::set_promiscuous("tap8", true).unwrap();
    stack::set_flags(
        "tap8",
        IFF_ALLMULTI | IFF_NOARP | IFF_DEBUG | IFF_LINK0,
        IFF_MULTICAST,
    )
    .unwrap();
    stack::set_mtu("tap8", 9000).unwrap();
    let mut info = [0u8; 8];
    info[..4].copy_from_slice(&100_000_000i32.to_ne_bytes());
    info[4..6].copy_from_slice(&1400u16.to_ne_bytes());
    info[6] = IFT_ETHER as u8;
    syscalls::ioctl(fd, TAPSIFINFO, &mut info).unwrap();
    syscalls::fcntl_setfl(fd, O_NONBLOCK | O_ASYNC).unwrap();
    syscalls::ioctl_direct(fd, FIONBIO, &mut 1i32.to_ne_bytes()).unwrap();
    syscalls::fcntl_setown(fd, proc::INIT_PID).unwrap();
    let mut reg = [0u8; 32];
    reg[..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    syscalls::ioctl(fd, SIOCSIFADDR, &mut reg).unwrap();
    syscalls::close(fd).unwrap();
    let i = netinspect::interface("tap8").unwrap();
    assert_eq!(i.lladdr, mac, "TC-4: the MAC is kept");
    assert!(i.addresses.is_empty(), "TC-3: {:?}", i.addresses);
    assert_eq!(i.protocols, [AF_INET, AF_INET6], "TC-3: protocols stay");
    let removed = socket::removed_addresses();
    assert_eq!(
        removed.len(),
        4,
        "TC-3: through in-kernel sockets: {removed:?}"
    );
    assert_eq!(
        i.flags,
        0x8802 | IFF_PROMISC | IFF_ALLMULTI,
        "TC-2, TC-4: {:#x}",
        i.flags
    );
    assert_eq!((i.mtu, i.baudrate), (1500, 0), "TC-4");
    assert_eq!(if_status("tap8"), "\tclosed\n", "TC-4: no pid");
    let fd = open_tap(8);
    assert_eq!(
        mac_register(fd),
        mac,
        "TC-4: the register was cleared, then set at open"
    );
    assert_eq!(ioctl_int(fd, TIOCGPGRP, 0), Ok(0), "TC-4: no owner");
    let reader = proc::spawn_thread(proc::INIT_PID, move || read_frame(fd));
    wait_for_sleepers(1);
    stack::set_flags("tap8", IFF_UP, 0).unwrap();
    let f = frame(PEER_MAC, mac, 0x88b5, b"blocking again");
    stack::output_raw("tap8", &f).unwrap();
    assert_eq!(reader.join(), f, "TC-4: the unit's FIONBIO was cleared");
    assert!(
        proc::signals_received(proc::INIT_PID).is_empty(),
        "TC-4: async off"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TN table, `SIOCGIFMEDIA32`/`SIOCGIFMEDIA64`: with a media list (`ifm_ulist`) and room for
/// one word (`ifm_count` ≥ 1) the one media word is copied out to it; a bad list address is
/// `EFAULT`; `ifm_count` comes back 1 either way (a first call with count 0 sizes the list).
#[test]
fn media_list_gets_the_one_media_word_tn() {
    boot_and_load();
    let fd = open_tap(7);
    let mut list = [0u8; 8];
    // SIOCGIFMEDIA64: ulist is 8 bytes at 36.
    let mut req = vec![0u8; 44];
    stack::ioctl("tap7", SIOCGIFMEDIA64, &mut req).unwrap();
    assert_eq!(
        &req[32..36],
        &1i32.to_ne_bytes(),
        "count 0: told there is one"
    );
    {
        let lent = xnu_sim::uio::lend_user_memory(&mut list);
        req[32..36].copy_from_slice(&2i32.to_ne_bytes());
        req[36..44].copy_from_slice(&lent.address().to_ne_bytes());
        stack::ioctl("tap7", SIOCGIFMEDIA64, &mut req).unwrap();
    }
    assert_eq!(
        &list[..4],
        &MEDIA_1000_T_FDX.to_ne_bytes(),
        "one word copied out"
    );
    assert_eq!(&list[4..], &[0; 4], "and only one");
    assert_eq!(&req[32..36], &1i32.to_ne_bytes());
    assert_eq!(
        stack::ioctl("tap7", SIOCGIFMEDIA64, &mut req),
        Err(xnu_sim::Errno::EFAULT),
        "the list is no longer user memory"
    );
    // SIOCGIFMEDIA32: ulist is 4 bytes at 36; page zero.
    let mut req32 = vec![0u8; 40];
    req32[32..36].copy_from_slice(&1i32.to_ne_bytes());
    req32[36..40].copy_from_slice(&16u32.to_ne_bytes());
    assert_eq!(
        stack::ioctl("tap7", SIOCGIFMEDIA32, &mut req32),
        Err(xnu_sim::Errno::EFAULT)
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}
