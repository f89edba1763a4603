//! The character-device entry points of every kind of unit (docs/tun-contract.md sections 2,
//! 4, 5, 7, 9, 10): the gate, the unit's state, the one blocking dequeue, the counters, BPF and
//! input are here; the framing of each medium is in its own module ([`crate::l3`]).
//!
//! Each one passes the driver gate on entry and leaves it at its one exit (the `GateRef`
//! drops last), so unload can never free what an entry point is using.

use crate::counters::Count;
use crate::debug;
use crate::gate;
use crate::iface;
use crate::klog;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet};
use crate::kpi::proc;
use crate::kpi::select::SelectToken;
use crate::kpi::uio::{FromUser, ToUser, Uio};
use crate::l3;
use crate::link::{LinkId, Medium};
use crate::unit::{Setup, Unit};

/// `select` interest bits (`FREAD`, `FWRITE`).
const FREAD: u32 = 1;
const FWRITE: u32 = 2;

/// open: exclusive (U-3); the first open builds interface `tunN`, which then persists (U-4).
pub fn open(link: LinkId, minor: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
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
            let kind = unit.kind();
            let ifnet = Ifnet::allocate(kind.table, unit.number() as u32, unit.softc())
                .map_err(|e| (None, setup, e))?;
            // Every flag replaced: the creation defaults (U-4).
            ifnet.set_flags(kind.flags, IfFlags::from_bits_retain(u16::MAX));
            ifnet.set_mtu(kind.mtu);
            // On failure the handle's drop gives back the allocation's reference.
            ifnet.attach().map_err(|e| (None, setup, e))?;
            setup.attached = true;
            ifnet
        }
    };
    if !setup.bpf {
        let kind = unit.kind();
        ifnet.bpf_attach(kind.dlt, kind.bpf_header_len as u32); // U-9
        setup.bpf = true;
    }
    // No protocol is attached here: the stack plumbs IPv4 and IPv6 through the driver's
    // plumbers when the first address of each family is added (U-8).
    Ok((ifnet, setup))
}

/// close (last close or revoke): the steps of section 10, in order; always succeeds for an
/// open unit.
pub fn close(link: LinkId, minor: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
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
    let failures = ifnet.map_or(0, |ifnet| iface::remove_addresses(unit, &ifnet));
    unit.counters.add_address_removal_failures(failures);
    let mut state = unit.state.lock();
    if let Some(ifnet) = &state.ifnet {
        // 5: the creation defaults (undoes TUNSIFMODE, TUNSIFINFO and SIOCSIFFLAGS edits).
        let kind = unit.kind();
        ifnet.set_flags(kind.flags, kind.close_resets);
        ifnet.set_mtu(kind.mtu);
        ifnet.set_baudrate(0);
    }
    state.reset_modes();
    state.closing = false;
    if debug::level() != 0 {
        klog!(
            "{}{}: {}",
            unit.kind().name,
            unit.number(),
            unit.counters.snapshot()
        );
    }
    unit.wake_all(&state); // 6
    Ok(())
}

/// read: at most one packet per call, its prefix first; a short buffer truncates (RD-1..RD-9).
pub fn read(
    link: LinkId,
    minor: u32,
    uio: &mut Uio<'_, ToUser>,
    nonblocking: bool,
) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
    let room = uio.resid();
    if room == 0 {
        return Ok(()); // RD-3
    }
    let (item, framing) = {
        let mut state = unit.state.lock();
        if !state.open {
            return Err(Errno::ENXIO);
        }
        let item = unit.dequeue(&mut state, nonblocking)?;
        (item, state.framing)
    };
    match unit.kind().medium {
        Medium::Ip => l3::read(unit, item, framing, uio),
    }
}

/// write: one call is one packet (W1..W9); never sleeps (WR-2).
pub fn write(link: LinkId, minor: u32, uio: &mut Uio<'_, FromUser>) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
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
    let kind = unit.kind();
    let result = match kind.medium {
        Medium::Ip => l3::write(kind, uio, len, framing, &ifnet),
    };
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
    ifnet.tap_in(&packet, kind.dlt, &family.to_ne_bytes());
    // Without the unit mutex: input may loop back into output. The stack owns the packet
    // now, whatever it answers; the interface statistics count it through `input`.
    let _ = ifnet.input(packet, bytes);
    Ok(())
}

/// ioctl on the device (section 7): any command on an open unit, see [`crate::dev_ioctl`].
pub fn ioctl(link: LinkId, minor: u32, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
    let mut state = unit.state.lock();
    if !state.open {
        return Err(Errno::ENXIO);
    }
    crate::dev_ioctl::handle(unit, &mut state, cmd, arg)
}

/// select: readable iff a packet is queued or the unit is going away; always writable (SEL-1,
/// SEL-2). Otherwise records the selector, under the same mutex as read (SEL-4).
pub fn select(link: LinkId, minor: u32, which: u32, wql: SelectToken) -> bool {
    let Ok(_gate) = gate::enter() else {
        return true; // going away: let read report ENXIO at once
    };
    let Ok(unit) = Unit::get(link, minor) else {
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
