//! The client replays of tun-contract.md section 1 (C1..C5), step by step, IPv6 included.

use driver_tests::*;
use std::time::Duration;
use tunnel::ioctl::{TUNSIFHEAD, TUNSIFMODE, TUNSLMODE};
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK, O_RDWR};
use xnu_sim::{ifnet, proc, stack, Errno, Fd};

/// The units an open loop skipped, with why.
type OpenErrors = Vec<(usize, Errno)>;

/// The open loop of C1/C2/C5 (`/dev/tun0..255`) or C3 (`..254`): the first success; a busy
/// unit (EBUSY) or a missing node (ENOENT) moves on. Returns the unit and the errors seen.
fn open_loop(last: usize) -> (Option<(usize, Fd)>, OpenErrors) {
    let mut errors = Vec::new();
    for n in 0..=last {
        match syscalls::open(&dev(n), O_RDWR) {
            Ok(fd) => return (Some((n, fd)), errors),
            Err(e) => {
                assert!(e == Errno::EBUSY || e == Errno::ENOENT, "tun{n}: {e:?}");
                errors.push((n, e));
            }
        }
    }
    (None, errors)
}

/// Another process holds tun0, as another VPN would.
fn occupy_tun0() -> (proc::Pid, Fd) {
    let other = proc::spawn_process(0);
    proc::set_current_pid(other);
    let fd = open_unit(0);
    proc::set_current_pid(proc::INIT_PID);
    (other, fd)
}

fn release(holder: (proc::Pid, Fd)) {
    proc::set_current_pid(holder.0);
    syscalls::close(holder.1).unwrap();
    proc::set_current_pid(proc::INIT_PID);
}

/// One select round then a non-blocking read of one raw packet.
fn select_and_read(fd: Fd) -> Vec<u8> {
    let (r, _) = syscalls::select(&[fd], &[], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r, vec![fd]);
    let mut buf = vec![0u8; 65536];
    let n = syscalls::read(fd, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// C1 steps 1..4: open loop with tun0 busy, F_SETFL O_NONBLOCK (FIONBIO(4) then FIOASYNC(0),
/// IO-7), no tun ioctls.
fn c1_open(holder_first: bool) -> (usize, Fd) {
    let (found, errors) = open_loop(255);
    let (unit, fd) = found.expect("a free unit");
    if holder_first {
        assert_eq!((unit, errors), (1, vec![(0, Errno::EBUSY)]), "C1.1");
    }
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap(); // C1.2
    (unit, fd)
}

/// C1, OpenVPN on Darwin, point-to-point with IPv6: open loop (EBUSY on tun0), O_NONBLOCK,
/// `ifconfig delete` failing, `ifconfig L R mtu M netmask 255.255.255.255 up`,
/// `ifconfig inet6 A/64 mtu M up`, select loop with raw IPv4 and IPv6 both ways, close; after
/// close no address is left.
#[test]
fn c1_openvpn_darwin_p2p_and_ipv6() {
    boot_and_load();
    let holder = occupy_tun0();
    let (unit, fd) = c1_open(true);
    let name = format!("tun{unit}");
    // C1.5: `ifconfig tunN delete` fails (no address yet); the driver sees nothing.
    assert_eq!(
        stack::delete_address(&name, AF_INET, &[0, 0, 0, 0]),
        Err(Errno(49))
    );
    // C1.6, p2p: SIOCSIFADDR, SIOCSIFMTU, SIOCSIFFLAGS.
    stack::add_address(&name, AF_INET, &[10, 8, 0, 1]).unwrap();
    stack::set_mtu(&name, 1500).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    // IPv6 variant: `ifconfig tunN inet6 A/64 mtu M up`.
    stack::add_address(&name, AF_INET6, &V6_LOCAL).unwrap();
    stack::set_mtu(&name, 1500).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    let i = ifnet::interface(&name).unwrap();
    assert_eq!(i.flags & (IFF_UP | IFF_RUNNING), IFF_UP | IFF_RUNNING);
    // C1.7: the loop.
    for round in 0..20u8 {
        let down4 = ipv4_udp([10, 8, 0, 1], [10, 8, 0, 2], &[round; 64]);
        let down6 = ipv6_udp(V6_LOCAL, V6_PEER, &[round; 80]);
        stack::output(&name, AF_INET, &sockaddr_in([10, 8, 0, 2]), &down4).unwrap();
        stack::output(&name, AF_INET6, &sockaddr_in6(V6_PEER), &down6).unwrap();
        assert_eq!(select_and_read(fd), down4);
        assert_eq!(select_and_read(fd), down6);
        assert_eq!(syscalls::read(fd, &mut [0u8; 10]), Err(Errno::EAGAIN));
        let up4 = ipv4_udp([10, 8, 0, 2], [10, 8, 0, 1], &[round; 100]);
        let up6 = ipv6_udp(V6_PEER, V6_LOCAL, &[round; 120]);
        assert_eq!(syscalls::write(fd, &up4), Ok(up4.len()));
        assert_eq!(syscalls::write(fd, &up6), Ok(up6.len()));
        assert_eq!(
            ifnet::take_received(&name),
            vec![(AF_INET, up4), (AF_INET6, up6)]
        );
    }
    // C1.8: `route delete -inet6 A` reaches no driver; close.
    syscalls::close(fd).unwrap();
    assert!(
        ifnet::interface(&name).unwrap().addresses.is_empty(),
        "§10: no address left"
    );
    release(holder);
    unload_clean();
}

/// C1, subnet variant: `ifconfig tunN L L netmask MASK mtu M up`, then a route (no driver
/// call); raw IPv4 both ways.
#[test]
fn c1_openvpn_darwin_subnet() {
    boot_and_load();
    let (unit, fd) = c1_open(false);
    assert_eq!(unit, 0);
    stack::add_address("tun0", AF_INET, &[10, 9, 0, 1]).unwrap();
    stack::set_mtu("tun0", 1400).unwrap();
    stack::set_flags("tun0", IFF_UP, 0).unwrap();
    let down = ipv4_udp([10, 9, 0, 1], [10, 9, 0, 77], b"subnet");
    stack::output("tun0", AF_INET, &sockaddr_in([10, 9, 0, 77]), &down).unwrap();
    assert_eq!(select_and_read(fd), down);
    let up = ipv4_udp([10, 9, 0, 77], [10, 9, 0, 1], b"reply");
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(ifnet::received("tun0"), vec![(AF_INET, up)]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// C1.1: the open loop also moves on past ENOENT: every unit ≥ 16 has no node.
#[test]
fn c1_open_loop_sees_enoent_above_unit_15() {
    boot_and_load();
    let mut held = Vec::new();
    for n in 0..16 {
        held.push(open_unit(n));
    }
    let (found, errors) = open_loop(255);
    assert!(found.is_none());
    assert_eq!(errors.len(), 256);
    assert!(errors[..16].iter().all(|&(_, e)| e == Errno::EBUSY));
    assert!(errors[16..].iter().all(|&(_, e)| e == Errno::ENOENT));
    for fd in held {
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// C2, OpenVPN on FreeBSD (and NetBSD/DragonFly): O_NONBLOCK, TUNSIFMODE while down (and EBUSY
/// if it were up), TUNSLMODE(0), TUNSIFHEAD(1), ifconfig, writev/readv with the 4-byte header,
/// `-alias` for both families, close, `destroy` failing with the interface kept.
#[test]
fn c2_openvpn_freebsd_path() {
    boot_and_load();
    let (found, _) = open_loop(255);
    let (unit, fd) = found.unwrap();
    let name = format!("tun{unit}");
    syscalls::fcntl_setfl(fd, O_NONBLOCK).unwrap(); // C2.1
    assert_eq!(
        ioctl_int(fd, TUNSIFMODE, i32::from(IFF_BROADCAST | IFF_MULTICAST)),
        Ok(0x8002),
        "C2.2 topology subnet, while down"
    );
    assert_eq!(
        ioctl_int(fd, TUNSIFMODE, i32::from(IFF_POINTOPOINT | IFF_MULTICAST)),
        Ok(0x8010),
        "C2.2 p2p, while down"
    );
    assert_eq!(ioctl_int(fd, TUNSLMODE, 0), Ok(0), "C2.3");
    assert_eq!(ioctl_int(fd, TUNSIFHEAD, 1), Ok(1), "C2.4");
    // C2.5: `ifconfig tunN L/BITS mtu M up` and IPv6.
    stack::add_address(&name, AF_INET, &[10, 8, 0, 1]).unwrap();
    stack::set_mtu(&name, 1500).unwrap();
    stack::set_flags(&name, IFF_UP, 0).unwrap();
    stack::add_address(&name, AF_INET6, &V6_LOCAL).unwrap();
    assert_eq!(
        ioctl_int(fd, TUNSIFMODE, 0x8010),
        Err(Errno::EBUSY),
        "C2.2 if it were up: EBUSY, which the client only logs"
    );
    // C2.6: writev([AF in network order, packet]); AF_INET6 when the nibble is 6.
    let up4 = ipv4_udp([10, 8, 0, 2], [10, 8, 0, 1], b"freebsd4");
    let up6 = ipv6_udp(V6_PEER, V6_LOCAL, b"freebsd6");
    for p in [&up4, &up6] {
        let af: u32 = if p[0] >> 4 == 6 { AF_INET6 } else { AF_INET };
        let hdr = af.to_be_bytes();
        assert_eq!(syscalls::writev(fd, &[&hdr, p]), Ok(4 + p.len()));
    }
    assert_eq!(
        ifnet::received(&name),
        vec![(AF_INET, up4.clone()), (AF_INET6, up6.clone())]
    );
    let down4 = ipv4_udp([10, 8, 0, 1], [10, 8, 0, 2], b"to freebsd client");
    let down6 = ipv6_udp(V6_LOCAL, V6_PEER, b"to freebsd client 6");
    stack::output(&name, AF_INET, &sockaddr_in([10, 8, 0, 2]), &down4).unwrap();
    stack::output(&name, AF_INET6, &sockaddr_in6(V6_PEER), &down6).unwrap();
    for (af, p) in [(AF_INET, &down4), (AF_INET6, &down6)] {
        syscalls::select(&[fd], &[], Some(Duration::from_secs(10))).unwrap();
        let mut hdr = [0u8; 4];
        let mut buf = vec![0u8; 2000];
        let n = syscalls::readv(fd, &mut [&mut hdr, &mut buf]).unwrap();
        assert_eq!(u32::from_be_bytes(hdr), af);
        assert_eq!(&buf[..n - 4], &p[..], "the client subtracts 4");
    }
    // C2.7: `ifconfig tunN L -alias`, `ifconfig tunN inet6 A -alias`, close, destroy fails.
    stack::delete_address(&name, AF_INET, &[10, 8, 0, 1]).unwrap();
    stack::delete_address(&name, AF_INET6, &V6_LOCAL).unwrap();
    syscalls::close(fd).unwrap();
    assert_eq!(
        stack::destroy(&name),
        Err(Errno::EINVAL),
        "no cloner on macOS"
    );
    assert_eq!(
        ifnet::interface(&name).unwrap().state,
        ifnet::IfState::Attached,
        "the interface persists"
    );
    unload_clean();
}

/// C3, VTun generic build: open by name, no ioctls, a blocking fd driven by select, raw IPv4,
/// the up script's `ifconfig tunN L R up`.
#[test]
fn c3_vtun_generic() {
    boot_and_load();
    let fd = syscalls::open("/dev/tun3", O_RDWR).unwrap(); // C3.1, a configured name
    assert!(fd.0 > 0);
    stack::add_address("tun3", AF_INET, &[172, 16, 0, 1]).unwrap(); // C3.4
    stack::set_flags("tun3", IFF_UP, 0).unwrap();
    let down = ipv4_udp([172, 16, 0, 1], [172, 16, 0, 2], b"vtun");
    stack::output("tun3", AF_INET, &sockaddr_in([172, 16, 0, 2]), &down).unwrap();
    assert_eq!(
        select_and_read(fd),
        down,
        "C3.2, C3.3 blocking fd behind select"
    );
    let up = ipv4_udp([172, 16, 0, 2], [172, 16, 0, 1], b"vtun reply");
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(ifnet::received("tun3"), vec![(AF_INET, up)]);
    syscalls::close(fd).unwrap();
    // C3.1, the loop variant (`/dev/tun0..254`, first fd > 0).
    let (found, _) = open_loop(254);
    let (unit, fd) = found.unwrap();
    assert_eq!(unit, 0);
    assert!(fd.0 > 0);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// C4, VTun FreeBSD build: TUNSLMODE(0) → 0, TUNSIFHEAD(0) → 0, then raw read/write.
#[test]
fn c4_vtun_freebsd() {
    boot_and_load();
    let (found, _) = open_loop(254);
    let (_, fd) = found.unwrap();
    assert_eq!(ioctl_int(fd, TUNSLMODE, 0), Ok(0));
    assert_eq!(ioctl_int(fd, TUNSIFHEAD, 0), Ok(0));
    configure("tun0");
    let down = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], b"raw for vtun");
    send_ipv4("tun0", &down).unwrap();
    assert_eq!(select_and_read(fd), down);
    let up = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], b"raw from vtun");
    assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
    assert_eq!(ifnet::received("tun0"), vec![(AF_INET, up)]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// C5, miredo on Darwin: no /dev/tun* before load → ENOENT; raw mode; SIOCSIFFLAGS setting
/// POINTOPOINT|NOARP|UP|RUNNING and clearing MULTICAST|BROADCAST → 0; SIOCAIFADDR_IN6 → 0;
/// SIOCSIFMTU 1280 → 0; raw IPv6 writes reach the IPv6 stack. (Step 4, the routing-socket
/// RTM_ADD, never reaches the driver; the simulator has no routing table.)
#[test]
fn c5_miredo_teredo() {
    boot();
    let (found, errors) = open_loop(255);
    assert!(found.is_none());
    assert!(
        errors.iter().all(|&(_, e)| e == Errno::ENOENT),
        "C5.1 before load"
    );
    load();
    let (found, _) = open_loop(255);
    let (unit, fd) = found.unwrap();
    let name = format!("tun{unit}");
    stack::set_flags(
        &name,
        IFF_POINTOPOINT | IFF_NOARP | IFF_UP | IFF_RUNNING,
        IFF_MULTICAST | IFF_BROADCAST,
    )
    .unwrap();
    stack::add_address(
        &name,
        AF_INET6,
        &[
            0x20, 0x01, 0, 0, 0x53, 0xaa, 0x06, 0x4c, 0, 0, 0, 0, 0, 0, 0, 1,
        ],
    )
    .unwrap();
    stack::set_mtu(&name, 1280).unwrap();
    let i = ifnet::interface(&name).unwrap();
    assert_eq!(i.flags, IFF_POINTOPOINT | IFF_NOARP | IFF_UP | IFF_RUNNING);
    assert_eq!(i.mtu, 1280);
    let teredo = [
        0x20, 0x01, 0, 0, 0x53, 0xaa, 0x06, 0x4c, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    for round in 0..10u8 {
        let up = ipv6_udp(V6_PEER, teredo, &[round; 200]);
        assert_eq!(syscalls::write(fd, &up), Ok(up.len()));
        let down = ipv6_udp(teredo, V6_PEER, &[round; 60]);
        stack::output(&name, AF_INET6, &sockaddr_in6(V6_PEER), &down).unwrap();
        assert_eq!(select_and_read(fd), down);
    }
    let received = ifnet::received(&name);
    assert_eq!(received.len(), 10);
    assert!(received.iter().all(|(f, _)| *f == AF_INET6), "C5.5");
    syscalls::close(fd).unwrap();
    assert_eq!(
        ifnet::interface(&name).unwrap().flags,
        IFF_POINTOPOINT | IFF_MULTICAST,
        "§10 step 5 undoes the cleared MULTICAST and NOARP"
    );
    unload_clean();
}
