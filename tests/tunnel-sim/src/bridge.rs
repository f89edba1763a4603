//! The "IP stack" role: packets the Linux stack routes into a real tun device go to the
//! driver's interface output (`xnu_sim::stack::output`); packets the driver passes to
//! `ifnet_input` come back through the sim's push hook (`xnu_sim::netinspect::set_input_hook`)
//! and are written into the Linux device.

use crate::linux_tun::LinuxTun;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use xnu_sim::abi::{AF_INET, AF_INET6};
use xnu_sim::{netinspect, stack};

/// `IFF_UP`.
const IFF_UP: u16 = 0x1;
/// `IFF_RUNNING`.
const IFF_RUNNING: u16 = 0x40;

/// The addresses of one side: the sim's `tunN` and the Linux tun paired with it carry the
/// same local/peer pair (the Linux one is what the namespace's stack uses).
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    /// Local IPv4 address.
    pub v4: [u8; 4],
    /// Point-to-point peer.
    pub peer4: [u8; 4],
    /// Local IPv6 address.
    pub v6: [u8; 16],
    /// Point-to-point peer.
    pub peer6: [u8; 16],
}

/// Addresses of unit `unit` of the two-unit topology: unit 0 is 10.66.0.1/fd66::1, unit 1
/// is 10.66.0.2/fd66::2, each the other's peer.
pub fn addrs(unit: usize) -> Addrs {
    let host = |u: usize| (u % 2) as u8 + 1;
    let v6 = |h: u8| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[1] = 0x66;
        a[15] = h;
        a
    };
    Addrs {
        v4: [10, 66, 0, host(unit)],
        peer4: [10, 66, 0, host(unit + 1)],
        v6: v6(host(unit)),
        peer6: v6(host(unit + 1)),
    }
}

/// Formats an IPv6 address the way `ip` accepts it.
pub fn v6_text(a: &[u8; 16]) -> String {
    std::net::Ipv6Addr::from(*a).to_string()
}

/// An interface address (4 or 16 bytes) as text, the way `ifconfig` prints it.
pub fn addr_text(a: &[u8]) -> Option<String> {
    match a.len() {
        4 => Some(std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()),
        16 => <[u8; 16]>::try_from(a).ok().map(|b| v6_text(&b)),
        _ => None,
    }
}

/// The host's own counters for one unit (next to the driver's ifnet counters).
#[derive(Default)]
pub struct Counters {
    /// Packets the Linux stack routed into the Linux tun (read by the pump).
    pub linux_rx_packets: AtomicU64,
    /// Their bytes.
    pub linux_rx_bytes: AtomicU64,
    /// Of those, accepted by the driver's output.
    pub output_ok: AtomicU64,
    /// Of those, refused by the driver's output (queue full, unit closed, interface down).
    pub output_err: AtomicU64,
    /// ICMP/ICMPv6 echo requests among the packets handed to output.
    pub echo_requests: AtomicU64,
    /// ICMP/ICMPv6 echo replies among them.
    pub echo_replies: AtomicU64,
    /// Packets the driver passed to `ifnet_input` (pushed by the sim hook).
    pub input_packets: AtomicU64,
    /// Their bytes.
    pub input_bytes: AtomicU64,
    /// Of those, written into the Linux tun.
    pub linux_tx_packets: AtomicU64,
    /// Writes into the Linux tun that failed.
    pub linux_tx_errors: AtomicU64,
    /// BPF taps the driver made, inbound, of those the simulator's tap log still held when
    /// the host read it (it keeps the last `netinspect::TAP_LOG`; the exact total of both
    /// directions is `netinspect::tap_count`, reported as `bpf_taps`).
    pub bpf_in: AtomicU64,
    /// And outbound, likewise.
    pub bpf_out: AtomicU64,
}

/// One sim unit bridged to one Linux tun.
pub struct Side {
    /// Unit number: the sim's `tunN` and `/dev/tunN`.
    pub unit: usize,
    /// The Linux tun in the side's namespace.
    pub tun: LinuxTun,
    /// Counters.
    pub counters: Counters,
}

impl Side {
    /// The sim interface name.
    pub fn sim_name(&self) -> String {
        format!("tun{}", self.unit)
    }
}

/// What kind of ICMP echo `packet` is: `Some(true)` request, `Some(false)` reply.
pub fn echo_kind(packet: &[u8]) -> Option<bool> {
    match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0xf) * 4;
            if *packet.get(9)? != 1 {
                return None;
            }
            match *packet.get(ihl)? {
                8 => Some(true),
                0 => Some(false),
                _ => None,
            }
        }
        6 => {
            if *packet.get(6)? != 58 {
                return None;
            }
            match *packet.get(40)? {
                128 => Some(true),
                129 => Some(false),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The family and destination sockaddr the stack would hand to output for `packet` (a
/// point-to-point route: the destination is the packet's own).
pub fn route(packet: &[u8]) -> Option<(u32, Vec<u8>)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let mut sa = vec![0u8; 16];
            sa[0] = 16;
            sa[1] = AF_INET as u8;
            sa[4..8].copy_from_slice(&packet[16..20]);
            Some((AF_INET, sa))
        }
        6 if packet.len() >= 40 => {
            let mut sa = vec![0u8; 28];
            sa[0] = 28;
            sa[1] = AF_INET6 as u8;
            sa[8..24].copy_from_slice(&packet[24..40]);
            Some((AF_INET6, sa))
        }
        _ => None,
    }
}

/// Configures the sim's `tunN` the way a tun client runs `ifconfig` after opening the device:
/// both addresses (once), then up (close took it down, section 10 of the contract).
pub fn configure_sim_interface(unit: usize) {
    let name = format!("tun{unit}");
    let a = addrs(unit);
    let have = netinspect::interface(&name)
        .map(|i| i.addresses)
        .unwrap_or_default();
    if !have.iter().any(|(f, _)| *f == AF_INET) {
        let _ = stack::add_address(&name, AF_INET, &a.v4);
    }
    if !have.iter().any(|(f, _)| *f == AF_INET6) {
        let _ = stack::add_address(&name, AF_INET6, &a.v6);
    }
    let _ = stack::set_flags(&name, IFF_UP | IFF_RUNNING, 0);
}

/// The running bridge: one pump thread per side (Linux → driver output) and one sim input
/// hook per side (driver input → Linux).
pub struct Bridge {
    /// The sides, unit 0 first.
    pub sides: Vec<Arc<Side>>,
    stop: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Starts bridging each side.
    pub fn start(sides: Vec<Side>) -> Bridge {
        let stop = Arc::new(AtomicBool::new(false));
        let sides: Vec<Arc<Side>> = sides.into_iter().map(Arc::new).collect();
        let mut pumps = Vec::new();
        for side in &sides {
            let hook_side = Arc::clone(side);
            netinspect::set_input_hook(
                &side.sim_name(),
                Some(Arc::new(move |_family, packet: &[u8]| {
                    let c = &hook_side.counters;
                    c.input_packets.fetch_add(1, Ordering::Relaxed);
                    c.input_bytes
                        .fetch_add(packet.len() as u64, Ordering::Relaxed);
                    match hook_side.tun.write(packet) {
                        Ok(_) => c.linux_tx_packets.fetch_add(1, Ordering::Relaxed),
                        Err(_) => c.linux_tx_errors.fetch_add(1, Ordering::Relaxed),
                    };
                })),
            );
            let side = Arc::clone(side);
            let stop = Arc::clone(&stop);
            pumps.push(std::thread::spawn(move || pump(&side, &stop)));
        }
        Bridge { sides, stop, pumps }
    }

    /// Moves what BPF saw into the counters (keeps the sim's tap log from growing).
    pub fn drain_taps(&self) {
        for side in &self.sides {
            for tap in netinspect::take_taps(&side.sim_name()) {
                let c = if tap.outbound {
                    &side.counters.bpf_out
                } else {
                    &side.counters.bpf_in
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `key=value` lines: the host's counters and the driver's ifnet counters, per unit.
    pub fn stats_text(&self) -> String {
        self.drain_taps();
        let mut out = String::new();
        for side in &self.sides {
            let u = side.unit;
            let c = &side.counters;
            let l = |v: &AtomicU64| v.load(Ordering::Relaxed);
            let rows: [(&str, u64); 12] = [
                ("linux_rx_packets", l(&c.linux_rx_packets)),
                ("linux_rx_bytes", l(&c.linux_rx_bytes)),
                ("output_ok", l(&c.output_ok)),
                ("output_err", l(&c.output_err)),
                ("echo_requests", l(&c.echo_requests)),
                ("echo_replies", l(&c.echo_replies)),
                ("input_packets", l(&c.input_packets)),
                ("input_bytes", l(&c.input_bytes)),
                ("linux_tx_packets", l(&c.linux_tx_packets)),
                ("linux_tx_errors", l(&c.linux_tx_errors)),
                ("bpf_in", l(&c.bpf_in)),
                ("bpf_out", l(&c.bpf_out)),
            ];
            for (k, v) in rows {
                let _ = writeln!(out, "unit{u}.{k}={v}");
            }
            if let Some(i) = netinspect::interface(&side.sim_name()) {
                let s = i.stats;
                for (k, v) in [
                    ("ipackets", s.ipackets),
                    ("ibytes", s.ibytes),
                    ("ierrors", s.ierrors),
                    ("opackets", s.opackets),
                    ("obytes", s.obytes),
                    ("oerrors", s.oerrors),
                    ("iqdrops", s.iqdrops),
                ] {
                    let _ = writeln!(out, "unit{u}.if_{k}={v}");
                }
                let _ = writeln!(out, "unit{u}.if_flags={:#x}", i.flags);
                let bpf = netinspect::tap_count(&side.sim_name());
                let _ = writeln!(out, "unit{u}.bpf_taps={bpf}");
                // The addresses, for the ifconfig stand-in of tests/suites/selftest.sh.
                let addrs: Vec<String> = i
                    .addresses
                    .iter()
                    .filter_map(|(_, a)| addr_text(a))
                    .collect();
                let _ = writeln!(out, "unit{u}.if_addrs={}", addrs.join(","));
            }
        }
        out
    }

    /// Stops the pumps and removes the hooks.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for p in self.pumps {
            let _ = p.join();
        }
        for side in &self.sides {
            netinspect::set_input_hook(&side.sim_name(), None);
        }
    }
}

/// Linux → driver: every packet the namespace's stack routes into the Linux tun is handed
/// to the driver's output through the sim's DLIL path (pre-output, framer, output).
fn pump(side: &Side, stop: &AtomicBool) {
    let name = side.sim_name();
    let c = &side.counters;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let n = match side.tun.read_timeout(&mut buf, Duration::from_millis(100)) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("tunnel-sim: read {}: {e}", side.tun.name);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let packet = &buf[..n];
        c.linux_rx_packets.fetch_add(1, Ordering::Relaxed);
        c.linux_rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
        let Some((family, dest)) = route(packet) else {
            c.output_err.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match stack::output(&name, family, &dest, packet) {
            Ok(()) => {
                c.output_ok.fetch_add(1, Ordering::Relaxed);
                match echo_kind(packet) {
                    Some(true) => c.echo_requests.fetch_add(1, Ordering::Relaxed),
                    Some(false) => c.echo_replies.fetch_add(1, Ordering::Relaxed),
                    None => 0,
                };
            }
            Err(_) => {
                c.output_err.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_units_are_each_others_peer() {
        assert_eq!(addrs(0).v4, [10, 66, 0, 1]);
        assert_eq!(addrs(0).peer4, addrs(1).v4);
        assert_eq!(addrs(1).peer6, addrs(0).v6);
        assert_eq!(v6_text(&addrs(1).v6), "fd66::2");
    }

    #[test]
    fn route_and_echo_classification() {
        let mut v4 = vec![0u8; 28];
        v4[0] = 0x45;
        v4[9] = 1;
        v4[16..20].copy_from_slice(&[10, 66, 0, 2]);
        v4[20] = 8;
        let (f, sa) = route(&v4).unwrap();
        assert_eq!(
            (f, sa[0], sa[1], &sa[4..8]),
            (AF_INET, 16, 2, &[10, 66, 0, 2][..])
        );
        assert_eq!(echo_kind(&v4), Some(true));
        v4[20] = 0;
        assert_eq!(echo_kind(&v4), Some(false));
        v4[9] = 17;
        assert_eq!(echo_kind(&v4), None);
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[6] = 58;
        v6[40] = 129;
        v6[24] = 0xfd;
        let (f, sa) = route(&v6).unwrap();
        assert_eq!((f, sa[0], sa[8]), (AF_INET6, 28, 0xfd));
        assert_eq!(echo_kind(&v6), Some(false));
        assert_eq!(route(&[0x45, 0, 0]), None);
        assert_eq!(route(&[0x10; 40]), None);
    }
}
