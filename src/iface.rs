//! The interface side: what the stack calls on `tunN` (tun-contract.md sections 6 and 8).

use crate::driver;
use crate::errno::Errno;
use crate::framing;
use crate::ioctl;
use crate::kpi::entry::IfIoctlArg;
use crate::kpi::ifnet::{flags, Ifnet};
use crate::kpi::lock::wakeup;
use crate::kpi::mbuf::Mbuf;
use crate::limits::{MAX_SOCKADDR_LEN, TUN_MAXMTU, TUN_MINMTU};
use crate::queue::{Destination, QueuedPacket};
use crate::unit::UNITS;

/// The framer puts this in front of every outbound packet: the family (host order) and the
/// destination sockaddr the stack gave. Output takes it off again before queueing.
const OUTPUT_TAG_LEN: usize = 4 + MAX_SOCKADDR_LEN;

/// framer: records the family and destination for output (the ifnet output callback only
/// gets the packet). On error returns what is left of the packet, for the stack to free.
pub fn frame(packet: Mbuf, dest: &[u8]) -> Result<Mbuf, (Option<Mbuf>, Errno)> {
    let family = dest.get(1).copied().map_or(0, u32::from);
    let mut packet = packet.prepend(OUTPUT_TAG_LEN).map_err(|e| (None, e))?;
    let head = packet.head_mut();
    if head.len() < OUTPUT_TAG_LEN {
        return Err((Some(packet), Errno::ENOBUFS));
    }
    head[..4].copy_from_slice(&family.to_ne_bytes());
    let kept = dest.len().min(MAX_SOCKADDR_LEN);
    head[4..4 + kept].copy_from_slice(&dest[..kept]);
    head[4 + kept..OUTPUT_TAG_LEN].fill(0);
    Ok(packet)
}

/// Takes the framer's tag off a packet.
fn untag(packet: &mut Mbuf) -> Result<(u32, Destination), Errno> {
    if packet.len() < OUTPUT_TAG_LEN {
        return Err(Errno::EAFNOSUPPORT);
    }
    let mut tag = [0u8; OUTPUT_TAG_LEN];
    packet.copy_data(0, &mut tag)?;
    packet.trim_front(OUTPUT_TAG_LEN);
    let family = u32::from_ne_bytes([tag[0], tag[1], tag[2], tag[3]]);
    let sockaddr = &tag[4..];
    let sa_len = usize::from(sockaddr[0]).clamp(2, MAX_SOCKADDR_LEN);
    Ok((family, Destination::new(&sockaddr[..sa_len])))
}

/// output: a packet from the stack for the reader of `/dev/tunN` (O1..O5, OUT-1..OUT-5).
/// Never sleeps; every path queues the packet or frees it exactly once.
pub fn output(unit: usize, ifnet: Ifnet, mut packet: Mbuf) -> Result<(), Errno> {
    let Ok(_gate) = driver::enter() else {
        ifnet.count_out(0, 0, 1);
        return Err(Errno::EHOSTDOWN);
    };
    let unit = UNITS.get(unit).ok_or(Errno::ENXIO)?;
    let result = untag(&mut packet).and_then(|(family, dest)| {
        let bytes = packet.len() as u32;
        let mut state = unit.state.lock();
        if !state.open || !ifnet.is_up() {
            return Err(Errno::EHOSTDOWN); // O1, O2
        }
        if !framing::is_supported_family(family) {
            return Err(Errno::EAFNOSUPPORT); // O3
        }
        ifnet.tap_out(&packet, family); // OUT-1: before the queue limit
        if let Err(rejected) = state.queue.push(QueuedPacket {
            packet,
            family,
            dest,
        }) {
            state.counters.queue_drops += 1;
            drop(rejected);
            return Err(Errno::ENOBUFS); // O4
        }
        unit.wake_all(&state); // OUT-2
        Ok(bytes)
    });
    match result {
        Ok(bytes) => {
            ifnet.count_out(1, bytes, 0); // O5
            Ok(())
        }
        Err(e) => {
            ifnet.count_out(0, 0, 1);
            Err(e)
        }
    }
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

/// ioctl on the interface (section 8). Address arguments are `struct ifaddr *` and are never
/// read; `IFF_UP` is read live, no shadow copy is kept.
pub fn ioctl(_unit: usize, ifnet: Ifnet, cmd: u32, arg: &IfIoctlArg) -> Result<(), Errno> {
    let _gate = driver::enter()?;
    match cmd {
        ioctl::SIOCSIFADDR | ioctl::SIOCAIFADDR | ioctl::SIOCSIFDSTADDR => {
            ifnet.set_flags(flags::UP | flags::RUNNING, flags::UP | flags::RUNNING);
            Ok(())
        }
        ioctl::SIOCDIFADDR | ioctl::SIOCSIFFLAGS | ioctl::SIOCADDMULTI | ioctl::SIOCDELMULTI => {
            Ok(())
        }
        ioctl::SIOCSIFMTU => {
            let mtu = arg.ifreq_mtu().ok_or(Errno::EINVAL)?;
            if !(TUN_MINMTU..=TUN_MAXMTU).contains(&mtu) {
                return Err(Errno::EINVAL);
            }
            ifnet.set_mtu(mtu);
            Ok(())
        }
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// detached: the interface is gone from the stack; unload may go on (ST-3). Not gated: unload
/// itself waits for this callback.
pub fn detached(unit: usize) {
    if let Some(unit) = UNITS.get(unit) {
        let mut state = unit.state.lock();
        state.detached = true;
        wakeup(unit.channel());
    }
}
