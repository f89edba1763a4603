//! The character-device entry points of every kind of unit (docs/tun-contract.md sections 2,
//! 4, 5, 7, 9, 10): the gate, the unit's state, the one blocking dequeue, the counters, BPF and
//! input are here; the framing of each medium is in its own module ([`crate::l3`]).
//!
//! Each one passes the driver gate on entry and leaves it at its one exit (the `GateRef`
//! drops last), so unload can never free what an entry point is using.

use crate::counters::Count;
use crate::debug;
use crate::ether;
use crate::gate;
use crate::iface;
use crate::klog;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet};
use crate::kpi::proc;
use crate::kpi::select::SelectToken;
use crate::kpi::uio::{FromUser, ToUser, Uio};
use crate::limits::{ETHER_ADDR_LEN, ETHER_HDR_LEN};
use crate::link::{LinkId, Medium};
use crate::unit::{Setup, Unit};
use crate::{l2, l3};

/// `select` interest bits (`FREAD`, `FWRITE`).
const FREAD: u32 = 1;
const FWRITE: u32 = 2;

/// open: exclusive (U-3, TU-2); the first open builds the interface, which then persists
/// (U-4, TU-4). An Ethernet unit's link goes on (TK-1).
pub fn open(link: LinkId, minor: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    let unit = Unit::get(link, minor)?;
    let (ifnet, setup, mac) = {
        let mut state = unit.state.lock();
        if state.is_claimed() {
            return Err(Errno::EBUSY);
        }
        state.opening = true;
        if state.ifnet.is_none() && unit.kind().medium == Medium::Ethernet {
            state.mac = ether::new_mac(unit.number()); // TA-1: with the interface
        }
        (state.ifnet.clone(), state.setup, state.mac)
    };
    // Built without the unit mutex: attaching calls back into the driver.
    let built = build_interface(unit, ifnet, setup, &mac);
    let mut state = unit.state.lock();
    state.opening = false;
    let (ifnet, setup) = built.map_err(|(ifnet, setup, e)| {
        state.ifnet = ifnet;
        state.setup = setup;
        e
    })?;
    state.setup = setup;
    state.open = true;
    state.pid = proc::self_pid(); // U-6
    state.mac_register = state.mac; // TI-1
    state.ifnet = Some(ifnet.clone());
    drop(state);
    if unit.kind().medium == Medium::Ethernet {
        // TK-1: synchronous, so no driver lock is held; after the unit is open.
        ifnet.post_link_event(unit.kind().table, unit.number() as u32, true);
    }
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
    mac: &[u8; ETHER_ADDR_LEN],
) -> Result<(Ifnet, Setup), BuildError> {
    let ifnet = match ifnet {
        Some(ifnet) => ifnet,
        None => {
            let kind = unit.kind();
            let ifnet = Ifnet::allocate(kind.table, unit.number() as u32, unit.softc())
                .map_err(|e| (None, setup, e))?;
            ifnet.set_mtu(kind.mtu);
            ifnet.set_baudrate(0);
            // Every flag replaced: the creation defaults (U-4, TU-4).
            ifnet.set_flags(kind.flags, IfFlags::from_bits_retain(u16::MAX));
            // On failure the handle's drop gives back the allocation's reference.
            let attached = match kind.medium {
                Medium::Ip => ifnet.attach(),
                Medium::Ethernet => {
                    ifnet.set_hdrlen(ETHER_HDR_LEN as u8);
                    ifnet.attach_ethernet(mac)
                }
            };
            attached.map_err(|e| (None, setup, e))?;
            setup.attached = true;
            ifnet
        }
    };
    if !setup.bpf {
        let kind = unit.kind();
        ifnet.bpf_attach(kind.dlt, kind.bpf_header_len as u32); // U-9
        setup.bpf = true;
    }
    // No protocol is attached here: the stack plumbs IPv4 and IPv6 when the first address of
    // each family is added, through the driver's plumbers for tun (U-8) and XNU's own
    // Ethernet plumbers for tap (TU-6, TN-2).
    Ok((ifnet, setup))
}

/// close (last close or revoke): the steps of section 10 (TC-1..TC-5), in order; always
/// succeeds for an open unit.
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
    if unit.kind().medium == Medium::Ethernet {
        // TC-5, TK-1: the link goes off with no driver lock held; the unit stays claimed
        // (`closing`) so that a new open cannot post its "on" first.
        let ifnet = state.ifnet.clone();
        drop(state);
        if let Some(ifnet) = ifnet {
            ifnet.post_link_event(unit.kind().table, unit.number() as u32, false);
        }
        state = unit.state.lock();
    }
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
        Medium::Ethernet => l2::read(unit, item, uio),
    }
}

/// write: one call is one packet or frame (W1..W9, TW1..TW8); never sleeps (WR-2).
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
        Medium::Ethernet => l2::write(kind, uio, len, &ifnet),
    };
    let count = match &result {
        Err(_) => Count::InputError,  // W2..W6, TW2..TW5
        Ok(None) => Count::InputDrop, // W7, W8, TW6, TW7
        Ok(Some(inbound)) => Count::Input {
            bytes: inbound.bytes,
        }, // W9, TW8
    };
    unit.count(&ifnet, count);
    let Some(inbound) = result? else {
        return Ok(()); // dropped, full length written (W7, W8, TW6, TW7)
    };
    ifnet.tap_in(&inbound.packet, kind.dlt, inbound.bpf_header());
    // Without the unit mutex: input may loop back into output. The stack owns the packet
    // now, whatever it answers; the interface statistics count it through `input`.
    let _ = ifnet.input(inbound.packet, inbound.bytes);
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
