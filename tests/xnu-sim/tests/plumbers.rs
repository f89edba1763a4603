//! Protocol plumbing (xnu bsd/net/kpi_protocol.c `proto_register_plumber`, `proto_plumb`,
//! `proto_unregister_plumber`; bsd/net/dlil.c `ifnet_attach_protocol`,
//! `ifnet_detach_protocol`): the fake stack's address paths plumb protocols the way
//! bsd/netinet6/in6.c (`in6ctl_aifaddr` → in6_ifattach.c `in6_domifattach`) and
//! bsd/netinet/in.c (`in_domifattach`) do, and the new fault kinds fail their call once.

mod common;
mod ifdrv;

use common::*;
use ifdrv::{ifnet_attach_protocol, ifnet_detach, ifnet_detach_protocol, proto_param};
use ifdrv::{proto_register_plumber, proto_unregister_plumber};
use std::sync::Mutex;
use xnu_sim::abi::*;
use xnu_sim::config::{clear_faults, fail_nth, faults_fired, Fault};
use xnu_sim::netinspect::{inet6_setups, interface, is_plumber_registered};
use xnu_sim::{stack, Errno};

/// What the plumber's attach answers after attaching (or instead of it when non-zero).
static PLUMB_ANSWER: Mutex<errno_t> = Mutex::new(0);
/// (protocol, attach call) every plumber call saw.
static PLUMBED: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());

/// The plumber: attaches `pf` to the interface it is given, then answers as scripted.
unsafe extern "C" fn plumb(ifp: ifnet_t, pf: u32) -> errno_t {
    PLUMBED.lock().unwrap().push((pf, true));
    let answer = *PLUMB_ANSWER.lock().unwrap();
    if answer != 0 {
        return answer;
    }
    // SAFETY: the live ifnet the stack passes to the plumber, and valid params.
    unsafe { ifnet_attach_protocol(ifp, pf, &proto_param()) }
}
unsafe extern "C" fn unplumb(ifp: ifnet_t, pf: u32) {
    PLUMBED.lock().unwrap().push((pf, false));
    // SAFETY: the live ifnet the stack passes to the plumber.
    unsafe { ifnet_detach_protocol(ifp, pf) };
}

/// Boots and attaches `plumb0` (family `IFNET_FAMILY_TUN`), the test driver of ifdrv.
fn attach() -> ifnet_t {
    boot();
    ifdrv::attach("plumb", 0)
}

fn register(pf: u32) -> errno_t {
    // SAFETY: plugin functions of this test binary, which stays loaded.
    unsafe { proto_register_plumber(pf, IFNET_FAMILY_TUN, Some(plumb), Some(unplumb)) }
}

const V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// `proto_plumb` with no plumber registered for (protocol, interface family) is `ENXIO`; the
/// IPv6 address add then fails and records nothing.
#[test]
fn proto_plumb_without_a_plumber_is_enxio() {
    let _ifp = attach();
    assert_eq!(
        stack::add_address("plumb0", AF_INET6, &V6),
        Err(Errno::ENXIO)
    );
    let info = interface("plumb0").unwrap();
    assert!(
        info.addresses.is_empty(),
        "the add failed: {:?}",
        info.addresses
    );
    assert!(info.protocols.is_empty());
    assert_eq!(inet6_setups("plumb0"), 0);
}

/// IPv6 (in6.c `in6ctl_aifaddr` → `in6_domifattach`): the add fails on any plumber error but
/// `EEXIST`; the per-interface set-up runs only when the plumber returned 0.
#[test]
fn inet6_add_fails_unless_the_plumber_attaches() {
    let _ifp = attach();
    assert_eq!(register(AF_INET6), 0);
    *PLUMB_ANSWER.lock().unwrap() = Errno::ENOMEM.0;
    assert_eq!(
        stack::add_address("plumb0", AF_INET6, &V6),
        Err(Errno::ENOMEM)
    );
    assert!(interface("plumb0").unwrap().addresses.is_empty());
    *PLUMB_ANSWER.lock().unwrap() = 0;
    stack::add_address("plumb0", AF_INET6, &V6).unwrap();
    assert_eq!(inet6_setups("plumb0"), 1, "set-up after a plumber's 0");
    assert_eq!(interface("plumb0").unwrap().protocols, vec![AF_INET6]);
    // A second address: the plumber answers EEXIST (already attached): the add goes on,
    // without a second set-up.
    let mut v6b = V6;
    v6b[15] = 2;
    stack::add_address("plumb0", AF_INET6, &v6b).unwrap();
    assert_eq!(inet6_setups("plumb0"), 1);
    assert_eq!(interface("plumb0").unwrap().addresses.len(), 2);
}

/// IPv4 (in.c `in_domifattach`): a plumbing error is logged and the add goes on.
#[test]
fn inet_add_goes_on_without_a_plumber() {
    let _ifp = attach();
    stack::add_address("plumb0", AF_INET, &[10, 0, 0, 1]).unwrap();
    let info = interface("plumb0").unwrap();
    assert_eq!(info.addresses, vec![(AF_INET, vec![10, 0, 0, 1])]);
    assert!(info.protocols.is_empty(), "nothing attached IPv4");
    assert!(
        xnu_sim::log::log_lines()
            .iter()
            .any(|l| l.contains("proto_plumb failed: errno 6")),
        "the ENXIO is logged"
    );
}

/// `proto_unregister_plumber` frees the pair (a later registration succeeds, `proto_plumb`
/// answers `ENXIO` again); `SIOCPROTODETACH` reaches the plumber's detach (`proto_unplumb`).
#[test]
fn unregister_frees_the_pair() {
    let _ifp = attach();
    assert_eq!(register(AF_INET), 0);
    assert_eq!(register(AF_INET), Errno::EEXIST.0, "the pair is taken");
    stack::add_address("plumb0", AF_INET, &[10, 0, 0, 1]).unwrap();
    stack::protocol_detach("plumb0", AF_INET).unwrap();
    assert_eq!(
        *PLUMBED.lock().unwrap(),
        vec![(AF_INET, true), (AF_INET, false)]
    );
    assert!(interface("plumb0").unwrap().protocols.is_empty());
    // SAFETY: a plain KPI call.
    unsafe { proto_unregister_plumber(AF_INET, IFNET_FAMILY_TUN) };
    assert!(!is_plumber_registered(AF_INET, IFNET_FAMILY_TUN));
    assert_eq!(xnu_sim::leaks().plumbers, 0);
    assert_eq!(register(AF_INET), 0, "free again");
}

/// `ifnet_attach_protocol` (dlil.c, xnu-4570.51.1 and later): on success the interface is
/// marked up and the driver's ioctl gets `SIOCSIFFLAGS` with a NULL argument.
#[test]
fn attach_protocol_marks_up_and_calls_ioctl_with_null() {
    let ifp = attach();
    assert_eq!(interface("plumb0").unwrap().flags & IFF_UP, 0);
    // SAFETY: an attached ifnet and valid params.
    let rc = unsafe { ifnet_attach_protocol(ifp, AF_INET, &proto_param()) };
    assert_eq!(rc, 0);
    assert_ne!(interface("plumb0").unwrap().flags & IFF_UP, 0, "marked up");
    assert_eq!(
        ifdrv::ioctl_calls(),
        vec![(stack::cmd::SIOCSIFFLAGS, true)],
        "SIOCSIFFLAGS with NULL"
    );
    // SAFETY: as above.
    let rc = unsafe { ifnet_attach_protocol(ifp, AF_INET, &proto_param()) };
    assert_eq!(rc, Errno::EEXIST.0, "already attached");
}

/// `ifnet_detach_protocol` (dlil.c) of a family that is not attached is `ENXIO`.
#[test]
fn detach_protocol_of_an_unattached_family_is_enxio() {
    let ifp = attach();
    // SAFETY: an attached ifnet.
    unsafe {
        assert_eq!(ifnet_detach_protocol(ifp, AF_INET6), Errno::ENXIO.0);
        assert_eq!(ifnet_attach_protocol(ifp, AF_INET6, &proto_param()), 0);
        ifdrv::clear_ioctls();
        assert_eq!(ifnet_detach_protocol(ifp, AF_INET6), 0);
        assert_eq!(
            ifnet_detach_protocol(ifp, AF_INET6),
            Errno::ENXIO.0,
            "gone now"
        );
    }
    // dlil.c if_proto_free: the last protocol gone marks the interface down and tells the
    // driver with SIOCSIFFLAGS and NULL.
    assert_eq!(
        interface("plumb0").unwrap().flags & IFF_UP,
        0,
        "marked down"
    );
    assert_eq!(ifdrv::ioctl_calls(), vec![(stack::cmd::SIOCSIFFLAGS, true)]);
}

/// The fault kinds for `ifnet_detach`, `ifnet_detach_protocol`, `cdevsw_remove` and
/// `proto_register_plumber` each fail one call and change nothing; the next call works.
/// (`proto_unregister_plumber` returns nothing in XNU and cannot fail: it has no fault kind.)
#[test]
fn injected_faults_fail_each_call_once() {
    let ifp = attach();
    fail_nth(Fault::ProtoRegisterPlumber, 1);
    assert_eq!(register(AF_INET), Errno::ENOMEM.0);
    assert!(!is_plumber_registered(AF_INET, IFNET_FAMILY_TUN));
    assert_eq!(register(AF_INET), 0);
    // SAFETY: an attached ifnet and valid params.
    unsafe {
        assert_eq!(ifnet_attach_protocol(ifp, AF_INET, &proto_param()), 0);
        fail_nth(Fault::IfnetDetachProtocol, 1);
        assert_eq!(ifnet_detach_protocol(ifp, AF_INET), Errno::EINVAL.0);
        assert_eq!(
            interface("plumb0").unwrap().protocols,
            vec![AF_INET],
            "kept"
        );
        assert_eq!(ifnet_detach_protocol(ifp, AF_INET), 0);
        fail_nth(Fault::IfnetDetach, 1);
        assert_eq!(ifnet_detach(ifp), Errno::EINVAL.0);
        assert_eq!(
            interface("plumb0").unwrap().state,
            xnu_sim::netinspect::IfState::Attached
        );
    }
    let dev = common::testdrv::install("faultdev");
    fail_nth(Fault::CdevswRemove, 1);
    // SAFETY: the test driver's static table, registered by `install`.
    unsafe {
        let major = major(dev);
        let table = &common::testdrv::CDEVSW.0;
        assert_eq!(common::testdrv::cdevsw_remove(major, table), -1);
        assert_eq!(
            common::testdrv::cdevsw_isfree(major),
            -1,
            "still registered"
        );
    }
    for kind in [
        Fault::ProtoRegisterPlumber,
        Fault::IfnetDetachProtocol,
        Fault::IfnetDetach,
        Fault::CdevswRemove,
    ] {
        assert_eq!(faults_fired(kind), 1, "{kind:?}");
    }
    clear_faults();
}
