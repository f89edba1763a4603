//! The layer-3 (IP) half of the device data path (docs/tun-contract.md sections 3 to 5): the
//! framing a reader sees in front of each packet, and the checks and packet building of a
//! write. The shared half (the gate, the blocking dequeue, the counters, BPF and input) is in
//! [`crate::cdev`].

use crate::counters::Count;
use crate::frame::Inbound;
use crate::framing::{self, Framing};
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::Ifnet;
use crate::kpi::mbuf::Mbuf;
use crate::kpi::uio::{FromUser, ToUser, Uio};
use crate::limits::AF_HEADER_LEN;
use crate::link::LinkKind;
use crate::queue::QueuedPacket;
use crate::unit::Unit;

/// Copies one dequeued packet to the reader with the prefix of `framing` (RD-1, RD-2, RD-8):
/// what does not fit `uio` is dropped and counted.
#[inline]
pub fn read(
    unit: &Unit,
    mut item: QueuedPacket,
    framing: Framing,
    uio: &mut Uio<'_, ToUser>,
) -> Result<(), Errno> {
    let room = uio.resid();
    let family = item.family.to_be_bytes();
    let prefix: &[u8] = match framing {
        Framing::Raw => &[],
        Framing::AfHeader => &family,
        Framing::LinkLayer => item.dest.as_bytes(),
    };
    if room < prefix.len() + item.packet.len() {
        // RD-2: the rest is freed below.
        unit.counters.add(Count::TruncatedRead);
    }
    uio.copy_out(&prefix[..prefix.len().min(room)])?;
    item.packet.copy_out(0, uio)?; // RD-8: on a fault the packet is freed all the same
    Ok(())
}

/// write: checks W2..W8 in order and builds the packet. `Ok(None)` is a counted drop (W7, W8).
///
/// The packet is built in one allocation with room for the 4-byte family word in front of the
/// IP header; the user's bytes are copied once, straight into the chain (an AF header is read
/// into that word's place first and replaced by the host-order family).
#[inline]
pub fn write(
    kind: &LinkKind,
    uio: &mut Uio<'_, FromUser>,
    len: usize,
    framing: Framing,
    ifnet: &Ifnet,
) -> Result<Option<Inbound>, Errno> {
    let header_len = framing.write_header_len();
    if len > kind.max_write + header_len {
        return Err(Errno::EIO); // W2
    }
    if len < header_len {
        return Err(Errno::EINVAL); // W3
    }
    let header_family = if framing == Framing::AfHeader {
        let mut header = [0u8; AF_HEADER_LEN];
        uio.copy_in(&mut header)?;
        Some(header)
    } else {
        None
    };
    if len == header_len {
        // W7: an AF header alone. (Raw writes of 0 bytes never get here: W1.)
        header_family
            .map(framing::family_from_af_header)
            .transpose()?;
        return Ok(None);
    }
    let mut packet = Mbuf::from_uio(AF_HEADER_LEN, uio)?; // W4, W5
    let family = match header_family {
        Some(header) => framing::family_from_af_header(header)?, // W6, F-3
        // W6; the packet has a first byte after the family word (`len` > `header_len`).
        None => framing::family_from_version(packet.byte_at(AF_HEADER_LEN).ok_or(Errno::EINVAL)?)?,
    };
    if !ifnet.is_up() {
        return Ok(None); // W8
    }
    // WR-1: the family sits just before the IP header, where demux finds it through
    // pkthdr.header; the data then starts at the IP header.
    let word = family.to_ne_bytes();
    packet.set_frame_header(&word)?;
    packet.set_rcvif(ifnet);
    let bytes = packet.len() as u32;
    Ok(Some(Inbound::new(packet, &word, bytes)))
}
