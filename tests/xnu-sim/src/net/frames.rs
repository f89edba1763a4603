//! The frame-level view of Ethernet interfaces (docs/tap-contract.md section 17): every frame a
//! driver gives `ifnet_input` (its bytes, header included, what `ether_demux` decided and the
//! `M_BCAST`/`M_MCAST`/`M_PROMISC` flags it set) and every frame the driver's `output` accepted,
//! recorded for tests or handed to a host's hooks. Also the check of contract TW-2 that
//! `ifnet_input` makes for Ethernet interfaces (stricter than XNU, which trusts the layout and
//! reads it unchecked in `ether_demux`).

use crate::abi::*;
use crate::config;
use crate::errno::Errno;
use crate::mbuf;
use crate::net::kpi_interface::with_if;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One frame a driver gave `ifnet_input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameIn {
    /// The frame: the 14 header bytes, then the packet.
    pub bytes: Vec<u8>,
    /// What the demux answered: the protocol family, or its error (`EJUSTRETURN` when it
    /// consumed the frame, `ENOENT` when no protocol matched).
    pub demux: Result<u32, Errno>,
    /// The link-layer flags demux set (`M_BCAST`, `M_MCAST`, `M_PROMISC`); 0 when demux
    /// consumed the frame.
    pub flags: u32,
}

/// A push-style consumer of the frames given to `ifnet_input` on one interface.
pub type FrameInHook = Arc<dyn Fn(&FrameIn) + Send + Sync>;
/// A push-style consumer of the frames a driver's `output` accepted on one interface.
pub type FrameOutHook = Arc<dyn Fn(&[u8]) + Send + Sync>;

#[derive(Default)]
struct Frames {
    inputs: HashMap<String, Vec<FrameIn>>,
    outputs: HashMap<String, Vec<Vec<u8>>>,
    in_hooks: HashMap<String, FrameInHook>,
    out_hooks: HashMap<String, FrameOutHook>,
}

static FRAMES: Mutex<Option<Frames>> = Mutex::new(None);

fn frames<R>(f: impl FnOnce(&mut Frames) -> R) -> R {
    f(FRAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Frames::default))
}

/// Whether `ifp` is an Ethernet interface (the frame view and the TW-2 check apply).
pub(crate) fn is_ethernet(ifp: ifnet_t) -> bool {
    with_if(ifp, |i| i.family == IFNET_FAMILY_ETHERNET)
}

/// The frame `m` carries on its way into `ifnet_input` on Ethernet interface `ifp`, after the
/// TW-2 check (with `Config::check_frame_layout`): the frame header is the 14 bytes right
/// before the data of the first mbuf, which also holds the first min(`pkthdr.len`, 8) payload
/// bytes (what `ether_demux` reads unchecked, and where xnu-4570's `ether_demux` and
/// `vlan_input` read an 802.1Q tag). A violation panics.
pub(crate) fn received(ifp: ifnet_t, m: mbuf_t) -> Vec<u8> {
    let name = with_if(ifp, |i| i.name.clone());
    if config::config().check_frame_layout {
        assert_eq!(
            mbuf::header_lead(m),
            Some(14),
            "ifnet_input on {name}: pkthdr.header is not the 14 bytes right before the data of \
             the first mbuf (contract TW-2; ether_demux and vlan_input read at header + 14)"
        );
        let want = mbuf::packet_bytes(m).len().min(8);
        let have = mbuf::first_len(m);
        assert!(
            have >= want,
            "ifnet_input on {name}: the first mbuf holds {have} payload bytes, ether_demux reads \
             {want} unchecked (contract TW-2)"
        );
    }
    let header = mbuf::header_bytes(m).unwrap_or_else(|| {
        extern "C" {
            fn mbuf_pkthdr_header(m: mbuf_t) -> *mut std::ffi::c_void;
        }
        // SAFETY: the simulator's own KPI function on a live packet.
        let h = unsafe { mbuf_pkthdr_header(m) };
        assert!(!h.is_null(), "ifnet_input on {name}: NULL frame header");
        // SAFETY: the KPI contract: the frame header is 14 readable bytes.
        unsafe { std::ptr::read_unaligned(h.cast::<[u8; 14]>()) }
    });
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&mbuf::packet_bytes(m));
    bytes
}

/// Records (or hands to the interface's hook, with no simulator lock held) a frame given to
/// `ifnet_input`.
pub(crate) fn input_seen(ifp: ifnet_t, frame: FrameIn) {
    let name = with_if(ifp, |i| i.name.clone());
    match frames(|f| f.in_hooks.get(&name).cloned()) {
        Some(hook) => hook(&frame),
        None if config::config().capture => {
            frames(|f| f.inputs.entry(name).or_default().push(frame))
        }
        None => {}
    }
}

/// Records (or hands to the interface's hook) a frame the driver's output accepted.
pub(crate) fn output_accepted(ifp: ifnet_t, bytes: Vec<u8>) {
    let name = with_if(ifp, |i| i.name.clone());
    match frames(|f| f.out_hooks.get(&name).cloned()) {
        Some(hook) => hook(&bytes),
        None if config::config().capture => {
            frames(|f| f.outputs.entry(name).or_default().push(bytes))
        }
        None => {}
    }
}

/// Takes (and forgets) the frames given to `ifnet_input` on `name`.
pub fn take_frames_in(name: &str) -> Vec<FrameIn> {
    frames(|f| f.inputs.remove(name).unwrap_or_default())
}

/// The frames given to `ifnet_input` on `name` so far.
pub fn frames_in(name: &str) -> Vec<FrameIn> {
    frames(|f| f.inputs.get(name).cloned().unwrap_or_default())
}

/// Takes (and forgets) the frames the driver's output accepted on `name`.
pub fn take_frames_out(name: &str) -> Vec<Vec<u8>> {
    frames(|f| f.outputs.remove(name).unwrap_or_default())
}

/// The frames the driver's output accepted on `name` so far.
pub fn frames_out(name: &str) -> Vec<Vec<u8>> {
    frames(|f| f.outputs.get(name).cloned().unwrap_or_default())
}

/// Hands every frame given to `ifnet_input` on `name` to `hook` instead of recording it
/// (`None` removes the hook). Called on the driver's thread with no simulator lock held.
pub fn set_frame_in_hook(name: &str, hook: Option<FrameInHook>) {
    frames(|f| match hook {
        Some(h) => f.in_hooks.insert(name.to_string(), h).map(|_| ()),
        None => f.in_hooks.remove(name).map(|_| ()),
    });
}

/// Hands every frame the driver's output accepts on `name` to `hook` instead of recording it
/// (`None` removes the hook).
pub fn set_frame_out_hook(name: &str, hook: Option<FrameOutHook>) {
    frames(|f| match hook {
        Some(h) => f.out_hooks.insert(name.to_string(), h).map(|_| ()),
        None => f.out_hooks.remove(name).map(|_| ()),
    });
}
