//! What an Ethernet (tap) unit adds on the interface side (docs/tap-contract.md sections 3,
//! 8, 10, 11): its link address, the interface ioctls of the TN table that tun does not have,
//! and the media it reports.

use crate::kpi::args::IfIoctlArg;
use crate::kpi::errno::Errno;
use crate::kpi::ifnet::{IfFlags, Ifnet};
use crate::kpi::ioccom;
use crate::kpi::random;
use crate::limits::ETHER_ADDR_LEN;
use crate::unit::Unit;

/// `AF_LINK`: the family `SIOCSIFLLADDR`'s address must have.
const AF_LINK: u8 = 18;
/// `IFM_ETHER | IFM_1000_T | IFM_FDX` (bsd/net/if_media.h): what `SIOCGIFMEDIA` reports.
const MEDIA_1000_T_FDX: u32 = 0x0010_0030;
/// `IFM_AVALID`: the status word is valid.
const IFM_AVALID: u32 = 0x1;
/// `IFM_ACTIVE`: the link is up.
const IFM_ACTIVE: u32 = 0x2;

/// A medium's answer to an interface ioctl: handled, with its result, or not one of its own.
pub enum Answer {
    /// Handled.
    Done(Result<(), Errno>),
    /// Not a command of this medium.
    NotMine,
}

/// TA-1: a new link address for `unit`: six random bytes (of a random UUID, whose fixed bits
/// are bytes 6 and 8), made unicast and locally administered, the last byte the unit number.
pub fn new_mac(unit: usize) -> [u8; ETHER_ADDR_LEN] {
    let random = random::uuid();
    let mut mac = [0u8; ETHER_ADDR_LEN];
    mac.copy_from_slice(&random[..ETHER_ADDR_LEN]);
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac[5] = unit as u8;
    mac
}

/// TN-5: on `SIOCSIFFLAGS`, `IFF_RUNNING` follows `IFF_UP` (the stack applied the flags).
pub fn running_follows_up(ifnet: &Ifnet) {
    let running = if ifnet.is_up() {
        IfFlags::RUNNING
    } else {
        IfFlags::empty()
    };
    ifnet.set_flags(running, IfFlags::RUNNING);
}

/// The Ethernet-only interface ioctls (TN table); `NotMine` for any other command. Runs with
/// no unit mutex held while it calls into the stack (TA-4: `ifnet_set_lladdr` re-enters
/// `output` synchronously).
pub fn ioctl(unit: &'static Unit, ifnet: &Ifnet, arg: &mut IfIoctlArg) -> Answer {
    let kind = unit.kind();
    match arg.cmd() {
        ioccom::SIOCSIFLLADDR => Answer::Done(set_lladdr(unit, ifnet, arg)),
        ioccom::SIOCGIFDEVMTU => {
            let done = arg.set_ifreq_devmtu(ifnet.mtu(), kind.min_mtu, kind.max_mtu);
            Answer::Done(if done { Ok(()) } else { Err(Errno::EINVAL) })
        }
        ioccom::SIOCSIFALTMTU => Answer::Done(match arg.ifreq_mtu() {
            // No hardware frame limit (TF-3): a valid value changes nothing.
            Some(mtu) if (kind.min_mtu..=kind.max_mtu).contains(&mtu) => Ok(()),
            _ => Err(Errno::EINVAL),
        }),
        ioccom::SIOCGIFMEDIA32 | ioccom::SIOCGIFMEDIA64 => {
            let open = unit.state.lock().open;
            let status = if open {
                IFM_AVALID | IFM_ACTIVE
            } else {
                IFM_AVALID
            };
            Answer::Done(arg.set_ifmediareq(MEDIA_1000_T_FDX, status))
        }
        _ => Answer::NotMine,
    }
}

/// `SIOCSIFLLADDR` (TA-4, checks as tuntaposx): an `AF_LINK` address of six bytes, neither
/// multicast nor all zero, becomes the link address.
fn set_lladdr(unit: &'static Unit, ifnet: &Ifnet, arg: &mut IfIoctlArg) -> Result<(), Errno> {
    let (len, family, mac) = arg.ifreq_lladdr().ok_or(Errno::EINVAL)?;
    let multicast = mac[0] & 0x01 != 0;
    if family != AF_LINK || usize::from(len) != ETHER_ADDR_LEN || multicast || mac == [0; 6] {
        return Err(Errno::EINVAL);
    }
    ifnet.set_lladdr(&mac)?;
    unit.state.lock().mac = mac;
    Ok(())
}
