//! The character-device entry points of `/dev/tunN` (docs/tun-contract.md sections 2, 4, 5, 7,
//! 9, 10).
//!
//! Each one passes the driver gate on entry and leaves it at its one exit (the `GateRef`
//! drops last), so unload can never free what an entry point is using.

use crate::counters::Count;
use crate::debug;
use crate::framing::{self, Framing};
use crate::gate;
use crate::iface;
use crate::klog;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet, DLT_NULL};
use crate::kpi::mbuf::Mbuf;
use crate::kpi::proc;
use crate::kpi::select::SelectToken;
use crate::kpi::uio::{FromUser, ToUser, Uio};
use crate::limits::{AF_HEADER_LEN, TUNMRU, TUNMTU};
use crate::unit::{Setup, Unit};

/// `select` interest bits (`FREAD`, `FWRITE`).
const FREAD: u32 = 1;
const FWRITE: u32 = 2;

/// open: exclusive (U-3); the first open builds interface `tunN`, which then persists (U-4).
pub fn open(minor: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(minor)?;
    let (ifnet, setup) = {
        let mut state = unit.state.lock();
        if state.is_claimed() {
            return Err(Errno::EBUSY);
        }
        state.opening = true;
        (state.ifnet.clone(), state.setup)
    };
    // Built without the unit mutex: attaching calls back into the driver.
    let built = build_interface(unit, ifnet, setup);
    let mut state = unit.state.lock();
    state.opening = false;
    let (ifnet, setup) = built.map_err(|(ifnet, setup, e)| {
        state.ifnet = ifnet;
        state.setup = setup;
        e
    })?;
    state.ifnet = Some(ifnet);
    state.setup = setup;
    state.open = true;
    state.pid = proc::self_pid(); // U-6
    Ok(())
}

type BuildError = (Option<Ifnet>, Setup, Errno);

/// Does the steps of U-4 that are not done yet. A failure before `ifnet_attach` releases the
/// ifnet; after it, the attached ifnet is kept and the next open redoes the rest (U-5).
/// `build_interface` holds no unit mutex: attaching calls back into the driver.
fn build_interface(
    unit: &'static Unit,
    ifnet: Option<Ifnet>,
    mut setup: Setup,
) -> Result<(Ifnet, Setup), BuildError> {
    let ifnet = match ifnet {
        Some(ifnet) => ifnet,
        None => {
            let ifnet = Ifnet::allocate(unit.number() as u32, unit.softc())
                .map_err(|e| (None, setup, e))?;
            // Every flag replaced: the creation defaults (U-4).
            let all = IfFlags::from_bits_retain(u16::MAX);
            ifnet.set_flags(IfFlags::POINTOPOINT | IfFlags::MULTICAST, all);
            ifnet.set_mtu(TUNMTU);
            // On failure the handle's drop gives back the allocation's reference.
            ifnet.attach().map_err(|e| (None, setup, e))?;
            setup.attached = true;
            ifnet
        }
    };
    if !setup.bpf {
        ifnet.bpf_attach(DLT_NULL, AF_HEADER_LEN as u32); // U-9
        setup.bpf = true;
    }
    // No protocol is attached here: the stack plumbs IPv4 and IPv6 through the driver's
    // plumbers when the first address of each family is added (U-8).
    Ok((ifnet, setup))
}

/// close (last close or revoke): the steps of section 10, in order; always succeeds for an
/// open unit.
pub fn close(minor: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(minor)?;
    let ifnet = {
        let mut state = unit.state.lock();
        if !state.open {
            return Err(Errno::ENXIO);
        }
        state.open = false; // 1: stale descriptors get ENXIO, output EHOSTDOWN
        state.closing = true; // still claimed: no open until step 5 is done
        state.queue.purge(); // 2
        if let Some(ifnet) = &state.ifnet {
            ifnet.set_flags(IfFlags::empty(), IfFlags::UP | IfFlags::RUNNING); // 3
        }
        state.ifnet.clone()
    };
    // 4: without the unit mutex, since the stack calls back into the interface ioctl.
    let failures = ifnet.map_or(0, |ifnet| iface::remove_addresses(unit.number(), &ifnet));
    unit.counters.add_address_removal_failures(failures);
    let mut state = unit.state.lock();
    if let Some(ifnet) = &state.ifnet {
        // 5: the creation defaults (undoes TUNSIFMODE, TUNSIFINFO and SIOCSIFFLAGS edits).
        ifnet.set_flags(
            IfFlags::POINTOPOINT | IfFlags::MULTICAST,
            IfFlags::UP
                | IfFlags::RUNNING
                | IfFlags::BROADCAST
                | IfFlags::POINTOPOINT
                | IfFlags::MULTICAST
                | IfFlags::NOARP,
        );
        ifnet.set_mtu(TUNMTU);
        ifnet.set_baudrate(0);
    }
    state.reset_modes();
    state.closing = false;
    if debug::level() != 0 {
        klog!("tun{}: {}", unit.number(), unit.counters.snapshot());
    }
    unit.wake_all(&state); // 6
    Ok(())
}

/// read: at most one packet per call, its prefix first; a short buffer truncates (RD-1..RD-9).
pub fn read(minor: u32, uio: &mut Uio<'_, ToUser>, nonblocking: bool) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(minor)?;
    let room = uio.resid();
    if room == 0 {
        return Ok(()); // RD-3
    }
    let (mut item, framing) = {
        let mut state = unit.state.lock();
        if !state.open {
            return Err(Errno::ENXIO);
        }
        let item = unit.dequeue(&mut state, nonblocking)?;
        (item, state.framing)
    };
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

/// write: one call is one packet (W1..W9); never sleeps (WR-2).
pub fn write(minor: u32, uio: &mut Uio<'_, FromUser>) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(minor)?;
    let len = uio.resid();
    if len == 0 {
        return Ok(()); // W1
    }
    let (framing, ifnet) = {
        let state = unit.state.lock();
        if !state.open {
            return Err(Errno::ENXIO);
        }
        (state.framing, state.ifnet.clone().ok_or(Errno::ENXIO)?)
    };
    let result = write_packet(uio, len, framing, &ifnet);
    let count = match &result {
        Err(_) => Count::InputError,  // W2..W6
        Ok(None) => Count::InputDrop, // W7, W8
        Ok(Some((packet, _))) => Count::Input {
            bytes: packet.len() as u32,
        }, // W9
    };
    unit.count(&ifnet, count);
    let (packet, family) = match result? {
        Some(packet) => packet,
        None => return Ok(()), // dropped, full length written (W7, W8)
    };
    let bytes = packet.len() as u32;
    ifnet.tap_in(&packet, DLT_NULL, &family.to_ne_bytes());
    // Without the unit mutex: input may loop back into output. The stack owns the packet
    // now, whatever it answers; the interface statistics count it through `input`.
    let _ = ifnet.input(packet, bytes);
    Ok(())
}

/// Checks W2..W8 in order and builds the packet. `Ok(None)` is a counted drop (W7, W8).
///
/// The packet is built in one allocation with room for the 4-byte family word in front of the
/// IP header; the user's bytes are copied once, straight into the chain (an AF header is read
/// into that word's place first and replaced by the host-order family).
fn write_packet(
    uio: &mut Uio<'_, FromUser>,
    len: usize,
    framing: Framing,
    ifnet: &Ifnet,
) -> Result<Option<(Mbuf, u32)>, Errno> {
    let header_len = framing.write_header_len();
    if len > TUNMRU + header_len {
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
    packet.head_mut()[..AF_HEADER_LEN].copy_from_slice(&family.to_ne_bytes());
    packet.take_frame_header(AF_HEADER_LEN)?;
    packet.set_rcvif(ifnet);
    Ok(Some((packet, family)))
}

/// ioctl on the device (section 7): any command on an open unit, see [`crate::dev_ioctl`].
pub fn ioctl(minor: u32, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(minor)?;
    let mut state = unit.state.lock();
    if !state.open {
        return Err(Errno::ENXIO);
    }
    crate::dev_ioctl::handle(unit.number(), &mut state, cmd, arg)
}

/// select: readable iff a packet is queued or the unit is going away; always writable (SEL-1,
/// SEL-2). Otherwise records the selector, under the same mutex as read (SEL-4).
pub fn select(minor: u32, which: u32, wql: SelectToken) -> bool {
    let Ok(_gate) = gate::enter() else {
        return true; // going away: let read report ENXIO at once
    };
    let Ok(unit) = Unit::get(minor) else {
        return true;
    };
    match which {
        FWRITE => true,
        FREAD => {
            let state = unit.state.lock();
            if Unit::readable(&state) {
                return true;
            }
            state.sel.record(wql);
            false
        }
        _ => {
            let state = unit.state.lock();
            state.sel.record(wql);
            false
        }
    }
}
