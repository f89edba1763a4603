//! The stack role for tap units (docs/tap-contract.md section 17, "Real traffic"): each sim
//! `tapN` is paired with a real Linux tap (`IFF_TAP|IFF_NO_PI`) in a network namespace.
//!
//! - The Linux tap carries the sim unit's MAC (read through the device's `SIOCGIFADDR`, TI-1),
//!   so `ether_demux` on `tapN` sees its own unicast address in the frames meant for it, and a
//!   frame for any other unicast address keeps its `M_PROMISC` flag and stays dropped.
//! - The sim `tapN` is only marked up (`SIOCSIFFLAGS`, no address: nothing is plumbed, so the
//!   simulated stack neither answers ARP/ND nor takes any frame itself).
//! - Every frame the Linux tap emits (the namespace's ARP, ND, IPv4, IPv6) is handed to the
//!   driver as raw output (`ifnet_output_raw`, as the stack's own ARP and a bridge send).
//! - Every frame the frame-level input hook sees on `tapN` without `M_PROMISC`, whatever the
//!   demux answered (no protocol is attached, so it answers `ENOENT`), is written into the
//!   Linux tap.
//!
//! The hooks also classify what crosses them (ARP, neighbour solicitations and advertisements,
//! ICMP echo), so a test can show that neighbour resolution went through the driver.

use crate::linux_tun::LinuxTun;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use xnu_sim::netinspect::{self, FrameIn, M_PROMISC};
use xnu_sim::syscalls::{self, O_RDWR};
use xnu_sim::{stack, Errno};

/// `IFF_UP`.
const IFF_UP: u16 = 0x1;
/// `IFF_RUNNING`.
const IFF_RUNNING: u16 = 0x40;
/// Device `SIOCGIFADDR` on `/dev/tapN` (`_IOWR('i', 33, struct ifreq)`): bytes 0–5 of the
/// 32-byte argument come back as the unit's MAC register (docs/tap-contract.md §9, TI-1).
pub const SIOCGIFADDR_DEV: u32 = 0xc020_6921;

/// The Linux tap paired with sim unit `unit`: `ta0` in namespace A, `tb0` in namespace B.
pub fn linux_name(unit: usize) -> &'static str {
    if unit.is_multiple_of(2) {
        "ta0"
    } else {
        "tb0"
    }
}

/// The addresses the Linux tap of `unit` carries: 10.77.0.1/24 and fd77::1/64 for unit 0,
/// .2 and ::2 for unit 1 (one Ethernet segment, /24 and /64).
pub fn linux_addrs(unit: usize) -> (String, String) {
    let host = unit % 2 + 1;
    (format!("10.77.0.{host}/24"), format!("fd77::{host}/64"))
}

/// Formats a MAC address the way `ip link set ... address` takes it.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The MAC of sim `tapN`, read the way tinc does (TC5): open `/dev/tapN` (which creates the
/// interface on first open), device `SIOCGIFADDR`, close (the MAC stays, TA-2).
pub fn sim_mac(unit: usize) -> Result<[u8; 6], Errno> {
    let fd = syscalls::open(&format!("/dev/tap{unit}"), O_RDWR)?;
    let mut req = [0u8; 32];
    let rc = syscalls::ioctl(fd, SIOCGIFADDR_DEV, &mut req);
    syscalls::close(fd)?;
    rc?;
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req[..6]);
    Ok(mac)
}

/// Marks sim `tapN` up the way `ifconfig tapN up` does after a client opened the device
/// (close took it down, TC-2); no address, so no protocol is plumbed (section 17, step 3).
pub fn configure_sim_tap(unit: usize) {
    let _ = stack::set_flags(&format!("tap{unit}"), IFF_UP | IFF_RUNNING, 0);
}

/// What a frame is, as far as the traffic checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Ethertype 0x0806.
    Arp,
    /// ICMPv6 type 135.
    NeighborSolicit,
    /// ICMPv6 type 136.
    NeighborAdvert,
    /// ICMP type 8, ICMPv6 type 128.
    EchoRequest,
    /// ICMP type 0, ICMPv6 type 129.
    EchoReply,
    /// Anything else.
    Other,
}

/// Classifies an untagged Ethernet frame (destination, source, type, payload).
pub fn classify(frame: &[u8]) -> FrameKind {
    let Some(ethertype) = frame.get(12..14) else {
        return FrameKind::Other;
    };
    let ip = &frame[14..];
    match u16::from_be_bytes([ethertype[0], ethertype[1]]) {
        0x0806 => FrameKind::Arp,
        0x0800 => {
            let (Some(first), Some(&proto)) = (ip.first(), ip.get(9)) else {
                return FrameKind::Other;
            };
            let ihl = usize::from(first & 0xf) * 4;
            match (proto, ip.get(ihl)) {
                (1, Some(8)) => FrameKind::EchoRequest,
                (1, Some(0)) => FrameKind::EchoReply,
                _ => FrameKind::Other,
            }
        }
        0x86dd => match (ip.get(6), ip.get(40)) {
            (Some(58), Some(128)) => FrameKind::EchoRequest,
            (Some(58), Some(129)) => FrameKind::EchoReply,
            (Some(58), Some(135)) => FrameKind::NeighborSolicit,
            (Some(58), Some(136)) => FrameKind::NeighborAdvert,
            _ => FrameKind::Other,
        },
        _ => FrameKind::Other,
    }
}

/// Whether a frame the input hook saw goes on to the Linux tap: not when `ether_demux` marked
/// it `M_PROMISC` (unicast for another address), which `dlil_input_packet_list` drops.
pub fn forwards_to_linux(frame: &FrameIn) -> bool {
    frame.flags & M_PROMISC == 0
}

/// Counts of the frame kinds seen at one hook.
#[derive(Default)]
pub struct KindCounters {
    /// ARP frames.
    pub arp: AtomicU64,
    /// Neighbour solicitations.
    pub ns: AtomicU64,
    /// Neighbour advertisements.
    pub na: AtomicU64,
    /// ICMP/ICMPv6 echo requests.
    pub echo_requests: AtomicU64,
    /// ICMP/ICMPv6 echo replies.
    pub echo_replies: AtomicU64,
}

impl KindCounters {
    fn count(&self, frame: &[u8]) {
        let c = match classify(frame) {
            FrameKind::Arp => &self.arp,
            FrameKind::NeighborSolicit => &self.ns,
            FrameKind::NeighborAdvert => &self.na,
            FrameKind::EchoRequest => &self.echo_requests,
            FrameKind::EchoReply => &self.echo_replies,
            FrameKind::Other => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn rows(&self, prefix: &str) -> Vec<(String, u64)> {
        let l = |v: &AtomicU64| v.load(Ordering::Relaxed);
        vec![
            (format!("{prefix}_arp"), l(&self.arp)),
            (format!("{prefix}_ns"), l(&self.ns)),
            (format!("{prefix}_na"), l(&self.na)),
            (format!("{prefix}_echo_requests"), l(&self.echo_requests)),
            (format!("{prefix}_echo_replies"), l(&self.echo_replies)),
        ]
    }
}

/// The host's counters for one tap unit (next to the driver's ifnet counters).
#[derive(Default)]
pub struct TapCounters {
    /// Frames the Linux stack sent into the Linux tap (read by the pump).
    pub linux_rx_frames: AtomicU64,
    /// Their bytes.
    pub linux_rx_bytes: AtomicU64,
    /// Of those, accepted by the driver's output (raw output).
    pub output_ok: AtomicU64,
    /// Of those, refused by it (unit closed, interface down, queue full).
    pub output_err: AtomicU64,
    /// Frames the output hook saw the driver accept, by kind.
    pub out_kinds: KindCounters,
    /// Frames the input hook saw (given to `ifnet_input` by the driver).
    pub in_frames: AtomicU64,
    /// Their bytes.
    pub in_bytes: AtomicU64,
    /// Of those, marked `M_PROMISC` by `ether_demux` (not written to Linux).
    pub in_promisc: AtomicU64,
    /// And their bytes.
    pub in_promisc_bytes: AtomicU64,
    /// Frames the input hook saw, by kind.
    pub in_kinds: KindCounters,
    /// Frames written into the Linux tap.
    pub linux_tx_frames: AtomicU64,
    /// Writes into the Linux tap that failed.
    pub linux_tx_errors: AtomicU64,
    /// BPF taps the driver made, inbound, of those the simulator's tap log still held when
    /// the host read it (it keeps the last `netinspect::TAP_LOG`; the exact total of both
    /// directions is `netinspect::tap_count`, reported as `bpf_taps`).
    pub bpf_in: AtomicU64,
    /// And outbound, likewise.
    pub bpf_out: AtomicU64,
}

/// One sim tap unit bridged to one Linux tap.
pub struct TapSide {
    /// Unit number: the sim's `tapN` and `/dev/tapN`.
    pub unit: usize,
    /// The Linux tap in the side's namespace.
    pub dev: LinuxTun,
    /// The MAC both carry.
    pub mac: [u8; 6],
    /// Counters.
    pub counters: TapCounters,
}

impl TapSide {
    /// The sim interface name.
    pub fn sim_name(&self) -> String {
        format!("tap{}", self.unit)
    }
}

/// The running bridge: one pump thread per side (Linux → driver raw output) and two
/// frame hooks per side (input: driver → Linux; output: counting).
pub struct TapBridge {
    /// The sides, unit 0 first.
    pub sides: Vec<Arc<TapSide>>,
    stop: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<()>>,
}

impl TapBridge {
    /// Starts bridging each side.
    pub fn start(sides: Vec<TapSide>) -> TapBridge {
        let stop = Arc::new(AtomicBool::new(false));
        let sides: Vec<Arc<TapSide>> = sides.into_iter().map(Arc::new).collect();
        let mut pumps = Vec::new();
        for side in &sides {
            let name = side.sim_name();
            let hook_side = Arc::clone(side);
            netinspect::set_frame_in_hook(
                &name,
                Some(Arc::new(move |frame: &FrameIn| {
                    let c = &hook_side.counters;
                    let len = frame.bytes.len() as u64;
                    c.in_frames.fetch_add(1, Ordering::Relaxed);
                    c.in_bytes.fetch_add(len, Ordering::Relaxed);
                    c.in_kinds.count(&frame.bytes);
                    if !forwards_to_linux(frame) {
                        c.in_promisc.fetch_add(1, Ordering::Relaxed);
                        c.in_promisc_bytes.fetch_add(len, Ordering::Relaxed);
                        return;
                    }
                    match hook_side.dev.write(&frame.bytes) {
                        Ok(_) => c.linux_tx_frames.fetch_add(1, Ordering::Relaxed),
                        Err(_) => c.linux_tx_errors.fetch_add(1, Ordering::Relaxed),
                    };
                })),
            );
            let hook_side = Arc::clone(side);
            netinspect::set_frame_out_hook(
                &name,
                Some(Arc::new(move |frame: &[u8]| {
                    hook_side.counters.out_kinds.count(frame);
                })),
            );
            let side = Arc::clone(side);
            let stop = Arc::clone(&stop);
            pumps.push(std::thread::spawn(move || pump(&side, &stop)));
        }
        TapBridge { sides, stop, pumps }
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
            let mut rows: Vec<(String, u64)> = [
                ("linux_rx_packets", l(&c.linux_rx_frames)),
                ("linux_rx_bytes", l(&c.linux_rx_bytes)),
                ("output_ok", l(&c.output_ok)),
                ("output_err", l(&c.output_err)),
                ("input_packets", l(&c.in_frames)),
                ("input_bytes", l(&c.in_bytes)),
                ("input_promisc", l(&c.in_promisc)),
                ("input_promisc_bytes", l(&c.in_promisc_bytes)),
                ("linux_tx_packets", l(&c.linux_tx_frames)),
                ("linux_tx_errors", l(&c.linux_tx_errors)),
                ("bpf_in", l(&c.bpf_in)),
                ("bpf_out", l(&c.bpf_out)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            rows.extend(c.out_kinds.rows("out"));
            rows.extend(c.in_kinds.rows("in"));
            for (k, v) in rows {
                let _ = writeln!(out, "unit{u}.{k}={v}");
            }
            let _ = writeln!(out, "unit{u}.mac={}", mac_text(&side.mac));
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
            netinspect::set_frame_in_hook(&side.sim_name(), None);
            netinspect::set_frame_out_hook(&side.sim_name(), None);
        }
    }
}

/// Linux → driver: every frame the namespace's stack sends into the Linux tap goes to the
/// driver's output as raw output (no pre-output, no framer: the frame is complete).
fn pump(side: &TapSide, stop: &AtomicBool) {
    let name = side.sim_name();
    let c = &side.counters;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let n = match side.dev.read_timeout(&mut buf, Duration::from_millis(100)) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("tunnel-sim: read {}: {e}", side.dev.name);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        c.linux_rx_frames.fetch_add(1, Ordering::Relaxed);
        c.linux_rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
        match stack::output_raw(&name, &buf[..n]) {
            Ok(()) => c.output_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.output_err.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_are_classified_by_ethertype_and_icmp_type() {
        assert_eq!(classify(&frame(0x0806, &[0; 28])), FrameKind::Arp);
        let mut v4 = vec![0u8; 28];
        v4[0] = 0x45;
        v4[9] = 1;
        v4[20] = 8;
        assert_eq!(classify(&frame(0x0800, &v4)), FrameKind::EchoRequest);
        v4[20] = 0;
        assert_eq!(classify(&frame(0x0800, &v4)), FrameKind::EchoReply);
        v4[9] = 17;
        assert_eq!(classify(&frame(0x0800, &v4)), FrameKind::Other);
        let mut v6 = vec![0u8; 64];
        v6[0] = 0x60;
        v6[6] = 58;
        for (t, k) in [
            (128, FrameKind::EchoRequest),
            (129, FrameKind::EchoReply),
            (135, FrameKind::NeighborSolicit),
            (136, FrameKind::NeighborAdvert),
            (143, FrameKind::Other),
        ] {
            v6[40] = t;
            assert_eq!(classify(&frame(0x86dd, &v6)), k, "ICMPv6 type {t}");
        }
        v6[6] = 0; // hop-by-hop options first (MLD): not looked into
        v6[40] = 135;
        assert_eq!(classify(&frame(0x86dd, &v6)), FrameKind::Other);
        assert_eq!(classify(&[0u8; 10]), FrameKind::Other);
        assert_eq!(classify(&frame(0x0800, &[])), FrameKind::Other);
    }

    #[test]
    fn only_frames_without_m_promisc_go_to_linux() {
        let seen = |flags| FrameIn {
            bytes: frame(0x0800, &[0; 20]),
            demux: Err(Errno::ENOENT),
            flags,
        };
        assert!(forwards_to_linux(&seen(0)));
        assert!(forwards_to_linux(&seen(netinspect::M_BCAST)));
        assert!(forwards_to_linux(&seen(netinspect::M_MCAST)));
        assert!(!forwards_to_linux(&seen(M_PROMISC)));
    }

    #[test]
    fn names_addresses_and_mac_text() {
        assert_eq!((linux_name(0), linux_name(1)), ("ta0", "tb0"));
        assert_eq!(
            linux_addrs(1),
            ("10.77.0.2/24".to_string(), "fd77::2/64".to_string())
        );
        assert_eq!(mac_text(&[0x02, 0xab, 0, 1, 0x10, 0]), "02:ab:00:01:10:00");
    }
}
