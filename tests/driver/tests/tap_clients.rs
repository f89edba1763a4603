//! The client replays of docs/tap-contract.md section 1 (TC1..TC5), step by step: OpenVPN's
//! Darwin and FreeBSD paths, QEMU's `-netdev tap`, VTun's `type ether` and tinc's
//! `DeviceType = tap` (router mode's `SIOCGIFADDR` included), with the frames both ways, the
//! ARP and neighbour discovery the traffic implies, close and the state after it.

use driver_tests::tap::*;
use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::SIOCGIFADDR;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, O_NONBLOCK, O_RDWR};
use xnu_sim::{devices, link, netinspect, proc, stack, Errno, Fd};

/// The units an open loop skipped, with why.
type OpenErrors = Vec<(usize, Errno)>;

/// Opens `/dev/tapN` for N in `units` until one opens; an error in `stop_at` ends the loop,
/// any other of `EBUSY`/`ENOENT`/`ENXIO` moves on. Returns the unit and the errors seen.
fn open_loop(
    units: impl IntoIterator<Item = usize>,
    stop_at: &[Errno],
) -> (Option<(usize, Fd)>, OpenErrors) {
    let mut errors = Vec::new();
    for n in units {
        match syscalls::open(&tap_dev(n), O_RDWR) {
            Ok(fd) => return (Some((n, fd)), errors),
            Err(e) => {
                assert!(
                    matches!(e, Errno::EBUSY | Errno::ENOENT | Errno::ENXIO),
                    "tap{n}: {e:?}"
                );
                errors.push((n, e));
                if stop_at.contains(&e) {
                    break;
                }
            }
        }
    }
    (None, errors)
}

/// Another process (another VPN, another VM) holds `/dev/tapN`.
fn occupy(n: usize) -> (proc::Pid, Fd) {
    let other = proc::spawn_process(0);
    proc::set_current_pid(other);
    let fd = open_tap(n);
    proc::set_current_pid(proc::INIT_PID);
    (other, fd)
}

fn release((pid, fd): (proc::Pid, Fd)) {
    proc::set_current_pid(pid);
    syscalls::close(fd).unwrap();
    proc::set_current_pid(proc::INIT_PID);
}

/// `fstat` + `devname(st_rdev, S_IFCHR)`: the name of the node with the descriptor's device.
fn devname(path: &str) -> String {
    let dev = devices::node(path.trim_start_matches("/dev/")).unwrap().dev;
    devices::node_names()
        .into_iter()
        .find(|n| devices::node(n).unwrap().dev == dev)
        .expect("a node for the device")
}

/// One round of the client's loop: `select` says readable (the bound only turns a hang into a
/// failure), then one `read` of at most `len` bytes, which returns one frame, never 0 bytes.
fn select_and_read(fd: Fd, len: usize) -> Vec<u8> {
    let (r, _) = syscalls::select(&[fd], &[], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r, vec![fd], "select: not readable");
    let mut buf = vec![0u8; len];
    let n = syscalls::read(fd, &mut buf).unwrap();
    assert!(n > 0, "RD-3: a read after select returns a frame");
    buf.truncate(n);
    buf
}

/// The next frame the client reads that is not the stack's gratuitous ARP after an address
/// add (docs/tap-contract.md Q4: tolerated, not required).
fn next_frame(fd: Fd, len: usize) -> Vec<u8> {
    for _ in 0..4 {
        let f = select_and_read(fd, len);
        match parse_arp(&f) {
            Some(a) if a.op == ARPOP_REQUEST && a.spa == a.tpa => continue,
            _ => return f,
        }
    }
    panic!("only announcements");
}

/// The remote end of a VPN carrying tapN's frames: it answers the stack's ARP request for
/// `PEER_IP` (written into the device) and must then read the packet that waited for it.
fn resolve_and_read(fd: Fd, name: &str, len: usize, mac: [u8; 6], payload: &[u8]) {
    let p = ipv4_udp(TAP_IP, PEER_IP, payload);
    stack::output(name, AF_INET, &sockaddr_in(PEER_IP), &p).unwrap();
    let ask = next_frame(fd, len);
    let Arp {
        dst, src, op, tpa, ..
    } = parse_arp(&ask).expect("TO-3: ARP first");
    assert_eq!(
        (dst, src, op, tpa),
        (BROADCAST, mac, ARPOP_REQUEST, PEER_IP)
    );
    let reply = arp_reply_from_peer(mac, TAP_IP);
    assert_eq!(syscalls::write(fd, &reply), Ok(reply.len()));
    assert_eq!(next_frame(fd, len), frame(PEER_MAC, mac, ETHERTYPE_IP, &p));
}

/// TC1 steps 1..3: the open loop over `/dev/tap0..255` (tap0 held elsewhere: `EBUSY`, skipped),
/// `set_nonblock` (FIONBIO then FIOASYNC(0), both 0), no ioctl.
fn openvpn_open() -> (usize, Fd) {
    let (found, errors) = open_loop(0..=255, &[]);
    let (unit, fd) = found.expect("TC1.1: a free unit");
    assert_eq!((unit, errors), (1, vec![(0, Errno::EBUSY)]), "TC1.1");
    assert!(fd.0 > 0);
    assert_eq!(syscalls::fcntl_setfl(fd, O_NONBLOCK), Ok(()), "TC1.2");
    (unit, fd)
}

/// TC1, OpenVPN `dev tap` on Darwin with `--lladdr`, IPv4 and IPv6: open loop, non-blocking,
/// `ifconfig lladdr`, `ifconfig delete` failing, address/MTU/up, the select loop with frames
/// both ways (ARP and ND on the way), `route delete`, close; afterwards no address is left and
/// the MAC is the one set.
#[test]
fn tc1_openvpn_dev_tap_darwin() {
    boot_and_load();
    let holder = occupy(0);
    let (unit, fd) = openvpn_open();
    let name = tap_name(unit);
    let lladdr = [0x02, 0x4f, 0x56, 0x50, 0x4e, 0x01];
    assert_eq!(link::set_lladdr(&name, &lladdr), Ok(()), "TC1.4");
    let mac = mac_of(&name);
    assert_eq!(mac, lladdr);
    assert_eq!(
        stack::delete_address(&name, AF_INET, &[0; 4]),
        Err(Errno(49)),
        "TC1.5"
    );
    stack::add_address(&name, AF_INET, &TAP_IP).unwrap();
    stack::set_mtu(&name, 1500).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    stack::add_address(&name, AF_INET6, &TAP_IP6).unwrap();
    stack::set_mtu(&name, 1500).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    let i = netinspect::interface(&name).unwrap();
    assert_eq!(i.flags & (IFF_UP | IFF_RUNNING), IFF_UP | IFF_RUNNING);
    let len = 1500 + 32; // TC1.6: tun-mtu + TAP_MTU_EXTRA_DEFAULT
    resolve_and_read(fd, &name, len, mac, b"first packet");
    let p6 = ipv6_udp(TAP_IP6, PEER_IP6, b"first v6");
    stack::output(&name, AF_INET6, &sockaddr_in6(PEER_IP6), &p6).unwrap();
    assert!(is_neighbor_solicit_for(&next_frame(fd, len), &PEER_IP6));
    let na = neighbor_advert_from_peer(mac, TAP_IP6);
    assert_eq!(syscalls::write(fd, &na), Ok(na.len()));
    assert_eq!(
        next_frame(fd, len),
        frame(PEER_MAC, mac, ETHERTYPE_IPV6, &p6)
    );
    netinspect::take_received(&name);
    for round in 0..20u8 {
        let down4 = ipv4_udp(TAP_IP, PEER_IP, &[round; 64]);
        let down6 = ipv6_udp(TAP_IP6, PEER_IP6, &[round; 80]);
        stack::output(&name, AF_INET, &sockaddr_in(PEER_IP), &down4).unwrap();
        stack::output(&name, AF_INET6, &sockaddr_in6(PEER_IP6), &down6).unwrap();
        assert_eq!(
            select_and_read(fd, len),
            frame(PEER_MAC, mac, ETHERTYPE_IP, &down4)
        );
        assert_eq!(
            select_and_read(fd, len),
            frame(PEER_MAC, mac, ETHERTYPE_IPV6, &down6)
        );
        assert_eq!(syscalls::read(fd, &mut [0u8; 64]), Err(Errno::EAGAIN));
        let up4 = ipv4_frame(mac, &[round; 100]);
        let up6 = ipv6_frame(mac, &[round; 120]);
        assert_eq!(syscalls::write(fd, &up4), Ok(up4.len()));
        assert_eq!(syscalls::write(fd, &up6), Ok(up6.len()));
        assert_eq!(
            netinspect::take_received(&name),
            [
                (AF_INET, up4[14..].to_vec()),
                (AF_INET6, up6[14..].to_vec())
            ]
        );
    }
    // TC1.7: `route delete -inet6 A` reaches no driver; close.
    assert_eq!(syscalls::close(fd), Ok(()));
    let i = netinspect::interface(&name).unwrap();
    assert!(i.addresses.is_empty(), "§12: {:?}", i.addresses);
    assert_eq!(
        (i.lladdr.as_slice(), i.flags, i.mtu),
        (&lladdr[..], 0x8802, 1500)
    );
    release(holder);
    unload_clean();
}

/// TC1.1: the loop logs and skips `EBUSY` for the sixteen busy units and `ENOENT` for 16..255;
/// `--dev tap5` is one open of that node.
#[test]
fn tc1_open_loop_skips_ebusy_and_enoent() {
    boot_and_load();
    let held: Vec<Fd> = (0..16).map(open_tap).collect();
    let (found, errors) = open_loop(0..=255, &[]);
    assert!(found.is_none());
    assert_eq!(errors.len(), 256);
    assert!(errors[..16].iter().all(|&(_, e)| e == Errno::EBUSY));
    assert!(errors[16..].iter().all(|&(_, e)| e == Errno::ENOENT));
    syscalls::close(held[5]).unwrap();
    let fd = syscalls::open("/dev/tap5", O_RDWR).expect("--dev tap5");
    syscalls::close(fd).unwrap();
    for (n, fd) in held.into_iter().enumerate() {
        if n != 5 {
            syscalls::close(fd).unwrap();
        }
    }
    unload_clean();
}

/// TC2, OpenVPN's FreeBSD/DragonFly path: as TC1.1..3 (no ioctl for tap), then
/// `ifconfig tapN L/BITS mtu MTU up`, frames both ways, close, and `ifconfig tapN destroy`
/// failing with the interface kept.
#[test]
fn tc2_openvpn_freebsd_path() {
    boot_and_load();
    let holder = occupy(0);
    let (unit, fd) = openvpn_open();
    let name = tap_name(unit);
    let mac = mac_of(&name);
    stack::add_address(&name, AF_INET, &TAP_IP).unwrap();
    stack::set_mtu(&name, 1400).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    resolve_and_read(fd, &name, 1400 + 32, mac, b"freebsd");
    let up = ipv4_frame(mac, b"to the stack");
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(netinspect::received(&name), [(AF_INET, up[14..].to_vec())]);
    let index = netinspect::if_nametoindex(&name);
    syscalls::close(fd).unwrap();
    assert_eq!(
        stack::destroy(&name),
        Err(Errno::EINVAL),
        "TC2: no cloner on macOS"
    );
    let i = netinspect::interface(&name).unwrap();
    assert_eq!(
        i.state,
        netinspect::IfState::Attached,
        "the interface persists"
    );
    assert_eq!(netinspect::if_nametoindex(&name), index);
    assert!(i.addresses.is_empty());
    release(holder);
    unload_clean();
}

/// TC3, QEMU `-netdev tap` on Darwin: open `/dev/tap0..9` (busy units skipped, stop at the
/// first success), the interface name from `devname`, no vnet header, non-blocking, the ifup
/// script (`ifconfig tapN up`, `ifconfig bridge0 addm tapN`), reads until `EAGAIN` one frame
/// each, `writev` of guest frames; close; the loop's stop at `ENOENT`/`ENXIO`.
#[test]
fn tc3_qemu_netdev_tap() {
    boot_and_load();
    let holders = [occupy(0), occupy(1)];
    let (found, errors) = open_loop(0..10, &[Errno::ENXIO, Errno::ENOENT]);
    let (unit, fd) = found.expect("TC3.1");
    assert_eq!(
        (unit, errors),
        (2, vec![(0, Errno::EBUSY), (1, Errno::EBUSY)]),
        "TC3.1"
    );
    let name = devname(&tap_dev(unit));
    assert_eq!(name, "tap2", "TC3.2: the node name is the interface name");
    assert_eq!(netinspect::interface(&name).unwrap().unit, 2);
    assert_eq!(syscalls::fcntl_setfl(fd, O_NONBLOCK), Ok(()), "TC3.4");
    stack::set_flags(&name, IFF_UP, 0).unwrap(); // TC3.5: ifconfig tap2 up
    assert_eq!(
        link::bridge_add_member(&name),
        Ok(()),
        "TC3.5: ifconfig bridge0 addm tap2"
    );
    assert_eq!(netinspect::bridge_media_active(&name), Some(true));
    let mac = mac_of(&name);
    let guest = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    // From the bridge to the guest (raw output above tap2), read until EAGAIN (TC3.6).
    let to_guest = [
        frame(
            BROADCAST,
            OTHER_MAC,
            ETHERTYPE_ARP,
            &arp_packet(1, OTHER_MAC, PEER_IP, [0; 6], [10, 9, 0, 77]),
        ),
        frame(
            guest,
            OTHER_MAC,
            ETHERTYPE_IP,
            &ipv4_udp(PEER_IP, [10, 9, 0, 77], b"to guest"),
        ),
        frame(
            guest,
            OTHER_MAC,
            ETHERTYPE_IPV6,
            &ipv6_udp(PEER_IP6, TAP_IP6, b"v6 to guest"),
        ),
    ];
    for f in &to_guest {
        stack::output_raw(&name, f).unwrap();
    }
    let mut got = Vec::new();
    loop {
        let mut buf = vec![0u8; 69632];
        match syscalls::read(fd, &mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("TC3.6: {e:?}"),
        }
        assert!(got.len() <= to_guest.len(), "one frame per read");
    }
    assert_eq!(got, to_guest);
    // From the guest: writev of the frame's pieces, one frame each (TF-1).
    let from_guest = [
        frame(
            BROADCAST,
            guest,
            ETHERTYPE_ARP,
            &arp_packet(1, guest, [10, 9, 0, 77], [0; 6], PEER_IP),
        ),
        frame(
            OTHER_MAC,
            guest,
            ETHERTYPE_IP,
            &ipv4_udp([10, 9, 0, 77], PEER_IP, b"from guest"),
        ),
        frame(mac, guest, 0x88b5, b"to the host itself"),
    ];
    for f in &from_guest {
        assert_eq!(
            syscalls::writev(fd, &[&f[..12], &f[12..14], &f[14..]]),
            Ok(f.len())
        );
    }
    let seen = netinspect::frames_in(&name);
    assert_eq!(
        seen.iter().map(|f| f.bytes.clone()).collect::<Vec<_>>(),
        from_guest
    );
    assert_eq!(seen[0].flags, netinspect::M_BCAST);
    assert_eq!(
        seen[1].flags,
        netinspect::M_PROMISC,
        "the bridge's, not the host's"
    );
    syscalls::close(fd).unwrap();
    let i = netinspect::interface(&name).unwrap();
    assert_eq!(i.flags, 0x8802 | IFF_PROMISC, "the bridge's PROMISC stays");
    assert_eq!(netinspect::bridge_media_active(&name), Some(false), "TK-1");
    // TC3.1: the loop stops at the first ENOENT or ENXIO (here all ten busy: none of those).
    let more: Vec<_> = (2..10).map(occupy).collect();
    let (found, errors) = open_loop(0..10, &[Errno::ENXIO, Errno::ENOENT]);
    assert!(found.is_none());
    assert_eq!(errors.len(), 10);
    for h in more.into_iter().chain(holders) {
        release(h);
    }
    let (found, errors) = open_loop(15..30, &[Errno::ENXIO, Errno::ENOENT]);
    let (_, fd) = found.expect("tap15 is free");
    syscalls::close(fd).unwrap();
    assert!(errors.is_empty());
    let held: Vec<Fd> = (0..16).map(open_tap).collect();
    let (found, errors) = open_loop(14..30, &[Errno::ENXIO, Errno::ENOENT]);
    assert!(found.is_none());
    assert_eq!(
        errors,
        [(14, Errno::EBUSY), (15, Errno::EBUSY), (16, Errno::ENOENT)]
    );
    for fd in held {
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// TC4, VTun `type ether`: one open of the named device (or the loop's first fd > 0), no
/// ioctls, a blocking fd; a forked child runs the `up` command and exits without a last close;
/// `linkfd`'s select/read(2048)/write; the `down` command, close.
#[test]
fn tc4_vtun_type_ether() {
    boot_and_load();
    let fd = syscalls::open("/dev/tap5", O_RDWR).expect("TC4.1: named device");
    assert!(fd.0 > 0);
    let name = "tap5";
    assert_eq!(
        syscalls::fcntl_getfl(fd).map(|f| f & O_NONBLOCK),
        Ok(0),
        "TC4.2"
    );
    let child = syscalls::fork();
    proc::set_current_pid(child);
    stack::add_address(name, AF_INET, &TAP_IP).unwrap(); // up: ifconfig %% L netmask M up
    stack::set_flags(name, IFF_UP, 0).unwrap();
    syscalls::close(fd).unwrap(); // the child's copy
    proc::exit_process(child);
    proc::set_current_pid(proc::INIT_PID);
    assert_eq!(
        syscalls::open("/dev/tap5", O_RDWR),
        Err(Errno::EBUSY),
        "U-3: still open"
    );
    assert_eq!(
        if_status(name),
        format!("\topen (pid {})\n", proc::INIT_PID)
    );
    let mac = mac_of(name);
    resolve_and_read(fd, name, 2048, mac, b"vtun"); // TC4.3, VTUN_FRAME_SIZE
    for round in 0..10u8 {
        let down = ipv4_udp(TAP_IP, PEER_IP, &[round; 500]);
        stack::output(name, AF_INET, &sockaddr_in(PEER_IP), &down).unwrap();
        assert_eq!(
            select_and_read(fd, 2048),
            frame(PEER_MAC, mac, ETHERTYPE_IP, &down)
        );
        let up = ipv4_frame(mac, &[round; 700]);
        assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    }
    assert_eq!(netinspect::take_received(name).len(), 10);
    stack::set_flags(name, 0, IFF_UP).unwrap(); // TC4.4: down
    syscalls::close(fd).unwrap();
    assert!(netinspect::interface(name).unwrap().addresses.is_empty());
    // TC4.1, the loop variant: /dev/tap0..254, the first fd > 0.
    let (found, _) = open_loop(0..=254, &[]);
    let (unit, fd) = found.unwrap();
    assert_eq!(unit, 0);
    assert!(fd.0 > 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// TC5, tinc `DeviceType = tap` in router mode: `O_RDWR|O_NONBLOCK` (non-blocking through
/// `IO_NDELAY`, no `FIONBIO`), the name from `devname`, `SIOCGIFADDR` right after open (its
/// six bytes become the destination of every frame tinc writes), `tinc-up`, then read(1518)
/// after select and writes: tinc answers the kernel's ARP itself and its frames reach the
/// stack. Without the `SIOCGIFADDR` result its frames (to FE:FD:00:00:00:00) would be
/// another station's: `M_PROMISC`, dropped.
#[test]
fn tc5_tinc_device_type_tap_router_mode() {
    boot_and_load();
    let fd = syscalls::open("/dev/tap0", O_RDWR | O_NONBLOCK).expect("TC5.1");
    assert_eq!(
        syscalls::read(fd, &mut [0u8; 1518]),
        Err(Errno::EAGAIN),
        "IO_NDELAY"
    );
    let name = devname("/dev/tap0");
    assert_eq!(name, "tap0", "TC5.2");
    let mut mymac = [0u8; 32];
    assert_eq!(
        syscalls::ioctl(fd, SIOCGIFADDR, &mut mymac),
        Ok(()),
        "TC5.3"
    );
    let mymac: [u8; 6] = mymac[..6].try_into().unwrap();
    assert_eq!(mymac, mac_of("tap0"), "TI-1: the interface's MAC");
    let mut tinc_mac = mymac;
    tinc_mac[5] ^= 0xff; // route.c: tinc's own source address
    stack::add_address("tap0", AF_INET, &TAP_IP).unwrap(); // TC5.4: tinc-up
    stack::set_flags("tap0", IFF_UP, 0).unwrap();
    let p = ipv4_udp(TAP_IP, PEER_IP, b"into the VPN");
    stack::output("tap0", AF_INET, &sockaddr_in(PEER_IP), &p).unwrap();
    let ask = next_frame(fd, 1518);
    let Arp {
        op, sha, spa, tpa, ..
    } = parse_arp(&ask).expect("the kernel asks first");
    assert_eq!((op, sha, spa, tpa), (ARPOP_REQUEST, mymac, TAP_IP, PEER_IP));
    // route_arp: tinc answers for the VPN address, from its own MAC.
    let answer = frame(
        mymac,
        tinc_mac,
        ETHERTYPE_ARP,
        &arp_packet(ARPOP_REPLY, tinc_mac, PEER_IP, mymac, TAP_IP),
    );
    assert_eq!(syscalls::write(fd, &answer), Ok(answer.len()));
    assert_eq!(
        next_frame(fd, 1518),
        frame(tinc_mac, mymac, ETHERTYPE_IP, &p)
    );
    for round in 0..15u8 {
        let from_vpn = frame(
            mymac,
            tinc_mac,
            ETHERTYPE_IP,
            &ipv4_udp(PEER_IP, TAP_IP, &[round; 90]),
        );
        assert_eq!(syscalls::write(fd, &from_vpn), Ok(from_vpn.len()));
        let (demux, flags) = netinspect::frames_in("tap0")
            .pop()
            .map(|f| (f.demux, f.flags))
            .unwrap();
        assert_eq!(
            (demux, flags),
            (Ok(AF_INET), 0),
            "round {round}: to tap0's own MAC"
        );
        let down = ipv4_udp(TAP_IP, PEER_IP, &[round; 300]);
        stack::output("tap0", AF_INET, &sockaddr_in(PEER_IP), &down).unwrap();
        assert_eq!(
            select_and_read(fd, 1518),
            frame(tinc_mac, mymac, ETHERTYPE_IP, &down)
        );
    }
    assert_eq!(netinspect::take_received("tap0").len(), 15);
    let blind = frame(
        [0xfe, 0xfd, 0, 0, 0, 0],
        tinc_mac,
        ETHERTYPE_IP,
        &ipv4_udp(PEER_IP, TAP_IP, b"?"),
    );
    assert_eq!(syscalls::write(fd, &blind), Ok(blind.len()));
    assert_eq!(
        netinspect::frames_in("tap0").pop().unwrap().flags,
        netinspect::M_PROMISC
    );
    assert!(
        netinspect::take_received("tap0").is_empty(),
        "dropped by dlil"
    );
    syscalls::close(fd).unwrap();
    assert!(netinspect::interface("tap0").unwrap().addresses.is_empty());
    unload_clean();
}
