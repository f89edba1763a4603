//! The layer-2 (Ethernet) half of the device data path (docs/tap-contract.md sections 4 to
//! 6): one read is one frame, one write is one frame, no prefix. The shared half (the gate, the
//! blocking dequeue, the counters, BPF and input) is in [`crate::cdev`].

use crate::counters::Count;
use crate::frame::Inbound;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::Ifnet;
use crate::kpi::mbuf::Mbuf;
use crate::kpi::uio::{FromUser, ToUser, Uio};
use crate::limits::ETHER_HDR_LEN;
use crate::link::LinkKind;
use crate::queue::QueuedPacket;
use crate::unit::Unit;

/// Type/length values up to this are 802.3 lengths, not ethertypes (`ETHERMTU`).
const ETHER_MAX_LEN_FIELD: u16 = 1500;
/// The payload bytes `ether_demux` reads unchecked after an 802.3 header (SNAP: 8), TW-1.
const DEMUX_PEEK: usize = 8;

/// Copies one dequeued frame to the reader (TR-1 as RD-1, RD-2, RD-8): what does not fit
/// `uio` is dropped and counted.
#[inline]
pub fn read(unit: &Unit, mut item: QueuedPacket, uio: &mut Uio<'_, ToUser>) -> Result<(), Errno> {
    if uio.resid() < item.packet.len() {
        unit.counters.add(Count::TruncatedRead);
    }
    item.packet.copy_out(0, uio)?; // on a fault the frame is freed all the same
    Ok(())
}

/// write: checks TW2..TW7 in order and builds the frame for `ifnet_input` (TW-2): the header
/// and the payload bytes `ether_demux` may read lie in the first mbuf, `pkthdr.header` points
/// at the header and the data starts after it. `Ok(None)` is a counted drop (TW6, TW7).
#[inline]
pub fn write(
    kind: &LinkKind,
    uio: &mut Uio<'_, FromUser>,
    len: usize,
    ifnet: &Ifnet,
) -> Result<Option<Inbound>, Errno> {
    if len > kind.max_write {
        return Err(Errno::EIO); // TW2
    }
    if len < ETHER_HDR_LEN {
        return Err(Errno::EINVAL); // TW3
    }
    let mut frame = Mbuf::from_uio(0, uio)?; // TW4, TW5
    let mut header = [0u8; ETHER_HDR_LEN];
    frame.copy_data(0, &mut header)?;
    let type_or_len = u16::from_be_bytes([header[12], header[13]]);
    let payload = len - ETHER_HDR_LEN;
    if payload == 0 || (type_or_len <= ETHER_MAX_LEN_FIELD && payload < DEMUX_PEEK) {
        return Ok(None); // TW6
    }
    if !ifnet.is_up() {
        return Ok(None); // TW7
    }
    // TW-2: from_uio puts a frame of up to 2 KiB in one segment, and a larger one starts
    // with a full cluster, so header + 8 payload bytes are contiguous.
    frame.take_frame_header(ETHER_HDR_LEN)?;
    frame.set_rcvif(ifnet);
    Ok(Some(Inbound::new(frame, &header, len as u32)))
}
