//! Tap units (docs/tap-contract.md) as the tests drive them: device paths, the unit's MAC and
//! its MAC register, Ethernet frames, and the ARP and neighbour-discovery messages a peer on
//! the other side of `/dev/tapN` writes. Every helper decides by state (the queue length
//! `FIONREAD` reports), never by time.

use crate::{ipv4_udp, ipv6_udp};
use tunnel::ioctl::{FIONREAD, SIOCGIFADDR};
use xnu_sim::abi::AF_INET;
use xnu_sim::syscalls::{self, ioctl_int, O_RDWR};
use xnu_sim::{netinspect, stack, Fd};

/// ff:ff:ff:ff:ff:ff.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// The station on the far side of `/dev/tapN` (a VPN peer, a guest): unicast, local.
pub const PEER_MAC: [u8; 6] = [0x02, 0x50, 0x45, 0x45, 0x52, 0x01];
/// Another station, neither the peer nor tapN.
pub const OTHER_MAC: [u8; 6] = [0x02, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e];
/// tapN's IPv4 address in the tests.
pub const TAP_IP: [u8; 4] = [10, 9, 0, 1];
/// The peer's IPv4 address.
pub const PEER_IP: [u8; 4] = [10, 9, 0, 2];
/// tapN's IPv6 address in the tests.
pub const TAP_IP6: [u8; 16] = [0xfd, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// The peer's IPv6 address.
pub const PEER_IP6: [u8; 16] = [0xfd, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// `ETHERTYPE_IP`.
pub const ETHERTYPE_IP: u16 = 0x0800;
/// `ETHERTYPE_ARP`.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// `ETHERTYPE_VLAN`.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// `ETHERTYPE_IPV6`.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// `/dev/tapN`.
pub fn tap_dev(n: usize) -> String {
    format!("/dev/tap{n}")
}

/// `tapN`.
pub fn tap_name(n: usize) -> String {
    format!("tap{n}")
}

/// Opens `/dev/tapN` read-write.
pub fn open_tap(n: usize) -> Fd {
    syscalls::open(&tap_dev(n), O_RDWR).expect("open /dev/tapN")
}

/// The interface's current link address (what `ifconfig tapN` shows as `ether`).
pub fn mac_of(name: &str) -> [u8; 6] {
    let info = netinspect::interface(name).expect("interface");
    info.lladdr
        .as_slice()
        .try_into()
        .expect("a 6-byte link address")
}

/// The unit's MAC register: device `SIOCGIFADDR` bytes 0..6 (TI-1).
pub fn mac_register(fd: Fd) -> [u8; 6] {
    let mut req = [0u8; 32];
    syscalls::ioctl(fd, SIOCGIFADDR, &mut req).expect("device SIOCGIFADDR");
    req[..6].try_into().expect("6 bytes")
}

/// The counters of `tapN` (docs/tap-contract.md section 14), through the driver's accessor.
pub fn tap_counters(n: usize) -> tunnel::counters::UnitCounters {
    tunnel::unit::tap_counters(n).expect("driver loaded")
}

/// An Ethernet frame: destination, source, type or length, payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An 802.1Q-tagged frame: the tag (`vlan` id, priority 0), then the inner type.
pub fn tagged_frame(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: u16,
    inner_type: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut inner = Vec::with_capacity(4 + payload.len());
    inner.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
    inner.extend_from_slice(&inner_type.to_be_bytes());
    inner.extend_from_slice(payload);
    frame(dst, src, ETHERTYPE_VLAN, &inner)
}

/// An IPv4 (UDP) frame from the peer to `dst`.
pub fn ipv4_frame(dst: [u8; 6], payload: &[u8]) -> Vec<u8> {
    frame(
        dst,
        PEER_MAC,
        ETHERTYPE_IP,
        &ipv4_udp(PEER_IP, TAP_IP, payload),
    )
}

/// An IPv6 (UDP) frame from the peer to `dst`.
pub fn ipv6_frame(dst: [u8; 6], payload: &[u8]) -> Vec<u8> {
    frame(
        dst,
        PEER_MAC,
        ETHERTYPE_IPV6,
        &ipv6_udp(PEER_IP6, TAP_IP6, payload),
    )
}

/// `ARPOP_REQUEST`.
pub const ARPOP_REQUEST: u16 = 1;
/// `ARPOP_REPLY`.
pub const ARPOP_REPLY: u16 = 2;

/// An Ethernet/IPv4 ARP packet (28 bytes).
pub fn arp_packet(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa);
    p
}

/// The peer asks, by broadcast, who has `ip`.
pub fn arp_request_from_peer(ip: [u8; 4]) -> Vec<u8> {
    frame(
        BROADCAST,
        PEER_MAC,
        ETHERTYPE_ARP,
        &arp_packet(ARPOP_REQUEST, PEER_MAC, PEER_IP, [0; 6], ip),
    )
}

/// The peer answers `to_mac`/`to_ip` that `PEER_IP` is at `PEER_MAC`.
pub fn arp_reply_from_peer(to_mac: [u8; 6], to_ip: [u8; 4]) -> Vec<u8> {
    frame(
        to_mac,
        PEER_MAC,
        ETHERTYPE_ARP,
        &arp_packet(ARPOP_REPLY, PEER_MAC, PEER_IP, to_mac, to_ip),
    )
}

/// The parts of an ARP frame a test looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Ethernet destination.
    pub dst: [u8; 6],
    /// Ethernet source.
    pub src: [u8; 6],
    /// `ARPOP_REQUEST` or `ARPOP_REPLY`.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: [u8; 4],
    /// Target protocol address.
    pub tpa: [u8; 4],
}

/// `f` as an ARP frame; `None` unless it is an Ethernet/IPv4 ARP frame.
pub fn parse_arp(f: &[u8]) -> Option<Arp> {
    if f.len() < 42 || f[12..14] != ETHERTYPE_ARP.to_be_bytes() || f[14..20] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    Some(Arp {
        dst: f[0..6].try_into().ok()?,
        src: f[6..12].try_into().ok()?,
        op: u16::from_be_bytes([f[20], f[21]]),
        sha: f[22..28].try_into().ok()?,
        spa: f[28..32].try_into().ok()?,
        tpa: f[38..42].try_into().ok()?,
    })
}

/// The ICMPv6 checksum of `icmp` between `src` and `dst` (RFC 4443 section 2.3).
pub fn icmp6_checksum(src: &[u8; 16], dst: &[u8; 16], icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            sum += u32::from(pair[0]) << 8 | pair.get(1).copied().map_or(0, u32::from);
        }
    };
    add(src);
    add(dst);
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A neighbour advertisement from the peer for `PEER_IP6` (solicited, override, target
/// link-layer option `PEER_MAC`), to `dst_mac`/`dst_ip`, hop limit 255.
pub fn neighbor_advert_from_peer(dst_mac: [u8; 6], dst_ip: [u8; 16]) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    icmp.extend_from_slice(&PEER_IP6);
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&PEER_MAC);
    let ck = icmp6_checksum(&PEER_IP6, &dst_ip, &icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[58, 255]);
    ip.extend_from_slice(&PEER_IP6);
    ip.extend_from_slice(&dst_ip);
    ip.extend_from_slice(&icmp);
    frame(dst_mac, PEER_MAC, ETHERTYPE_IPV6, &ip)
}

/// Whether `f` is an IPv6 neighbour solicitation for `target` (ICMPv6 type 135).
pub fn is_neighbor_solicit_for(f: &[u8], target: &[u8; 16]) -> bool {
    f.len() >= 14 + 40 + 24
        && f[12..14] == ETHERTYPE_IPV6.to_be_bytes()
        && f[14 + 6] == 58
        && f[14 + 40] == 135
        && f[14 + 48..14 + 64] == target[..]
}

/// The length of the frame at the head of the unit's queue (`FIONREAD`), 0 when empty.
pub fn queued(fd: Fd) -> usize {
    ioctl_int(fd, FIONREAD, 0).expect("FIONREAD") as usize
}

/// One read of at most 65535 bytes: one frame (TF-1).
pub fn read_frame(fd: Fd) -> Vec<u8> {
    let mut buf = vec![0u8; 65535];
    let n = syscalls::read(fd, &mut buf).expect("read one frame");
    buf.truncate(n);
    buf
}

/// Reads every queued frame (while `FIONREAD` says one is there), in order.
pub fn drain(fd: Fd) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while queued(fd) > 0 {
        frames.push(read_frame(fd));
        assert!(frames.len() <= 1024, "the queue never empties");
    }
    frames
}

/// Waits until a `select` has recorded itself on a unit (the kernel's own record, not a
/// guess by a clock); the 10-second bound only turns a hang into a failure.
pub fn wait_for_select_record() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while xnu_sim::leaks().select_records == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no select recorded itself"
        );
        std::thread::yield_now();
    }
}

/// `ifconfig tapN inet ADDR` (plumbs IPv4 through XNU's Ethernet plumber, TN-2), then reads
/// away what the stack queued meanwhile (its gratuitous ARP, Q4) if the unit is open.
pub fn configure_tap(name: &str, fd: Option<Fd>, ip: [u8; 4]) {
    stack::add_address(name, AF_INET, &ip).expect("ifconfig tapN inet");
    if let Some(fd) = fd {
        drain(fd);
    }
}
