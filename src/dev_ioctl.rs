//! The device ioctls (docs/tun-contract.md section 7, docs/tap-contract.md section 9): framing modes, interface mode and
//! info, the interface name, the status pid, owner and async I/O, non-blocking I/O, the queue
//! length and the driver-wide debug level. Every command works whether or not the interface is
//! up, except `TUNSIFMODE`. The kernel has already copied the argument in (and copies it out
//! on success) by the size encoded in the command.

use crate::debug;
use crate::iface;
use crate::ioctl::{self, int_arg, set_int_arg, IFNAMSIZ, TUNINFO_LEN};
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet};
use crate::kpi::proc;
use crate::limits::ETHER_ADDR_LEN;
use crate::link::{LinkKind, Medium};
use crate::owner::Owner;
use crate::unit::{Unit, UnitState};
use core::ops::Range;

/// The interface modes `TUNSIFMODE` accepts: point-to-point or broadcast, with or without
/// multicast.
const MODES: [IfFlags; 4] = [
    IfFlags::POINTOPOINT,
    IfFlags::POINTOPOINT.union(IfFlags::MULTICAST),
    IfFlags::BROADCAST,
    IfFlags::BROADCAST.union(IfFlags::MULTICAST),
];
/// The flags `TUNSIFMODE` replaces.
const MODE_MASK: IfFlags = IfFlags::BROADCAST
    .union(IfFlags::POINTOPOINT)
    .union(IfFlags::MULTICAST);

/// `struct tuninfo` (8 bytes), by field.
struct TunInfo {
    baudrate: i32,
    mtu: u16,
    if_type: u8,
}

impl TunInfo {
    const BAUDRATE: Range<usize> = 0..4;
    const MTU: Range<usize> = 4..6;
    const TYPE: usize = 6;
    const PAD: usize = 7;

    /// Reads a `tuninfo`; `None` if `arg` is shorter than one.
    fn parse(arg: &[u8]) -> Option<TunInfo> {
        let arg = arg.get(..TUNINFO_LEN)?;
        Some(TunInfo {
            baudrate: i32::from_ne_bytes(arg[Self::BAUDRATE].try_into().ok()?),
            mtu: u16::from_ne_bytes(arg[Self::MTU].try_into().ok()?),
            if_type: arg[Self::TYPE],
        })
    }

    /// Writes it, pad byte zeroed.
    fn write(&self, arg: &mut [u8]) -> Option<()> {
        let arg = arg.get_mut(..TUNINFO_LEN)?;
        arg[Self::BAUDRATE].copy_from_slice(&self.baudrate.to_ne_bytes());
        arg[Self::MTU].copy_from_slice(&self.mtu.to_ne_bytes());
        arg[Self::TYPE] = self.if_type;
        arg[Self::PAD] = 0;
        Some(())
    }
}

/// One device ioctl on an open unit, with the unit mutex held (no call below re-enters the
/// driver). The commands every kind answers, then the kind's own; unknown commands, and the
/// other kinds' commands, → `ENOTTY` (TI table).
pub fn handle(
    unit: &'static Unit,
    state: &mut UnitState,
    cmd: u32,
    arg: &mut [u8],
) -> Result<(), Errno> {
    let int_in = |arg: &[u8]| int_arg(arg).ok_or(Errno::EFAULT);
    let int_out = |arg: &mut [u8], v: i32| set_int_arg(arg, v).ok_or(Errno::EFAULT);
    let kind = unit.kind();
    match cmd {
        ioctl::TUNSDEBUG => {
            debug::set_level(int_in(arg)?);
            Ok(())
        }
        ioctl::TUNGDEBUG => int_out(arg, debug::level()),
        ioctl::TUNSIFINFO => set_info(kind, interface(state)?, arg),
        ioctl::TUNGIFINFO => {
            let ifnet = interface(state)?;
            TunInfo {
                // The u32 the setter stored, read back as the int of the struct.
                baudrate: ifnet.baudrate() as u32 as i32,
                mtu: u16::try_from(ifnet.mtu()).unwrap_or(u16::MAX),
                if_type: kind.if_type,
            }
            .write(arg)
            .ok_or(Errno::EFAULT)
        }
        ioctl::TUNGIFNAME => {
            let req = arg.get_mut(..ioctl::IFREQ_LEN).ok_or(Errno::EFAULT)?;
            req.fill(0);
            req[..IFNAMSIZ].copy_from_slice(&iface::interface_name(unit));
            Ok(())
        }
        ioctl::FIONBIO => {
            state.nonblocking = int_in(arg)? != 0;
            Ok(())
        }
        ioctl::FIOASYNC => {
            state.async_io = int_in(arg)? != 0; // IO-7: any value, both ways
            Ok(())
        }
        ioctl::FIONREAD => {
            let framed = state.queue.peek().map_or(0, |head| {
                head.packet.len() + state.framing.read_prefix_len(&head.dest)
            });
            int_out(arg, i32::try_from(framed).unwrap_or(i32::MAX))
        }
        ioctl::TIOCSPGRP => {
            state.owner = Owner::from_pgrp(int_in(arg)?)?; // IO-1..IO-3
            Ok(())
        }
        ioctl::TIOCGPGRP => int_out(arg, state.owner.pgrp()), // IO-4
        ioctl::FIOSETOWN => {
            state.owner = Owner::from_setown(int_in(arg)?)?; // IO-5
            Ok(())
        }
        ioctl::FIOGETOWN => int_out(arg, state.owner.setown_value()), // IO-5
        _ => match kind.medium {
            Medium::Ip => handle_ip(state, cmd, arg),
            Medium::Ethernet => handle_ethernet(state, cmd, arg),
        },
    }
}

/// The commands only an IP (tun) unit answers: framing modes, interface mode, status pid.
fn handle_ip(state: &mut UnitState, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let int_in = |arg: &[u8]| int_arg(arg).ok_or(Errno::EFAULT);
    match cmd {
        ioctl::TUNSLMODE => {
            state.framing = state.framing.with_link_layer(int_in(arg)? != 0); // F-1
            Ok(())
        }
        ioctl::TUNSIFHEAD => {
            state.framing = state.framing.with_af_header(int_in(arg)? != 0); // F-1
            Ok(())
        }
        ioctl::TUNGIFHEAD => set_int_arg(
            arg,
            i32::from(state.framing == crate::framing::Framing::AfHeader),
        )
        .ok_or(Errno::EFAULT),
        ioctl::TUNSIFMODE => set_mode(interface(state)?, int_in(arg)?),
        ioctl::TUNSIFPID => {
            state.pid = proc::self_pid();
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// The commands only an Ethernet (tap) unit answers: the MAC register of device
/// `SIOCGIFADDR`/`SIOCSIFADDR` (TI-1). The interface's own address is not changed.
fn handle_ethernet(state: &mut UnitState, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let mac = 0..ETHER_ADDR_LEN;
    match cmd {
        ioctl::SIOCGIFADDR => {
            let req = arg.get_mut(mac.clone()).ok_or(Errno::EFAULT)?;
            req.copy_from_slice(&state.mac_register);
            Ok(())
        }
        ioctl::SIOCSIFADDR => {
            let req = arg.get(mac).ok_or(Errno::EFAULT)?;
            state.mac_register.copy_from_slice(req);
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// The interface of an open unit (built by open before the unit is marked open).
fn interface(state: &UnitState) -> Result<&Ifnet, Errno> {
    state.ifnet.as_ref().ok_or(Errno::ENXIO)
}

/// `TUNSIFINFO`/`TAPSIFINFO`: type first (`EPROTOTYPE` unless the kind's own), then the MTU
/// range (`EINVAL`); on error nothing changes.
fn set_info(kind: &LinkKind, ifnet: &Ifnet, arg: &[u8]) -> Result<(), Errno> {
    let info = TunInfo::parse(arg).ok_or(Errno::EFAULT)?;
    if info.if_type != kind.if_type {
        return Err(Errno::EPROTOTYPE);
    }
    if !(kind.min_mtu..=kind.max_mtu).contains(&u32::from(info.mtu)) {
        return Err(Errno::EINVAL);
    }
    ifnet.set_mtu(u32::from(info.mtu));
    ifnet.set_baudrate(u64::from(info.baudrate as u32));
    Ok(())
}

/// `TUNSIFMODE`: `EBUSY` while up (checked first), `EINVAL` for anything but the four modes.
fn set_mode(ifnet: &Ifnet, mode: i32) -> Result<(), Errno> {
    if ifnet.is_up() {
        return Err(Errno::EBUSY);
    }
    let mode = u16::try_from(mode)
        .ok()
        .map(IfFlags::from_bits_retain)
        .filter(|m| MODES.contains(m))
        .ok_or(Errno::EINVAL)?;
    ifnet.set_flags(mode, MODE_MASK);
    Ok(())
}
