//! The client replays of docs/tun-contract.md section 1 (C1..C7), step by step, IPv6 included.

mod common;

use common::{join_within, spawn};
use driver_tests::*;
use std::sync::mpsc;
use std::time::Duration;
use tunnel::ioctl::{TUNGIFNAME, TUNSIFHEAD, TUNSIFMODE, TUNSIFPID, TUNSLMODE};
use xnu_sim::abi::*;
use xnu_sim::proc::SimThread;
use xnu_sim::syscalls::{self, ioctl_int, O_NONBLOCK, O_RDWR};
use xnu_sim::{netinspect, proc, stack, Errno, Fd};

/// The units an open loop skipped, with why.
type OpenErrors = Vec<(usize, Errno)>;

/// The first of `units` that opens: a busy unit (EBUSY) moves on, and so does a missing node
/// (ENOENT) unless `stop_at_enoent`. Returns the unit and the errors seen.
fn open_first(
    units: impl IntoIterator<Item = usize>,
    stop_at_enoent: bool,
) -> (Option<(usize, Fd)>, OpenErrors) {
    let mut errors = Vec::new();
    for n in units {
        match syscalls::open(&dev(n), O_RDWR) {
            Ok(fd) => return (Some((n, fd)), errors),
            Err(e) => {
                assert!(e == Errno::EBUSY || e == Errno::ENOENT, "tun{n}: {e:?}");
                errors.push((n, e));
                if stop_at_enoent && e == Errno::ENOENT {
                    break;
                }
            }
        }
    }
    (None, errors)
}

/// The open loop of C1/C2 (`/dev/tun0..255`) or C3 (`..254`): the first success; a busy unit
/// (EBUSY) or a missing node (ENOENT) moves on. Returns the unit and the errors seen.
fn open_loop(last: usize) -> (Option<(usize, Fd)>, OpenErrors) {
    open_first(0..=last, false)
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

/// One select round (waiting at most `timeout`) then, if it says readable, one read of at most
/// `len` bytes, which must return a packet: "readable" means the next read returns a packet
/// (SEL-4), and a read never returns 0 (RD-3). `None` if select found nothing readable.
fn select_then_read(fd: Fd, len: usize, timeout: Duration) -> Option<Vec<u8>> {
    let (r, _) = syscalls::select(&[fd], &[], Some(timeout)).unwrap();
    if r.is_empty() {
        return None;
    }
    assert_eq!(r, vec![fd]);
    let mut buf = vec![0u8; len];
    let n = syscalls::read(fd, &mut buf);
    assert!(
        matches!(n, Ok(n) if n > 0),
        "SEL-4: select said readable, then read gave {n:?}"
    );
    buf.truncate(n.unwrap());
    Some(buf)
}

/// One select round then a read of one raw packet.
fn select_and_read(fd: Fd) -> Vec<u8> {
    select_then_read(fd, 65536, Duration::from_secs(10)).expect("select: not readable")
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
    let i = netinspect::interface(&name).unwrap();
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
            netinspect::take_received(&name),
            vec![(AF_INET, up4), (AF_INET6, up6)]
        );
    }
    // C1.8: `route delete -inet6 A` reaches no driver; close.
    syscalls::close(fd).unwrap();
    assert!(
        netinspect::interface(&name).unwrap().addresses.is_empty(),
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
    assert_eq!(netinspect::received("tun0"), vec![(AF_INET, up)]);
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
        netinspect::received(&name),
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
        netinspect::interface(&name).unwrap().state,
        netinspect::IfState::Attached,
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
    assert_eq!(netinspect::received("tun3"), vec![(AF_INET, up)]);
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
    assert_eq!(netinspect::received("tun0"), vec![(AF_INET, up)]);
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// The AF header of an IPv6 packet in AF-header mode: `htonl(AF_INET6)`, `00 00 00 1e` (§3).
const AF6_HEADER: [u8; 4] = [0, 0, 0, 0x1e];

/// miredo's Teredo address, given to tunN with `SIOCAIFADDR_IN6` (C5.5).
const TEREDO: [u8; 16] = [
    0x20, 0x01, 0, 0, 0x53, 0xaa, 0x06, 0x4c, 0, 0, 0, 0, 0, 0, 0, 1,
];

/// C5.1, miredo's open (`tun6_create`): `open("/dev/tun")`, and only on ENOENT the fallback
/// loop over `/dev/tun0`, `tun1`, … with no upper bound, which moves on past a busy unit and
/// stops at the first ENOENT.
fn miredo_open() -> (Option<(usize, Fd)>, OpenErrors) {
    assert_eq!(
        syscalls::open("/dev/tun", O_RDWR),
        Err(Errno::ENOENT),
        "C5.1: no cloning /dev/tun node, so the fallback loop runs"
    );
    open_first(0.., true)
}

/// C5.6, miredo's encapsulation thread (`tun6_recv`): a blocking `readv([4-byte header,
/// 65507])` in a loop; a packet whose header is not `htonl(AF_INET6)` is dropped, any other is
/// passed on to `accepted`. Ends at the first error, which it returns with the headers of the
/// packets it dropped.
fn miredo_reader(fd: Fd, accepted: mpsc::Sender<Vec<u8>>) -> SimThread<(Vec<[u8; 4]>, Errno)> {
    spawn(move || {
        let mut dropped = Vec::new();
        loop {
            let mut head = [0u8; 4];
            let mut buf = vec![0u8; 65507];
            let n = match syscalls::readv(fd, &mut [&mut head, &mut buf]) {
                Ok(n) => n,
                Err(e) => return (dropped, e),
            };
            assert!(n > 4, "RD-1, RD-3: a header and a packet, got {n} bytes");
            if head == AF6_HEADER {
                buf.truncate(n - 4);
                accepted.send(buf).expect("the test is listening");
            } else {
                dropped.push(head);
            }
        }
    })
}

/// C5, miredo on Darwin (`libtun6/tun6.c`, `relayd.c`), with tun0 held by another VPN: the
/// cloning open fails with ENOENT, the unit loop takes tun1, `if_nametoindex` works at once,
/// TUNSIFHEAD(1), a blocking fd, MTU 1280 / flags / SIOCAIFADDR_IN6 in that order, a reader
/// thread that keeps only `00 00 00 1e` packets, `writev` sends up to 65535 bytes, then flags
/// down and close, after which no address is left.
#[test]
fn c5_miredo_darwin() {
    boot_and_load();
    let holder = occupy_tun0();
    assert_eq!(
        netinspect::if_nametoindex("tun1"),
        0,
        "U-1: no ifnet before the first open"
    );
    let (found, errors) = miredo_open();
    let (unit, fd) = found.expect("C5.1: a free unit");
    assert_eq!(
        (unit, errors),
        (1, vec![(0, Errno::EBUSY)]),
        "C5.1: the busy tun0 is skipped, the loop stops at the first success"
    );
    let name = format!("tun{unit}");
    let index = netinspect::if_nametoindex(&name);
    assert_ne!(index, 0, "C5.2, U-1: tunN exists as soon as open returns");
    assert_eq!(
        ioctl_int(fd, TUNSIFHEAD, 1),
        Ok(1),
        "C5.3: TUNSIFHEAD(1) → 0"
    );
    assert_eq!(
        syscalls::fcntl_getfl(fd).map(|f| f & O_NONBLOCK),
        Ok(0),
        "C5.4: the fd stays blocking"
    );
    // C5.5, on an AF_INET6 socket, in this order.
    assert_eq!(stack::set_mtu(&name, 1280), Ok(()), "C5.5: SIOCSIFMTU 1280");
    assert_eq!(
        stack::set_flags(
            &name,
            IFF_NOARP | IFF_UP | IFF_RUNNING,
            IFF_MULTICAST | IFF_BROADCAST
        ),
        Ok(()),
        "C5.5: SIOCSIFFLAGS"
    );
    assert_eq!(
        stack::add_address(&name, AF_INET6, &TEREDO),
        Ok(()),
        "C5.5: SIOCAIFADDR_IN6 (U-8: PF_INET6 plumbed on demand)"
    );
    // C5.5's routing-socket RTM_ADD never reaches the driver; the simulator has no routing table.
    let i = netinspect::interface(&name).unwrap();
    assert_eq!(i.mtu, 1280, "C5.5");
    assert_eq!(
        i.flags,
        IFF_POINTOPOINT | IFF_NOARP | IFF_UP | IFF_RUNNING,
        "C5.5: any flag combination is accepted (§8)"
    );
    assert!(i.addresses.contains(&(AF_INET6, TEREDO.to_vec())), "C5.5");
    // Not a miredo step: an admin's `ifconfig tunN inet …`, so that PF_INET is plumbed (U-8) and
    // the stack can send IPv4 through tunN for the reader to drop.
    stack::add_address(&name, AF_INET, &[10, 0, 0, 1]).expect("ifconfig inet");
    // C5.6: the encapsulation thread, asleep in a blocking readv (C5.4).
    let (tx, rx) = mpsc::channel();
    let reader = miredo_reader(fd, tx);
    wait_for_sleepers(1);
    let wait = Duration::from_secs(10);
    for round in 0..10u8 {
        let down4 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], &[round; 40]);
        let down6 = ipv6_udp(TEREDO, V6_PEER, &[round; 60]);
        assert_eq!(send_ipv4(&name, &down4), Ok(()), "O5");
        assert_eq!(send_ipv6(&name, &down6), Ok(()), "O5");
        assert_eq!(
            rx.recv_timeout(wait),
            Ok(down6),
            "C5.6: `00 00 00 1e` + the IPv6 packet; the IPv4 one before it (OUT-3) is dropped"
        );
        let up = ipv6_udp(V6_PEER, TEREDO, &[round; 200]);
        assert_eq!(
            syscalls::writev(fd, &[&AF6_HEADER, &up]),
            Ok(4 + up.len()),
            "C5.6: writev([hdr, pkt])"
        );
        assert_eq!(netinspect::take_received(&name), vec![(AF_INET6, up)], "W9");
    }
    // C5.6: the largest send miredo makes, 65535 bytes (W2: 65539 with the header; WR-4: the
    // 1280 MTU is not enforced on write).
    let largest = ipv6_udp(V6_PEER, TEREDO, &vec![0x5a; 65535 - 48]);
    assert_eq!(largest.len(), 65535);
    assert_eq!(
        syscalls::writev(fd, &[&AF6_HEADER, &largest]),
        Ok(4 + 65535),
        "C5.6: a send capped at 65535"
    );
    assert_eq!(netinspect::take_received(&name), vec![(AF_INET6, largest)]);
    // C5.7: flags down (`tun6_setState(false)`: UP|RUNNING cleared, NOARP kept), then close.
    assert_eq!(
        stack::set_flags(
            &name,
            IFF_NOARP,
            IFF_UP | IFF_RUNNING | IFF_MULTICAST | IFF_BROADCAST
        ),
        Ok(()),
        "C5.7: SIOCSIFFLAGS down"
    );
    assert_eq!(
        netinspect::interface(&name).unwrap().flags,
        IFF_POINTOPOINT | IFF_NOARP
    );
    wait_for_sleepers(1); // the reader is back in its blocking readv (C5.4, RD-7: down is no error)
    assert_eq!(syscalls::close(fd), Ok(()), "C5.7: close");
    let (dropped, end) = join_within(reader, wait, "miredo's reader after close");
    assert_eq!(
        dropped,
        vec![AF_INET.to_be_bytes(); 10],
        "C5.6: every IPv4 packet was read with `00 00 00 02` and dropped"
    );
    assert_eq!(end, Errno::ENXIO, "RD-6: close wakes the blocked reader");
    let i = netinspect::interface(&name).unwrap();
    assert!(i.addresses.is_empty(), "§10.4: no address left: {i:?}");
    assert_eq!(
        (i.flags, i.mtu),
        (IFF_POINTOPOINT | IFF_MULTICAST, 1500),
        "§10.5 undoes NOARP, the cleared MULTICAST and the 1280 MTU"
    );
    assert_eq!(
        netinspect::if_nametoindex(&name),
        index,
        "U-4: tunN persists"
    );
    release(holder);
    unload_clean();
}

/// C5.1: miredo's unit loop has no upper bound; with every unit busy it stops at the first
/// ENOENT (`/dev/tun16`) and never tries `/dev/tun17`.
#[test]
fn c5_miredo_open_loop_stops_at_first_enoent() {
    boot_and_load();
    let held: Vec<Fd> = (0..16).map(open_unit).collect();
    let (found, errors) = miredo_open();
    assert!(found.is_none());
    let mut expected: OpenErrors = (0..16).map(|n| (n, Errno::EBUSY)).collect();
    expected.push((16, Errno::ENOENT));
    assert_eq!(errors, expected, "C5.1");
    for fd in held {
        syscalls::close(fd).unwrap();
    }
    unload_clean();
}

/// tinc's `MTU` (no jumbograms): it reads at most `MTU - 14` bytes raw, `MTU - 10` with the
/// 4-byte header.
const TINC_MTU: usize = 1518;

/// C6: tinc's open, `/dev/tun0` with `O_RDWR|O_NONBLOCK` and no unit loop. Its
/// `fcntl(F_SETFD, FD_CLOEXEC)` never reaches the driver (the simulator has no call for it).
fn tinc_open() -> Fd {
    syscalls::open("/dev/tun0", O_RDWR | O_NONBLOCK).expect("C6: /dev/tun0")
}

/// tinc's packet `i`: IPv4 from the stack toward the peer, at most `MTU - 14` bytes.
fn tinc_packet(i: usize) -> Vec<u8> {
    ipv4_udp(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        &vec![i as u8; (i * 37) % 1477],
    )
}

/// C6, tinc on Darwin (`src/bsd/device.c`): no ioctls; whenever `select` says readable, one
/// `read(fd, buf, MTU-14)` returns a packet (SEL-4): in bursts polled with a zero timeout, and
/// while another thread keeps enqueueing. tincd exits after 10 failed reads in a row; here not
/// one read may fail.
#[test]
fn c6_tinc_darwin() {
    boot_and_load();
    let fd = tinc_open();
    stack::add_address("tun0", AF_INET, &[10, 0, 0, 1]).expect("ifconfig inet"); // tinc-up: `ifconfig $INTERFACE 10.0.0.1 …`
    let zero = Duration::ZERO;
    assert_eq!(
        syscalls::select(&[fd], &[fd], Some(zero)),
        Ok((vec![], vec![fd])),
        "SEL-1, SEL-2: empty queue, writable and not readable"
    );
    assert_eq!(
        syscalls::read(fd, &mut [0u8; TINC_MTU - 14]),
        Err(Errno::EAGAIN),
        "RD-4: O_NONBLOCK"
    );
    // Bursts of 0..=4 packets, read while select says readable; then it says not readable.
    let mut i = 0;
    for round in 0..200 {
        let burst: Vec<Vec<u8>> = (0..round % 5).map(|k| tinc_packet(i + k)).collect();
        i += burst.len();
        for p in &burst {
            assert_eq!(send_ipv4("tun0", p), Ok(()), "O5");
        }
        let got: Vec<Vec<u8>> =
            std::iter::from_fn(|| select_then_read(fd, TINC_MTU - 14, zero)).collect();
        assert_eq!(got, burst, "C6 round {round}: SEL-4, RD-1, OUT-3");
        assert_eq!(
            syscalls::read(fd, &mut [0u8; TINC_MTU - 14]),
            Err(Errno::EAGAIN),
            "SEL-4: not readable, and the queue is indeed empty"
        );
    }
    // The stack enqueues from another thread while tinc selects and reads.
    let count = 1000;
    let producer = spawn(move || {
        for i in 0..count {
            // A full queue (O4) drops the packet; the producer sends it again so the sequence
            // stays known.
            while let Err(e) = send_ipv4("tun0", &tinc_packet(i)) {
                assert_eq!(e, Errno::ENOBUFS, "O4 is the only failure here");
                std::thread::yield_now();
            }
        }
    });
    for i in 0..count {
        assert_eq!(
            select_then_read(fd, TINC_MTU - 14, Duration::from_secs(10)),
            Some(tinc_packet(i)),
            "C6 packet {i}: SEL-4 with concurrent enqueues"
        );
    }
    join_within(producer, Duration::from_secs(10), "the producer");
    assert_eq!(
        syscalls::select(&[fd], &[], Some(zero)),
        Ok((vec![], vec![])),
        "SEL-1: drained, not readable"
    );
    syscalls::close(fd).unwrap();
    unload_clean();
}

/// C6, tinc's FreeBSD build: TUNSIFHEAD 0 or 1 (fatal on error), then
/// TUNSIFMODE(BROADCAST|MULTICAST), each → 0 while down; one read after select, framed as the
/// mode says (§3). Close restores the mode (§10.5) for the next run.
#[test]
fn c6_tinc_freebsd_build() {
    boot_and_load();
    for (head, len) in [(0, TINC_MTU - 14), (1, TINC_MTU - 10)] {
        let fd = tinc_open();
        assert_eq!(
            ioctl_int(fd, TUNSIFHEAD, head),
            Ok(head),
            "C6: TUNSIFHEAD({head}) → 0"
        );
        assert_eq!(
            ioctl_int(fd, TUNSIFMODE, i32::from(IFF_BROADCAST | IFF_MULTICAST)),
            Ok(0x8002),
            "C6: TUNSIFMODE(BROADCAST|MULTICAST) → 0 while down"
        );
        assert_eq!(
            netinspect::interface("tun0").unwrap().flags,
            IFF_BROADCAST | IFF_MULTICAST
        );
        stack::add_address("tun0", AF_INET, &[10, 0, 0, 1]).expect("ifconfig inet");
        let down = tinc_packet(usize::try_from(head).unwrap());
        assert_eq!(send_ipv4("tun0", &down), Ok(()), "O5");
        let framed = if head == 1 {
            [&AF_INET.to_be_bytes()[..], &down].concat()
        } else {
            down
        };
        assert_eq!(
            select_then_read(fd, len, Duration::from_secs(10)),
            Some(framed),
            "C6, §3: TUNSIFHEAD({head})"
        );
        syscalls::close(fd).unwrap();
        assert_eq!(
            netinspect::interface("tun0").unwrap().flags,
            IFF_POINTOPOINT | IFF_MULTICAST,
            "§10.5"
        );
    }
    unload_clean();
}

/// C7: wireguard-go's `Write`: the 4-byte AF header chosen by the version nibble, then the
/// packet, in one write.
fn wireguard_write(fd: Fd, packet: &[u8]) -> Result<usize, Errno> {
    let af = if packet[0] >> 4 == 6 {
        AF_INET6
    } else {
        AF_INET
    };
    syscalls::write(fd, &[&af.to_be_bytes()[..], packet].concat())
}

/// C7, wireguard-go's FreeBSD path (`tun/tun_freebsd.go`): its cloning `/dev/tun` open gets
/// ENOENT, so a launcher opens `/dev/tun4` and hands the fd over (`CreateTUNFromFile`):
/// TUNGIFNAME, TUNSIFHEAD(1), TUNSIFMODE, TUNSIFPID, SIOCSIFMTU, reads with the header
/// subtracted, header writes of both families, close, and `SIOCIFDESTROY` failing with the
/// interface kept.
#[test]
fn c7_wireguard_go_freebsd_path() {
    boot_and_load();
    assert_eq!(
        syscalls::open("/dev/tun", O_RDWR),
        Err(Errno::ENOENT),
        "C7: no cloning /dev/tun"
    );
    // The launcher opens the unit by name and passes the fd to wireguard-go (one open, U-3).
    let fd = open_unit(4);
    let wireguard = syscalls::fork();
    syscalls::close(fd).unwrap();
    proc::set_current_pid(wireguard);
    let mut req = [0xeeu8; 32];
    assert_eq!(
        syscalls::ioctl(fd, TUNGIFNAME, &mut req),
        Ok(()),
        "C7: TUNGIFNAME"
    );
    let mut expected = [0u8; 32];
    expected[..4].copy_from_slice(b"tun4");
    assert_eq!(req, expected, "C7: \"tun4\" NUL-padded, the rest zeroed");
    let name = "tun4";
    assert_eq!(ioctl_int(fd, TUNSIFHEAD, 1), Ok(1), "C7: TUNSIFHEAD(1) → 0");
    assert_eq!(
        ioctl_int(fd, TUNSIFMODE, i32::from(IFF_BROADCAST | IFF_MULTICAST)),
        Ok(0x8002),
        "C7: TUNSIFMODE → 0 while down"
    );
    assert_eq!(
        syscalls::ioctl(fd, TUNSIFPID, &mut []),
        Ok(()),
        "C7: TUNSIFPID"
    );
    assert_eq!(
        if_status(name),
        format!("\topen (pid {wireguard})\n"),
        "U-6: the status pid is wireguard-go's"
    );
    let index = netinspect::if_nametoindex(name);
    assert_ne!(index, 0, "C7: net.InterfaceByName");
    assert_eq!(stack::set_mtu(name, 1420), Ok(()), "C7: SIOCSIFMTU");
    // The addresses wg-quick gives the interface.
    stack::add_address(name, AF_INET, &[10, 7, 0, 1]).unwrap();
    stack::add_address(name, AF_INET6, &V6_LOCAL).unwrap();
    // C7: reads; wireguard-go subtracts the 4-byte header from the length.
    let down4 = ipv4_udp([10, 7, 0, 1], [10, 7, 0, 2], b"to wireguard");
    let down6 = ipv6_udp(V6_LOCAL, V6_PEER, b"to wireguard 6");
    stack::output(name, AF_INET, &sockaddr_in([10, 7, 0, 2]), &down4).unwrap();
    stack::output(name, AF_INET6, &sockaddr_in6(V6_PEER), &down6).unwrap();
    for (af, p) in [(AF_INET, &down4), (AF_INET6, &down6)] {
        let mut buf = vec![0u8; 65535];
        let n = syscalls::read(fd, &mut buf).unwrap();
        assert!(n >= 4, "C7: n < 4 is an error for wireguard-go");
        assert_eq!(buf[..4], af.to_be_bytes(), "§3");
        assert_eq!(&buf[4..n], &p[..], "C7: n - 4 bytes of packet");
    }
    // C7: header writes of both families.
    let up4 = ipv4_udp([10, 7, 0, 2], [10, 7, 0, 1], b"from wireguard");
    let up6 = ipv6_udp(V6_PEER, V6_LOCAL, b"from wireguard 6");
    assert_eq!(wireguard_write(fd, &up4), Ok(4 + up4.len()), "C7");
    assert_eq!(wireguard_write(fd, &up6), Ok(4 + up6.len()), "C7");
    assert_eq!(
        netinspect::take_received(name),
        vec![(AF_INET, up4), (AF_INET6, up6)],
        "W9"
    );
    // C7: Close: the last close, then `tunDestroy` (SIOCIFDESTROY) fails: no cloner.
    assert_eq!(syscalls::close(fd), Ok(()));
    assert_eq!(
        stack::destroy(name),
        Err(Errno::EINVAL),
        "C7: SIOCIFDESTROY fails"
    );
    let i = netinspect::interface(name).unwrap();
    assert_eq!(
        i.state,
        netinspect::IfState::Attached,
        "C7: the interface persists"
    );
    assert_eq!(netinspect::if_nametoindex(name), index, "U-4");
    assert!(i.addresses.is_empty(), "§10.4");
    assert_eq!(if_status(name), "\tclosed\n", "§10.5: pid cleared");
    proc::set_current_pid(proc::INIT_PID);
    unload_clean();
}
