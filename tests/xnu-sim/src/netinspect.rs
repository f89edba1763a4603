//! What a test can see of the simulated network: snapshots of interfaces, the packets the
//! fake stack received, the taps BPF saw, drops, plumber registrations, and the input hook of a
//! host that bridges the stack to a real one. None of this is KPI: the driver never calls it.
//! (The KPI itself is in `crate::net`; tests drive the stack through [`crate::stack`].)

use crate::net::kpi_interface::{by_name, with_if};
use crate::net::kpi_protocol;

pub use crate::mbuf::{M_BCAST, M_LOOP, M_MCAST, M_PROMISC};
pub use crate::net::bpf::{Tap, TAP_LOG};
pub use crate::net::ether::PF_VLAN;
pub use crate::net::event::PostedEvent;
pub use crate::net::frames::{
    frames_in, frames_out, set_frame_in_hook, set_frame_out_hook, take_frames_in, take_frames_out,
    FrameIn, FrameInHook, FrameOutHook,
};
pub use crate::net::kpi_interface::{IfState, IfStats};
pub use crate::net::kpi_protocol::{
    plumber_calls, register_foreign_plumber, set_input_hook, InputHook,
};

/// What a test can see of an interface.
#[derive(Clone, Debug)]
pub struct IfInfo {
    /// `tunN`.
    pub name: String,
    /// Unit number.
    pub unit: u32,
    /// Interface family (`IFNET_FAMILY_TUN` = 4).
    pub family: u32,
    /// Interface type (`IFT_OTHER` = 1).
    pub if_type: u32,
    /// The unique id given at allocation.
    pub uniqueid: Vec<u8>,
    /// Flags.
    pub flags: u16,
    /// MTU.
    pub mtu: u32,
    /// Link speed (`ifnet_set_baudrate`), 0 = unknown.
    pub baudrate: u64,
    /// Lifecycle state.
    pub state: IfState,
    /// Interface index (0 until attached).
    pub index: u32,
    /// BPF attachment: (DLT, header length).
    pub bpf: Option<(u32, u32)>,
    /// Attached protocol families.
    pub protocols: Vec<u32>,
    /// Counters.
    pub stats: IfStats,
    /// Addresses: (family, address bytes).
    pub addresses: Vec<(u32, Vec<u8>)>,
    /// `if_addrlen` (set by the first attach with a link address).
    pub addrlen: u8,
    /// The link address (empty when none).
    pub lladdr: Vec<u8>,
    /// `if_hdrlen` (`ifnet_set_hdrlen`).
    pub hdrlen: u8,
    /// The broadcast address given at allocation.
    pub broadcast: Vec<u8>,
    /// Promiscuous requests outstanding (`if_pcount`).
    pub promisc_count: i32,
}

/// A snapshot of interface `name`.
pub fn interface(name: &str) -> Option<IfInfo> {
    let h = by_name(name)?;
    Some(with_if(h, |i| {
        let mut protocols: Vec<u32> = i.protocols.keys().copied().collect();
        protocols.sort();
        IfInfo {
            name: i.name.clone(),
            unit: i.unit,
            family: i.family,
            if_type: i.if_type,
            uniqueid: i.uniqueid.clone(),
            flags: i.flags,
            mtu: i.mtu,
            baudrate: i.baudrate,
            state: i.state,
            index: i.index,
            bpf: i.bpf,
            protocols,
            stats: i.stats,
            addresses: i.addresses.clone(),
            addrlen: i.link.addrlen,
            lladdr: i.link.addr.clone(),
            hdrlen: i.link.hdrlen,
            broadcast: i.link.broadcast.clone(),
            promisc_count: i.link.pcount,
        }
    }))
}

/// `if_nametoindex`: 0 when no attached interface has that name.
pub fn if_nametoindex(name: &str) -> u32 {
    interface(name)
        .filter(|i| matches!(i.state, IfState::Attached | IfState::Detaching))
        .map_or(0, |i| i.index)
}

/// Packets the stack received through `name`, in order: (protocol family, bytes).
pub fn received(name: &str) -> Vec<(u32, Vec<u8>)> {
    by_name(name)
        .map(|h| with_if(h, |i| i.received.clone()))
        .unwrap_or_default()
}

/// Takes (and forgets) the packets received through `name`.
pub fn take_received(name: &str) -> Vec<(u32, Vec<u8>)> {
    by_name(name)
        .map(|h| with_if(h, |i| std::mem::take(&mut i.received)))
        .unwrap_or_default()
}

/// Times the per-interface IPv6 set-up ran on `name` (only after a plumber returned 0).
pub fn inet6_setups(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.inet6_setups))
}

/// Packets the stack dropped at input on `name` (bad demux, no protocol).
pub fn stack_drops(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.stack_drops))
}

/// What BPF saw on `name`.
pub fn taps(name: &str) -> Vec<Tap> {
    by_name(name)
        .map(|h| with_if(h, |i| i.taps.iter().cloned().collect()))
        .unwrap_or_default()
}

/// Takes (and forgets) what BPF saw on `name` (a long-running host keeps memory bounded).
pub fn take_taps(name: &str) -> Vec<Tap> {
    by_name(name)
        .map(|h| with_if(h, |i| std::mem::take(&mut i.taps).into()))
        .unwrap_or_default()
}

/// Taps on `name` made without a BPF attachment.
pub fn untapped(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.untapped))
}

/// Every tap BPF saw on `name`, including those no longer kept in [`taps`].
pub fn tap_count(name: &str) -> u64 {
    by_name(name).map_or(0, |h| with_if(h, |i| i.tapped))
}

/// Whether a protocol plumber is registered for (protocol, interface family), by the kext or
/// by [`register_foreign_plumber`].
pub fn is_plumber_registered(protocol: u32, family: u32) -> bool {
    kpi_protocol::is_registered(protocol, family)
}

/// The kernel events posted about interface `name` (`kev_post_msg`), in order.
pub fn events(name: &str) -> Vec<PostedEvent> {
    crate::net::event::posted(name)
}

/// Packets `ether_frameout` looped to the loopback interface from `name` (`IFF_SIMPLEX`).
pub fn looped_to_loopback(name: &str) -> u64 {
    crate::net::ether::looped(name)
}

/// For a bridge member, whether the bridge last saw its media active (`None`: not a member).
pub fn bridge_media_active(name: &str) -> Option<bool> {
    by_name(name).and_then(crate::net::bridge::media_active)
}
