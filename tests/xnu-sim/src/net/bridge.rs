//! An Ethernet interface as a bridge member (xnu bsd/net/if_bridge.c `bridge_ioctl_add`,
//! `bridge_delete_member`, `bridge_iff_event`, `bridge_iflinkevent`,
//! `interface_media_active`): `ifconfig bridgeX addm tapN` puts the member into promiscuous
//! mode (which calls the driver's ioctl with `SIOCSIFFLAGS` and NULL only while it is up) and
//! reads its link state with `SIOCGIFMEDIA64`; afterwards every `KEV_DL_LINK_ON`/`OFF` event on
//! the member reads the media again, from inside the event (synchronously). Frame forwarding
//! between members is not modelled.

use crate::abi::*;
use crate::errno::Errno;
use crate::net::dlil;
use crate::net::event::KevMsg;
use crate::net::kpi_interface::with_if;
use crate::net::lladdr;
use std::collections::HashMap;
use std::sync::Mutex;

/// `SIOCGIFMEDIA64` (bsd/sys/sockio.h `_IOWR('i', 56, struct ifmediareq64)`).
pub const SIOCGIFMEDIA64: u32 = 0xc02c_6938;
/// `IFM_AVALID` (bsd/net/if_media.h): the status word is valid.
const IFM_AVALID: i32 = 0x1;
/// `IFM_ACTIVE` (bsd/net/if_media.h): the link is up.
const IFM_ACTIVE: i32 = 0x2;

/// One member's bridge state (`struct bridge_iflist`).
#[derive(Clone, Copy, Debug, Default)]
struct Member {
    /// `BIFF_PROMISC`: the bridge holds a promiscuous request on the member.
    promisc: bool,
    /// `BIFF_MEDIA_ACTIVE`.
    media_active: bool,
}

static MEMBERS: Mutex<Option<HashMap<usize, Member>>> = Mutex::new(None);

fn members<R>(f: impl FnOnce(&mut HashMap<usize, Member>) -> R) -> R {
    f(MEMBERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new))
}

/// `interface_media_active` (if_bridge.c): the driver's answer to `SIOCGIFMEDIA64` (a zeroed
/// `ifmediareq64`, 44 bytes, `ifm_ulist` NULL) through `ifnet_ioctl`; active when the call
/// succeeds, `IFM_AVALID` is set, `ifm_count` is positive and `IFM_ACTIVE` is set.
fn interface_media_active(ifp: ifnet_t) -> bool {
    let mut req = [0u8; 44];
    if dlil::ifnet_ioctl(ifp, 0, SIOCGIFMEDIA64, req.as_mut_ptr().cast()) != 0 {
        return false;
    }
    let word = |at: usize| i32::from_ne_bytes(req[at..at + 4].try_into().expect("4 bytes"));
    let (status, count) = (word(24), word(32));
    status & IFM_AVALID != 0 && count > 0 && status & IFM_ACTIVE != 0
}

/// `bridge_ioctl_add` (if_bridge.c): `EEXIST` for a member already added, `EINVAL` for an
/// interface that is not `IFT_ETHER`; then `ifnet_set_promiscuous(ifp, 1)` (an `ENETDOWN`
/// answer is ignored, any other error fails the add) and the media read.
pub(crate) fn add(ifp: ifnet_t) -> Result<(), Errno> {
    if members(|m| m.contains_key(&(ifp as usize))) {
        return Err(Errno::EEXIST);
    }
    if with_if(ifp, |i| i.if_type) != IFT_ETHER {
        return Err(Errno::EINVAL);
    }
    let promisc = match lladdr::set_promiscuous(ifp, true) {
        Ok(()) => true,
        Err(Errno::ENETDOWN) => false,
        Err(e) => return Err(e),
    };
    let media_active = interface_media_active(ifp);
    members(|m| {
        m.insert(
            ifp as usize,
            Member {
                promisc,
                media_active,
            },
        )
    });
    Ok(())
}

/// `bridge_delete_member` (if_bridge.c): gives the promiscuous request back; `ENOENT` when
/// the interface is not a member.
pub(crate) fn remove(ifp: ifnet_t) -> Result<(), Errno> {
    let member = members(|m| m.remove(&(ifp as usize))).ok_or(Errno::ENOENT)?;
    if member.promisc {
        let _ = lladdr::set_promiscuous(ifp, false);
    }
    Ok(())
}

/// `bridge_iff_event` → `bridge_iflinkevent` (if_bridge.c): on `KEV_DL_LINK_ON`/`OFF` for a
/// member, reads the media again (the driver's ioctl runs inside the event).
pub(crate) fn iff_event(ifp: ifnet_t, msg: &KevMsg) {
    if msg.vendor_code != KEV_VENDOR_APPLE
        || msg.kev_class != KEV_NETWORK_CLASS
        || msg.kev_subclass != KEV_DL_SUBCLASS
        || !matches!(msg.event_code, KEV_DL_LINK_ON | KEV_DL_LINK_OFF)
        || !members(|m| m.contains_key(&(ifp as usize)))
    {
        return;
    }
    let active = interface_media_active(ifp);
    members(|m| {
        if let Some(member) = m.get_mut(&(ifp as usize)) {
            member.media_active = active;
        }
    });
}

/// Whether `ifp` is a bridge member, and then whether the bridge saw its media active.
pub(crate) fn media_active(ifp: ifnet_t) -> Option<bool> {
    members(|m| m.get(&(ifp as usize)).map(|member| member.media_active))
}
