//! Interface events, bridges and VLANs (xnu bsd/net/dlil.c `ifnet_event`,
//! `dlil_event_internal`; bsd/net/if_bridge.c `bridge_ioctl_add`, `bridge_iff_event`,
//! `interface_media_active`; bsd/net/if_vlan.c `vlan_parent_create`): `ifnet_event` reaches the
//! driver's event callback and is posted before it returns; on a bridge member a link event
//! makes the bridge read the media with the driver's ioctl inside the event; adding a member
//! sets promiscuous mode and reads the media; configuring a VLAN asks the parent for its
//! device MTU and fails with the driver's error.

mod common;
mod ifdrv;

use common::*;
use ifdrv::ether::{self, SIOCGIFDEVMTU, SIOCGIFMEDIA64, SIOCSIFFLAGS};
use std::sync::Mutex;
use xnu_sim::abi::*;
use xnu_sim::netinspect::{bridge_media_active, events, interface};
use xnu_sim::{link, stack, Errno};

const NAME: &str = "evtest0";

/// The event codes the driver's event callback saw, in order.
static SEEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

unsafe extern "C" fn driver_event(_ifp: ifnet_t, msg: *const kev_msg) {
    // SAFETY: the stack passes a live kev_msg: vendor, class, subclass, event code words.
    let code = unsafe { msg.cast::<u32>().add(3).read() };
    SEEN.lock().unwrap().push(code);
}

fn tap() -> ifnet_t {
    boot();
    ether::attach_with("evtest", 0, |p| p.event = Some(driver_event))
}

#[test]
fn ifnet_event_reaches_the_driver_and_is_posted_before_it_returns() {
    let ifp = tap();
    assert_eq!(ether::link_event(ifp, "evtest", 0, KEV_DL_LINK_ON), 0);
    assert_eq!(
        *SEEN.lock().unwrap(),
        vec![KEV_DL_LINK_ON],
        "the driver's event callback"
    );
    let ev = events(NAME).pop().unwrap();
    assert_eq!(
        (ev.vendor_code, ev.kev_class, ev.kev_subclass, ev.event_code),
        (
            KEV_VENDOR_APPLE,
            KEV_NETWORK_CLASS,
            KEV_DL_SUBCLASS,
            KEV_DL_LINK_ON
        )
    );
    assert_eq!(ev.data.len(), 24, "total_size 48 less the 24-byte header");
    assert_eq!(ev.data[..4], IFNET_FAMILY_ETHERNET.to_ne_bytes());
    assert_eq!(&ev.data[8..14], b"evtest");
    // SAFETY: NULL arguments are refused before any access.
    unsafe {
        assert_eq!(
            ether::ifnet_event(std::ptr::null_mut(), std::ptr::null_mut()),
            Errno::EINVAL.0
        );
        assert_eq!(
            ether::ifnet_event(ifp, std::ptr::null_mut()),
            Errno::EINVAL.0
        );
    }
}

#[test]
fn ifnet_event_with_a_short_total_size_panics() {
    const TEST: &str = "ifnet_event_with_a_short_total_size_panics";
    if is_child(TEST) {
        let ifp = tap();
        let mut msg = [16u32, 1, 1, 2, 0, KEV_DL_LINK_ON, 0];
        // SAFETY: a kern_event_msg whose total_size is below its header size: must panic.
        unsafe { ether::ifnet_event(ifp, msg.as_mut_ptr().cast()) };
        child_survived();
    }
    expect_kernel_panic(TEST, "smaller than the 24-byte header");
}

#[test]
fn bridge_member_link_events_read_the_media_inside_the_event() {
    let ifp = tap();
    stack::set_flags(NAME, IFF_UP, 0).unwrap();
    ifdrv::clear_ioctls();
    link::bridge_add_member(NAME).unwrap();
    assert_eq!(
        ifdrv::ioctl_calls(),
        vec![(SIOCSIFFLAGS, true), (SIOCGIFMEDIA64, false)],
        "promiscuous while up, then the media"
    );
    assert_eq!(interface(NAME).unwrap().flags & IFF_PROMISC, IFF_PROMISC);
    assert_eq!(bridge_media_active(NAME), Some(true));
    assert_eq!(link::bridge_add_member(NAME), Err(Errno::EEXIST));

    ether::set_link_up(false);
    ifdrv::clear_ioctls();
    assert_eq!(ether::link_event(ifp, "evtest", 0, KEV_DL_LINK_OFF), 0);
    assert_eq!(
        ifdrv::ioctls(),
        vec![SIOCGIFMEDIA64],
        "the bridge asked the driver inside ifnet_event"
    );
    assert_eq!(bridge_media_active(NAME), Some(false));
    ether::set_link_up(true);
    ether::link_event(ifp, "evtest", 0, KEV_DL_LINK_ON);
    assert_eq!(bridge_media_active(NAME), Some(true));

    link::bridge_remove_member(NAME).unwrap();
    assert_eq!(interface(NAME).unwrap().flags & IFF_PROMISC, 0);
    assert_eq!(bridge_media_active(NAME), None);
}

#[test]
fn bridge_add_while_down_sets_the_flag_without_telling_the_driver() {
    let _ifp = tap();
    ifdrv::clear_ioctls();
    link::bridge_add_member(NAME).unwrap();
    assert_eq!(
        ifdrv::ioctls(),
        vec![SIOCGIFMEDIA64],
        "no SIOCSIFFLAGS while down"
    );
    assert_eq!(interface(NAME).unwrap().flags & IFF_PROMISC, IFF_PROMISC);
    let media = link::media(NAME).unwrap();
    assert_eq!(
        (media.current, media.status, media.count),
        (ether::MEDIA, 3, 1)
    );
}

#[test]
fn vlan_configuration_asks_the_parent_for_its_device_mtu() {
    let _ifp = tap();
    ifdrv::clear_ioctls();
    let devmtu = link::vlan_configure(NAME).unwrap();
    assert_eq!(ifdrv::ioctls(), vec![SIOCGIFDEVMTU]);
    assert_eq!((devmtu.current, devmtu.min, devmtu.max), (1500, 72, 65517));
    ether::script_ioctl(SIOCGIFDEVMTU, Some(Errno::EOPNOTSUPP.0));
    assert_eq!(
        link::vlan_configure(NAME),
        Err(Errno::EOPNOTSUPP),
        "the configuration fails with the driver's error"
    );
}
