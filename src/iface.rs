//! The interface side: what the stack calls on `tunN` and `tapN` (docs/tun-contract.md
//! sections 6 and 8, docs/tap-contract.md sections 7 and 10; Ethernet's own ioctls are in
//! [`crate::ether`]), and the removal of the interface's addresses at close and unload
//! (section 10 step 4, ST-3, TC-3).

use crate::counters::Count;
use crate::ether::{self, Answer};
use crate::framing::{self, Framing};
use crate::gate;
use crate::ioctl::{self, IFNAMSIZ};
use crate::klog;
use crate::kpi::addr::{AddressList, KernelSocket, SockAddr, SOCKADDR_MAX_LEN};
use crate::kpi::args::IfIoctlArg;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet, AF_INET6};
use crate::kpi::lock::wakeup;
use crate::kpi::log::TextBuf;
use crate::kpi::mbuf::{Mbuf, PacketTag};
use crate::limits::{AF_HEADER_LEN, ETHER_HDR_LEN};
use crate::link::Medium;
use crate::owner;
use crate::queue::QueuedPacket;
use crate::unit::{Unit, UnitState};
use core::ffi::CStr;

/// The interface name of `unit`, e.g. `"tun3"`, NUL-padded to `IFNAMSIZ` (`TUNGIFNAME`,
/// ifreq).
pub fn interface_name(unit: &'static Unit) -> [u8; IFNAMSIZ] {
    let mut name = [0u8; IFNAMSIZ];
    // A kind's name and a unit number fit in 15 bytes; the last byte stays NUL.
    TextBuf::format(
        &mut name[..IFNAMSIZ - 1],
        format_args!("{}{}", unit.kind().name, unit.number()),
    );
    name
}

/// `AF_UNSPEC`: the destination family of a BPF write without a complete header (bpf.c).
const AF_UNSPEC: u32 = 0;

/// The mbuf tag in which the framer records an output packet's destination for a reader in
/// link-layer mode (F-5, OUT-6).
static DEST_TAG: PacketTag = PacketTag::new(1);

/// Load: looks up the module id of the driver's mbuf tags (`mbuf_tag_id_find` of the bundle id).
pub fn register_tags(bundle_id: &CStr) -> Result<(), Errno> {
    DEST_TAG.register(bundle_id)
}

/// framer (OUT-6): puts the link header in front of the packet, the 4-byte host-order family
/// word BPF shows (`DLT_NULL`), as Apple's utun framer puts its family word. The family is the
/// destination's; a BPF write arrives with an `AF_UNSPEC` destination, and then the IP
/// version nibble decides (output applies O3 to anything else). For a reader in link-layer
/// mode the destination travels in an mbuf tag, never in the data. On error returns what is
/// left of the packet, for the stack to free.
pub fn frame(
    ifnet: &Ifnet,
    packet: Mbuf,
    dest: Option<SockAddr>,
) -> Result<Mbuf, (Option<Mbuf>, Errno)> {
    let dest_family = dest.as_ref().map_or(AF_UNSPEC, SockAddr::family);
    let family = if dest_family == AF_UNSPEC {
        packet
            .byte_at(0)
            .and_then(|b| framing::family_from_version(b).ok())
            .unwrap_or(AF_UNSPEC)
    } else {
        dest_family
    };
    let mut packet = packet.prepend(AF_HEADER_LEN).map_err(|e| (None, e))?;
    let head = packet.head_mut();
    if head.len() < AF_HEADER_LEN {
        return Err((Some(packet), Errno::ENOBUFS));
    }
    head[..AF_HEADER_LEN].copy_from_slice(&family.to_ne_bytes());
    if let Some(dest) = dest.filter(|_| framing::is_supported_family(dest_family)) {
        if wants_destination(ifnet) {
            // Without the tag (no memory) a link-layer read shows the unspecified address.
            let _ = packet.set_tag(&DEST_TAG, dest.as_bytes());
        }
    }
    Ok(packet)
}

/// Whether the unit of `ifnet` reads in link-layer mode, so output must keep destinations.
fn wants_destination(ifnet: &Ifnet) -> bool {
    let Ok(_gate) = gate::enter() else {
        return false;
    };
    Unit::of_interface(ifnet).is_some_and(|u| u.state.lock().framing == Framing::LinkLayer)
}

/// Takes the link header off an output packet: the family word the framer wrote (or a BPF
/// writer's complete `DLT_NULL` header), else, for a bare packet that skipped the framer
/// (`dlil_output` raw output), the IP version nibble. `EAFNOSUPPORT` (O3) for anything else.
/// The destination comes from the framer's tag, or is unspecified.
fn unframe(packet: &mut Mbuf) -> Result<(u32, SockAddr), Errno> {
    let mut word = [0u8; AF_HEADER_LEN];
    let header = packet
        .copy_data(0, &mut word)
        .ok()
        .map(|()| u32::from_ne_bytes(word))
        .filter(|&f| framing::is_supported_family(f));
    let family = match header {
        Some(family) => {
            packet.trim_front(AF_HEADER_LEN);
            family
        }
        None => packet
            .byte_at(0)
            .ok_or(Errno::EAFNOSUPPORT)
            .and_then(framing::family_from_version)?,
    };
    let mut sockaddr = [0u8; SOCKADDR_MAX_LEN];
    let dest = match packet.tag(&DEST_TAG, &mut sockaddr) {
        Some(n) if n >= 2 => SockAddr::new(&sockaddr[..n]),
        _ => SockAddr::unspecified(family),
    };
    Ok((family, dest))
}

/// output: a packet or frame from the stack for the reader of the unit's device (O1..O5,
/// OUT-1..OUT-5; TO1..TO5, TO-1, TO-2). Never sleeps; every path queues the packet or frees
/// it exactly once.
pub fn output(ifnet: &Ifnet, mut packet: Mbuf) -> Result<(), Errno> {
    let Ok(_gate) = gate::enter() else {
        Count::OutputError.to_ifnet(ifnet); // unloading: the unit state is going away
        return Err(Errno::EHOSTDOWN);
    };
    let unit = Unit::of_interface(ifnet).ok_or(Errno::ENXIO)?;
    // An IP packet loses its link header here, before the lock; its verdict waits its turn.
    let link = match unit.kind().medium {
        Medium::Ip => unframe(&mut packet),
        Medium::Ethernet => Ok((0, SockAddr::new(&[]))),
    };
    let mut state = unit.state.lock();
    let result = enqueue(unit, &mut state, ifnet, packet, link);
    let count = match result {
        Ok(bytes) => Count::Output { bytes },    // O5, TO5
        Err(Errno::ENOBUFS) => Count::QueueDrop, // O4, TO4
        Err(_) => Count::OutputError,            // O1..O3, TO1..TO3
    };
    // Before the mutex is dropped: a reader never sees an uncounted packet.
    unit.count(ifnet, count);
    // OUT-2, IO-6: SIGIO once the packet is queued, sent after the mutex is dropped.
    let sigio = match result {
        Ok(_) if state.async_io => state.owner.target(),
        _ => None,
    };
    drop(state);
    if let Some(target) = sigio {
        owner::send_sigio(target);
    }
    result.map(|_| ())
}

/// O1..O5 (TO1..TO5) in order, with the unit mutex held; returns the queued length. `link`
/// is what [`unframe`] made of an IP packet (its family and destination), or nothing for a
/// frame.
fn enqueue(
    unit: &Unit,
    state: &mut UnitState,
    ifnet: &Ifnet,
    packet: Mbuf,
    link: Result<(u32, SockAddr), Errno>,
) -> Result<u32, Errno> {
    if !state.open || !ifnet.is_up() {
        return Err(Errno::EHOSTDOWN); // O1, O2, TO1, TO2
    }
    let kind = unit.kind();
    let (family, dest) = link?; // O3
    let family_word = family.to_ne_bytes();
    let bpf_header: &[u8] = match kind.medium {
        Medium::Ip if !framing::is_supported_family(family) => {
            return Err(Errno::EAFNOSUPPORT); // O3
        }
        Medium::Ip => &family_word,
        Medium::Ethernet if packet.len() < ETHER_HDR_LEN => return Err(Errno::EINVAL), // TO3
        Medium::Ethernet => &[], // the frame carries its own header
    };
    let bytes = packet.len() as u32;
    ifnet.tap_out(&packet, kind.dlt, bpf_header); // OUT-1, TO-1: before the queue limit
    if state.queue.len() >= kind.queue_limit {
        return Err(Errno::ENOBUFS); // O4: the packet is freed here
    }
    state
        .queue
        .push(QueuedPacket {
            packet,
            family,
            dest,
        })
        .map_err(|_rejected| Errno::ENOBUFS)?; // O4: the rejected packet is freed here
    unit.wake_all(state); // OUT-2
    Ok(bytes)
}

/// demux: the family the write path put in the frame header (WR-1).
pub fn demux(header: [u8; 4]) -> Result<u32, Errno> {
    let family = u32::from_ne_bytes(header);
    if framing::is_supported_family(family) {
        Ok(family)
    } else {
        Err(Errno::EAFNOSUPPORT)
    }
}

/// add_proto: only IPv4 and IPv6 attach to a tun interface.
pub fn check_protocol(family: u32) -> Result<(), Errno> {
    if framing::is_supported_family(family) {
        Ok(())
    } else {
        Err(Errno::EAFNOSUPPORT)
    }
}

/// ioctl on the interface (docs/tun-contract.md section 8, docs/tap-contract.md section 10).
/// Address arguments are `struct ifaddr *` and are never read; `IFF_UP` is read live, no
/// shadow copy is kept; a NULL argument is tolerated.
pub fn ioctl(ifnet: &Ifnet, arg: &mut IfIoctlArg) -> Result<(), Errno> {
    let cmd = arg.cmd();
    // Answered without the gate, touching no unit state: unload removes the last addresses
    // and detaches the interface (ST-3, TL-3) after the gate has closed, and the stack sends
    // these then. XNU aborts an address removal the driver refuses, and the protocol detaches
    // of ifnet_detach_final (dlil.c) mark the interface down with a NULL SIOCSIFFLAGS.
    match cmd {
        // The stack removes the address; nothing to do.
        ioctl::SIOCDIFADDR => return Ok(()),
        // The stack has applied the flags already; any combination is fine (an Ethernet
        // unit's RUNNING follows UP, TN-5).
        ioctl::SIOCSIFFLAGS => {
            let unit = Unit::of_interface(ifnet).ok_or(Errno::ENXIO)?;
            if unit.kind().medium == Medium::Ethernet {
                ether::running_follows_up(ifnet);
            }
            return Ok(());
        }
        _ => {}
    }
    let _gate = gate::enter()?;
    let unit = Unit::of_interface(ifnet).ok_or(Errno::ENXIO)?;
    let kind = unit.kind();
    match cmd {
        ioctl::SIOCSIFADDR | ioctl::SIOCAIFADDR | ioctl::SIOCSIFDSTADDR => {
            let up = IfFlags::UP | IfFlags::RUNNING;
            ifnet.set_flags(up, up);
            Ok(())
        }
        ioctl::SIOCADDMULTI | ioctl::SIOCDELMULTI => Ok(()),
        ioctl::SIOCSIFMTU => {
            let mtu = arg.ifreq_mtu().ok_or(Errno::EINVAL)?;
            if !(kind.min_mtu..=kind.max_mtu).contains(&mtu) {
                return Err(Errno::EINVAL);
            }
            ifnet.set_mtu(mtu);
            Ok(())
        }
        ioctl::SIOCGIFSTATUS => {
            let pid = {
                let state = unit.state.lock();
                state.open.then_some(state.pid)
            };
            if let Some(ascii) = arg.ifstat_ascii() {
                append_status(ascii, pid);
            }
            Ok(())
        }
        _ => {
            let answer = match kind.medium {
                Medium::Ip => Answer::NotMine,
                Medium::Ethernet => ether::ioctl(unit, ifnet, arg),
            };
            match answer {
                Answer::Done(result) => result,
                Answer::NotMine => Err(Errno::EOPNOTSUPP),
            }
        }
    }
}

/// Appends `"\topen (pid P)\n"` or `"\tclosed\n"` to the NUL-terminated text in `ascii`
/// (`IFSTATMAX` + 1 bytes), cutting it to fit and always leaving a terminating NUL.
pub fn append_status(ascii: &mut [u8], pid: Option<i32>) {
    let Some(last) = ascii.len().checked_sub(1) else {
        return;
    };
    let end = ascii[..last].iter().position(|&b| b == 0).unwrap_or(last);
    // TextBuf cuts at the end of the buffer, which stops before the last byte.
    let written = match pid {
        Some(pid) => TextBuf::format(&mut ascii[end..last], format_args!("\topen (pid {pid})\n")),
        None => TextBuf::format(&mut ascii[end..last], format_args!("\tclosed\n")),
    };
    ascii[end + written] = 0;
}

/// Removes every IPv4 and IPv6 address of `unit`'s interface, link-local included, through
/// in-kernel sockets (`SIOCDIFADDR`, `SIOCDIFADDR_IN6`); their routes go with them (close step
/// 4, ST-3). Returns how many could not be removed; each failure is logged. Call it without
/// the unit mutex: the stack calls back into [`ioctl`].
///
/// Each address goes back exactly as `ifaddr_address` gave it: a link-local one keeps its
/// embedded scope (the KAME form), which `in6_control` accepts for this interface.
pub fn remove_addresses(unit: &'static Unit, ifnet: &Ifnet) -> u64 {
    let name = interface_name(unit);
    let (prefix, number) = (unit.kind().name, unit.number());
    let list = match AddressList::of(ifnet) {
        Ok(list) => list,
        Err(e) => {
            klog!(
                "{}{}: cannot list addresses: errno {}",
                prefix,
                number,
                e.code()
            );
            return 1;
        }
    };
    let mut inet: Option<KernelSocket> = None;
    let mut inet6: Option<KernelSocket> = None;
    let mut failures = 0;
    list.for_each_ip(|addr| {
        let family = addr.family();
        let slot = if family == AF_INET6 {
            &mut inet6
        } else {
            &mut inet
        };
        let result = match slot.as_ref() {
            Some(so) => so.remove_address(&name, &addr),
            None => KernelSocket::new(family)
                .and_then(|so| so.remove_address(&name, &addr).map(|()| *slot = Some(so))),
        };
        if let Err(e) = result {
            failures += 1;
            klog!(
                "{}{}: removing an address of family {} failed: errno {}",
                prefix,
                number,
                family,
                e.code()
            );
        }
    });
    failures
}

/// The unit whose interface is `ifnet`, if it is one of this driver's: the plumbers are global
/// for `IFNET_FAMILY_TUN`, so the stack may offer another driver's interface.
fn unit_of_interface(ifnet: &Ifnet) -> Option<&'static Unit> {
    let unit = Unit::of_interface(ifnet)?;
    let ours = unit.state.lock().ifnet.as_ref() == Some(ifnet);
    ours.then_some(unit)
}

/// Plumber attach (U-8): attaches `family` to this one interface. `EEXIST` when it is already
/// attached (XNU's IPv6 path treats that as success), `ENXIO` for an interface that is not one
/// of this driver's, `EAFNOSUPPORT` for a family other than IPv4 and IPv6. Runs without the
/// unit mutex: attaching calls back into the interface ioctl (U-8a).
pub fn plumb(ifnet: &Ifnet, family: u32) -> Result<(), Errno> {
    let _gate = gate::enter()?;
    check_protocol(family)?;
    let unit = unit_of_interface(ifnet).ok_or(Errno::ENXIO)?;
    ifnet.attach_protocol(family)?;
    unit.state.lock().protocols.set(family, true);
    Ok(())
}

/// Plumber detach: detaches `family` from this one interface, if it is attached.
pub fn unplumb(ifnet: &Ifnet, family: u32) {
    let Ok(_gate) = gate::enter() else {
        return; // unloading: unload detaches the protocols itself (ST-3)
    };
    let Some(unit) = unit_of_interface(ifnet) else {
        return;
    };
    // ENXIO: it was not attached (any more); either way it is not now.
    if matches!(ifnet.detach_protocol(family), Ok(()) | Err(Errno::ENXIO)) {
        unit.state.lock().protocols.set(family, false);
    }
}

/// detached: the interface is gone from the stack; unload may go on (ST-3). Counted by the
/// gate but never refused: unload itself waits for this callback.
pub fn detached(ifnet: &Ifnet) {
    let _gate = gate::enter_unchecked();
    if let Some(unit) = Unit::of_interface(ifnet) {
        let mut state = unit.state.lock();
        state.detached = true;
        wakeup(unit.channel());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_nul_padded() {
        let tun = crate::unit::units_of(crate::link::LinkId::Tun);
        assert_eq!(&interface_name(&tun[0])[..5], b"tun0\0");
        assert_eq!(&interface_name(&tun[15])[..6], b"tun15\0");
        assert!(interface_name(&tun[15])[5..].iter().all(|&b| b == 0));
    }

    #[test]
    fn status_text_is_appended_and_always_nul_terminated() {
        let mut ascii = [0u8; ioctl::IFSTATMAX + 1];
        ascii[..3].copy_from_slice(b"ab\0");
        append_status(&mut ascii, Some(42));
        assert_eq!(&ascii[..17], b"ab\topen (pid 42)\n");
        assert_eq!(ascii[17], 0);
        append_status(&mut ascii, None);
        assert_eq!(&ascii[17..26], b"\tclosed\n\0");
        let mut full = [b'x'; 8];
        full[5] = 0;
        append_status(&mut full, None);
        assert_eq!(&full, b"xxxxx\tc\0");
        let mut none: [u8; 0] = [];
        append_status(&mut none, None);
    }
}
