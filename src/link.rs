//! Link kinds: everything that differs between kinds of unit, described once per kind and
//! found from each unit (the way FreeBSD's `tuntap_drivers[]` or smoltcp's `Medium` do it).
//! Layer 3 `tun` (docs/tun-contract.md section 0) and layer 2 `tap` (docs/tap-contract.md
//! section 0).

use crate::kpi::ifnet::{IfFlags, DLT_EN10MB, DLT_NULL, IFT_ETHER, IFT_OTHER};
use crate::kpi::nodes::ShimTable;
use crate::limits::{
    AF_HEADER_LEN, ETHER_HDR_LEN, TAPMTU, TAP_MAXMTU, TAP_MINMTU, TAP_MRU, TAP_QLEN, TAP_UNITS,
    TUNMRU, TUNMTU, TUN_MAXMTU, TUN_MINMTU, TUN_QLEN, TUN_UNITS,
};

/// Which kind a unit is; indexes [`LinkKind`]s and is encoded in each interface's softc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkId {
    /// `tunN`: IPv4 and IPv6 packets, point to point.
    Tun = 0,
    /// `tapN`: Ethernet frames.
    Tap = 1,
}

impl LinkId {
    /// Every kind, in load order (TL-1: tun first).
    pub const ALL: [LinkId; 2] = [LinkId::Tun, LinkId::Tap];

    /// The kind's description.
    #[inline]
    pub fn kind(self) -> &'static LinkKind {
        match self {
            LinkId::Tun => &TUN,
            LinkId::Tap => &TAP,
        }
    }

    /// The kind numbered `index` in [`LinkId::ALL`].
    pub fn from_index(index: usize) -> Option<LinkId> {
        LinkId::ALL.get(index).copied()
    }
}

/// What a unit carries, and so how its reads, writes and output frame packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// Bare IP packets, framed by the unit's framing mode (docs/tun-contract.md section 3).
    Ip,
    /// Whole Ethernet frames, no prefix (docs/tap-contract.md section 4).
    Ethernet,
}

/// One kind of unit.
pub struct LinkKind {
    /// Its id.
    pub id: LinkId,
    /// The device-node and interface name prefix: `/dev/tunN`, `tunN`.
    pub name: &'static str,
    /// The shim's cdevsw, node and `ifnet_init_params` for the kind (family, type, callbacks).
    pub table: ShimTable,
    /// How packets are framed.
    pub medium: Medium,
    /// Units `0..units`.
    pub units: usize,
    /// BPF link type and its header length.
    pub dlt: u32,
    /// The BPF header length.
    pub bpf_header_len: usize,
    /// The interface type the info ioctl reports and requires (`if_types.h`).
    pub if_type: u8,
    /// The MTU at creation and after every close.
    pub mtu: u32,
    /// The MTUs `SIOCSIFMTU` and the info ioctl accept.
    pub min_mtu: u32,
    /// The largest MTU `SIOCSIFMTU` accepts.
    pub max_mtu: u32,
    /// The largest packet a write accepts, without a framing header.
    pub max_write: usize,
    /// Output-queue limit, in packets.
    pub queue_limit: usize,
    /// The interface flags at creation and after every close.
    pub flags: IfFlags,
    /// The flags close resets to `flags` (the others are the stack's).
    pub close_resets: IfFlags,
}

// Every kind fits the driver's node table, and its number in a softc (unit.rs).
static_assertions::const_assert!(TUN_UNITS <= crate::limits::MAX_UNITS);
static_assertions::const_assert!(TAP_UNITS <= crate::limits::MAX_UNITS);

/// What close resets (docs/tun-contract.md section 10 step 5, docs/tap-contract.md TC-4): every
/// flag (DEBUG and LINK0..2 too), but the stack's reference-counted PROMISC and ALLMULTI.
const ALL_BUT_THE_STACKS: IfFlags =
    IfFlags::from_bits_retain(u16::MAX).difference(IfFlags::PROMISC.union(IfFlags::ALLMULTI));

/// `tunN` (docs/tun-contract.md sections 0, 2).
pub static TUN: LinkKind = LinkKind {
    id: LinkId::Tun,
    name: "tun",
    table: ShimTable::IP,
    medium: Medium::Ip,
    units: TUN_UNITS,
    dlt: DLT_NULL,
    bpf_header_len: AF_HEADER_LEN,
    if_type: IFT_OTHER,
    mtu: TUNMTU,
    min_mtu: TUN_MINMTU,
    max_mtu: TUN_MAXMTU,
    max_write: TUNMRU,
    queue_limit: TUN_QLEN,
    flags: IfFlags::POINTOPOINT.union(IfFlags::MULTICAST),
    close_resets: ALL_BUT_THE_STACKS,
};

/// `tapN` (docs/tap-contract.md sections 0, 2).
pub static TAP: LinkKind = LinkKind {
    id: LinkId::Tap,
    name: "tap",
    table: ShimTable::ETHERNET,
    medium: Medium::Ethernet,
    units: TAP_UNITS,
    dlt: DLT_EN10MB,
    bpf_header_len: ETHER_HDR_LEN,
    if_type: IFT_ETHER,
    mtu: TAPMTU,
    min_mtu: TAP_MINMTU,
    max_mtu: TAP_MAXMTU,
    max_write: TAP_MRU,
    queue_limit: TAP_QLEN,
    // TU-4: IFF_BROADCAST|IFF_SIMPLEX|IFF_MULTICAST = 0x8802.
    flags: IfFlags::BROADCAST
        .union(IfFlags::SIMPLEX)
        .union(IfFlags::MULTICAST),
    close_resets: ALL_BUT_THE_STACKS, // TC-4
};
