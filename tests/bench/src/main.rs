//! driver-bench: per-packet cost of tunnel.kext's data path in the simulated kernel, beside the
//! copy every driver must pay and Linux's own tun driver. Driven by `scripts/bench.sh`; not a
//! test. Every figure of one table is measured in the same run.
//!
//! Modes (all print CSV rows on stdout):
//! - `l0 SIZES PACKETS RUNS`: in-process driver path, write → ifnet_input and output → read,
//!   ns/packet (median, min, max over RUNS) beside a plain copy of the same bytes; for tun0
//!   (paths `write`, `read`, `copy`: IP packets of SIZE bytes) and for tap0 (`tap-write`,
//!   `tap-read`, `tap-copy`: Ethernet frames of SIZE + 14 bytes carrying the same packets).
//! - `workload write|read|copy|tap-write|tap-read|tap-copy SIZE PACKETS`: a fixed loop for
//!   callgrind (instructions).
//! - `devloop write|read|echo SIZE SECONDS`: the simulated device through the syscall layer.
//! - `linuxtun write|read|echo SIZE SECONDS`: the same loops on Linux `/dev/net/tun`
//!   (`IFF_TUN|IFF_NO_PI`); run inside a network namespace the script created.

use driver_tests::{ipv4_udp, kmod, sockaddr_in};
use std::hint::black_box;
use std::time::{Duration, Instant};
use xnu_sim::abi::AF_INET;
use xnu_sim::syscalls::{self, Fd};
use xnu_sim::{link, netinspect, stack, Config};

const LOCAL: [u8; 4] = [10, 77, 0, 1];
const PEER: [u8; 4] = [10, 77, 0, 2];
/// The tap peer's MAC (the ARP entry for PEER on tap0).
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0x77, 0, 2];
/// Device `SIOCGIFADDR` (docs/tap-contract.md §9): the unit's MAC in bytes 0–5.
const SIOCGIFADDR_DEV: u32 = 0xc020_6921;
/// `FIONBIO`.
const FIONBIO: u32 = 0x8004_667e;
/// Packets per batch on the read side: below the driver's queue limit (128).
const BATCH: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).unwrap_or_else(|| usage()).as_str();
    match arg(0) {
        "l0" => l0(&sizes(arg(1)), num(arg(2)), num(arg(3))),
        "workload" => workload(arg(1), num(arg(2)), num(arg(3))),
        "devloop" => devloop(arg(1), num(arg(2)), num(arg(3)) as u64),
        "linuxtun" => linuxtun::run(arg(1), num(arg(2)), num(arg(3)) as u64),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: driver-bench l0 SIZES PACKETS RUNS | workload write|read|copy|tap-write|tap-read|tap-copy SIZE PACKETS | devloop|linuxtun write|read|echo SIZE SECONDS");
    std::process::exit(2);
}

fn num(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| usage())
}

fn sizes(s: &str) -> Vec<usize> {
    s.split(',').map(num).collect()
}

/// A UDP/IPv4 packet of exactly `size` bytes (at least the 28-byte headers).
fn packet(size: usize, from: [u8; 4], to: [u8; 4]) -> Vec<u8> {
    ipv4_udp(from, to, &vec![0x5a; size.max(28) - 28])
}

/// Boots the simulator with every strictness knob off and loads the driver.
fn boot() {
    // Strictness off, and packets counted rather than recorded.
    xnu_sim::boot(Config {
        capture: false,
        ..Config::fast()
    });
    xnu_sim::kextload(kmod()).expect("kextload");
}

/// Opens tun0 and brings it up (an address).
fn open_tun() -> Fd {
    let fd = syscalls::open("/dev/tun0", syscalls::O_RDWR).expect("open /dev/tun0");
    stack::add_address("tun0", AF_INET, &LOCAL).expect("ifconfig");
    fd
}

/// Boots, loads, opens tun0.
fn setup() -> Fd {
    boot();
    open_tun()
}

/// Opens tap0, gives it LOCAL (which plumbs IPv4 through XNU's Ethernet plumber and marks it
/// up), sets the ARP entry for PEER, and reads away what the address made the stack send (a
/// gratuitous ARP). Returns the descriptor (blocking) and tap0's MAC.
fn open_tap() -> (Fd, [u8; 6]) {
    let fd = syscalls::open("/dev/tap0", syscalls::O_RDWR).expect("open /dev/tap0");
    let mut req = [0u8; 32];
    syscalls::ioctl(fd, SIOCGIFADDR_DEV, &mut req).expect("SIOCGIFADDR");
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req[..6]);
    stack::add_address("tap0", AF_INET, &LOCAL).expect("ifconfig tap0");
    link::arp_set("tap0", PEER, PEER_MAC).expect("arp -s");
    syscalls::ioctl(fd, FIONBIO, &mut 1i32.to_ne_bytes()).expect("FIONBIO 1");
    let mut buf = vec![0u8; 2048];
    for _ in 0..16 {
        if syscalls::read(fd, &mut buf).is_err() {
            break;
        }
    }
    syscalls::ioctl(fd, FIONBIO, &mut 0i32.to_ne_bytes()).expect("FIONBIO 0");
    (fd, mac)
}

/// The Ethernet frame carrying `packet` from PEER_MAC to `mac` (IPv4).
fn frame(mac: [u8; 6], packet: &[u8]) -> Vec<u8> {
    let mut f = mac.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(packet);
    f
}

#[inline(never)]
fn write_path(fd: Fd, pkt: &[u8], packets: usize) {
    for i in 0..packets {
        syscalls::write(fd, pkt).expect("write");
        if i % 64 == 63 {
            black_box(netinspect::take_received("tun0"));
        }
    }
    black_box(netinspect::take_received("tun0"));
}

/// Queues `n` packets from the stack on `name` (not timed on the read side): on tap0 through
/// ARP's pre-output and XNU's framer (`ether_frameout`), as IPv4 leaves an Ethernet interface.
fn inject_on(name: &str, pkt: &[u8], n: usize) {
    let dest = sockaddr_in(PEER);
    for _ in 0..n {
        stack::output(name, AF_INET, &dest, pkt).expect("output");
    }
}

fn inject(pkt: &[u8], n: usize) {
    inject_on("tun0", pkt, n);
}

#[inline(never)]
fn read_n(fd: Fd, buf: &mut [u8], n: usize) {
    for _ in 0..n {
        black_box(syscalls::read(fd, buf).expect("read"));
    }
}

#[inline(never)]
fn copy_path(pkt: &[u8], buf: &mut [u8], packets: usize) {
    for _ in 0..packets {
        buf[..pkt.len()].copy_from_slice(black_box(pkt));
        black_box(&mut *buf);
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// One L0 measurement of `runs` runs: write `write` `packets` times; read `packets` packets
/// the stack queued as `inject` (a packet `out`) in batches; copy `copy`. ns/packet each.
struct L0Paths<'a> {
    fd: Fd,
    name: &'a str,
    write: &'a [u8],
    out: &'a [u8],
    copy: &'a [u8],
    read_len: usize,
}

fn l0_paths(p: &L0Paths, packets: usize, runs: usize) -> [Vec<f64>; 3] {
    let mut buf = vec![0u8; p.read_len + 64];
    let (mut w, mut r, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        write_path(p.fd, p.write, packets);
        w.push(t.elapsed().as_nanos() as f64 / packets as f64);

        let mut read_ns = 0.0;
        let mut done = 0;
        while done < packets {
            let n = BATCH.min(packets - done);
            inject_on(p.name, p.out, n);
            let t = Instant::now();
            read_n(p.fd, &mut buf, n);
            read_ns += t.elapsed().as_nanos() as f64;
            done += n;
        }
        r.push(read_ns / packets as f64);

        let t = Instant::now();
        copy_path(p.copy, &mut buf, packets);
        c.push(t.elapsed().as_nanos() as f64 / packets as f64);
    }
    [w, r, c]
}

fn l0(sizes: &[usize], packets: usize, runs: usize) {
    let fd = setup();
    let (tap, mac) = open_tap();
    println!("level,size,path,median_ns,min_ns,max_ns");
    for &size in sizes {
        let pkt = packet(size, PEER, LOCAL);
        let tun = L0Paths {
            fd,
            name: "tun0",
            write: &pkt,
            out: &pkt,
            copy: &pkt,
            read_len: size,
        };
        let [w, r, c] = l0_paths(&tun, packets, runs);
        for (path, v) in [("write", w), ("read", r), ("copy", c)] {
            let (med, min, max) = stats(v);
            println!("L0,{size},{path},{med:.1},{min:.1},{max:.1}");
        }
        // tap0: the same packet in a frame (write), the stack's reply framed by XNU (read).
        let tap_frame = frame(mac, &pkt);
        let out = packet(size, LOCAL, PEER);
        let tap0 = L0Paths {
            fd: tap,
            name: "tap0",
            write: &tap_frame,
            out: &out,
            copy: &tap_frame,
            read_len: tap_frame.len(),
        };
        let [w, r, c] = l0_paths(&tap0, packets, runs);
        for (path, v) in [("tap-write", w), ("tap-read", r), ("tap-copy", c)] {
            let (med, min, max) = stats(v);
            println!("L0,{size},{path},{med:.1},{min:.1},{max:.1}");
        }
    }
}

/// A fixed loop for instruction counting: callgrind collects only inside the driver's entry
/// point (`--toggle-collect=tun_dev_write` / `tun_dev_read`, which tun and tap units share:
/// only one kind is used per run), or the copy loop.
fn workload(path: &str, size: usize, packets: usize) {
    if let Some(tap_path) = path.strip_prefix("tap-") {
        boot();
        let (fd, mac) = open_tap();
        let pkt = frame(mac, &packet(size, PEER, LOCAL));
        let out = packet(size, LOCAL, PEER);
        let mut buf = vec![0u8; pkt.len() + 64];
        match tap_path {
            "write" => write_path(fd, &pkt, packets),
            "read" => {
                let mut done = 0;
                while done < packets {
                    let n = BATCH.min(packets - done);
                    inject_on("tap0", &out, n);
                    read_n(fd, &mut buf, n);
                    done += n;
                }
            }
            "copy" => copy_path(&pkt, &mut buf, packets),
            _ => usage(),
        }
        return;
    }
    let fd = setup();
    let pkt = packet(size, PEER, LOCAL);
    let mut buf = vec![0u8; size + 64];
    match path {
        "write" => write_path(fd, &pkt, packets),
        "read" => {
            let mut done = 0;
            while done < packets {
                let n = BATCH.min(packets - done);
                inject(&pkt, n);
                read_n(fd, &mut buf, n);
                done += n;
            }
        }
        "copy" => copy_path(&pkt, &mut buf, packets),
        _ => usage(),
    }
}

/// The simulated device loops, through the syscall layer, for `seconds`: packets/s.
fn devloop(mode: &str, size: usize, seconds: u64) {
    let fd = setup();
    let request = packet(size, PEER, LOCAL);
    let reply = packet(size, LOCAL, PEER);
    let mut buf = vec![0u8; size + 64];
    let dest = sockaddr_in(PEER);
    let end = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n: u64 = 0;
    while Instant::now() < end {
        for _ in 0..64 {
            match mode {
                "write" => {
                    syscalls::write(fd, &request).expect("write");
                }
                "read" => {
                    stack::output("tun0", AF_INET, &dest, &reply).expect("output");
                    black_box(syscalls::read(fd, &mut buf).expect("read"));
                }
                "echo" => {
                    // The stack answers each request it received, as Linux answers an echo
                    // request (the write returning means the stack has it).
                    syscalls::write(fd, &request).expect("write");
                    stack::output("tun0", AF_INET, &dest, &reply).expect("output");
                    black_box(syscalls::read(fd, &mut buf).expect("read"));
                }
                _ => usage(),
            }
            n += 1;
        }
        black_box(netinspect::take_received("tun0"));
    }
    let pps = n as f64 / start.elapsed().as_secs_f64();
    println!("L1,{size},sim-{mode},{pps:.0}");
}

mod linuxtun {
    //! Linux's in-kernel tun, driven by the same loops.
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_NO_PI: libc::c_short = 0x1000;
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const NAME: &str = "bt0";

    fn open_tun() -> OwnedFd {
        // SAFETY: plain syscalls on a path and a local ifreq buffer.
        unsafe {
            let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR);
            assert!(
                fd >= 0,
                "open /dev/net/tun: {}",
                std::io::Error::last_os_error()
            );
            let mut ifr = [0u8; 40];
            ifr[..NAME.len()].copy_from_slice(NAME.as_bytes());
            ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
            let rc = libc::ioctl(fd, TUNSETIFF, ifr.as_mut_ptr());
            assert!(rc == 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
            OwnedFd::from_raw_fd(fd)
        }
    }

    fn sh(cmd: &str) {
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "command failed: {cmd}");
    }

    fn icmp_echo(size: usize) -> Vec<u8> {
        let mut p = packet(size, PEER, LOCAL);
        p[9] = 1; // ICMP
        p[10] = 0;
        p[11] = 0;
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20] = 8; // echo request
        p[21] = 0;
        p[22] = 0;
        p[23] = 0;
        let c = checksum(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    pub fn run(mode: &str, size: usize, seconds: u64) {
        let tun = open_tun();
        let [a, b, c, d] = LOCAL;
        sh(&format!(
            "ip addr add {a}.{b}.{c}.{d}/24 dev {NAME} && ip link set {NAME} up"
        ));
        let fd = tun.as_raw_fd();
        // Writes go to an address nobody answers for (forwarding is off in the namespace).
        let sink = packet(size, PEER, [10, 77, 0, 99]);
        let echo = icmp_echo(size);
        let sock =
            std::net::UdpSocket::bind((std::net::Ipv4Addr::from(LOCAL), 0)).expect("udp socket");
        let payload = vec![0x5a; size.max(28) - 28];
        let mut buf = vec![0u8; size + 64];
        let end = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut n: u64 = 0;
        while Instant::now() < end {
            for _ in 0..64 {
                // SAFETY: read/write on our tun fd with local buffers of the given lengths.
                unsafe {
                    match mode {
                        "write" => {
                            let w = libc::write(fd, sink.as_ptr().cast(), sink.len());
                            assert!(w == sink.len() as isize);
                        }
                        "read" => {
                            sock.send_to(&payload, (std::net::Ipv4Addr::from(PEER), 9))
                                .expect("send");
                            let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                            assert!(r > 0);
                        }
                        "echo" => {
                            let w = libc::write(fd, echo.as_ptr().cast(), echo.len());
                            assert!(w == echo.len() as isize);
                            let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                            assert!(r > 0);
                        }
                        _ => usage(),
                    }
                }
                n += 1;
            }
        }
        let pps = n as f64 / start.elapsed().as_secs_f64();
        println!("L1,{size},linux-{mode},{pps:.0}");
    }
}
