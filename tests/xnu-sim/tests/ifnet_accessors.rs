//! ifnet accessors and counters (xnu bsd/net/kpi_interface.c `ifnet_softc`, `ifnet_unit`,
//! `ifnet_flags`, `ifnet_set_flags`, `ifnet_mtu`, `ifnet_set_mtu`, `ifnet_set_baudrate`,
//! `ifnet_baudrate`, `ifnet_stat_increment*`, `ifnet_reference`, `ifnet_release` →
//! bsd/net/dlil.c `dlil_if_ref`, `dlil_if_free`): values read back as set, counters add up,
//! and an ifnet stays live until its references balance.

mod common;
mod ifdrv;

use common::*;
use std::ffi::c_void;
use std::time::Duration;
use xnu_sim::abi::*;
use xnu_sim::leaks;
use xnu_sim::netinspect::{interface, IfState, IfStats};

extern "C" {
    fn ifnet_softc(ifp: ifnet_t) -> *mut c_void;
    fn ifnet_unit(ifp: ifnet_t) -> u32;
    fn ifnet_flags(ifp: ifnet_t) -> u16;
    fn ifnet_set_flags(ifp: ifnet_t, flags: u16, mask: u16) -> errno_t;
    fn ifnet_mtu(ifp: ifnet_t) -> u32;
    fn ifnet_set_mtu(ifp: ifnet_t, mtu: u32) -> errno_t;
    fn ifnet_set_baudrate(ifp: ifnet_t, baudrate: u64) -> errno_t;
    fn ifnet_baudrate(ifp: ifnet_t) -> u64;
    fn ifnet_stat_increment(ifp: ifnet_t, s: *const ifnet_stat_increment_param) -> errno_t;
    fn ifnet_stat_increment_in(ifp: ifnet_t, packets: u32, bytes: u32, errors: u32) -> errno_t;
    fn ifnet_stat_increment_out(ifp: ifnet_t, packets: u32, bytes: u32, errors: u32) -> errno_t;
    fn ifnet_reference(ifp: ifnet_t) -> errno_t;
}

static SOFTC: [u64; 4] = [0; 4];

#[test]
fn accessors_return_what_was_set() {
    boot();
    let softc: *mut c_void = SOFTC.as_ptr().cast_mut().cast();
    let ifp = ifdrv::allocate("acc", 3, softc);
    // SAFETY: a live ifnet.
    unsafe {
        assert_eq!(ifnet_softc(ifp), softc, "the softc given to ifnet_allocate");
        assert_eq!(ifnet_unit(ifp), 3);
        assert_eq!(ifnet_attach(ifp), 0);

        let both = IFF_UP | IFF_RUNNING;
        assert_eq!(ifnet_set_flags(ifp, both, both), 0);
        assert_eq!(ifnet_flags(ifp) & both, both);
        let before = ifnet_flags(ifp);
        // Only the bits under the mask change.
        assert_eq!(ifnet_set_flags(ifp, 0, IFF_UP), 0);
        assert_eq!(ifnet_flags(ifp), before & !IFF_UP);
        assert_eq!(ifnet_set_flags(ifp, IFF_MULTICAST | IFF_UP, 0), 0);
        assert_eq!(
            ifnet_flags(ifp),
            before & !IFF_UP,
            "an empty mask changes nothing"
        );
        assert_eq!(
            ifnet_set_flags(ifp, IFF_POINTOPOINT, IFF_POINTOPOINT | IFF_RUNNING),
            0
        );
        assert_eq!(
            ifnet_flags(ifp),
            (before & !(IFF_UP | IFF_RUNNING)) | IFF_POINTOPOINT
        );

        assert_eq!(ifnet_set_mtu(ifp, 1400), 0);
        assert_eq!(ifnet_mtu(ifp), 1400);
        assert_eq!(ifnet_set_mtu(ifp, 9000), 0);
        assert_eq!(ifnet_mtu(ifp), 9000);

        assert_eq!(ifnet_set_baudrate(ifp, 100_000_000), 0);
        assert_eq!(ifnet_baudrate(ifp), 100_000_000);
    }
    let info = interface("acc3").unwrap();
    assert_eq!((info.unit, info.mtu), (3, 9000));
    // SAFETY: a live ifnet.
    assert_eq!(info.flags, unsafe { ifnet_flags(ifp) });
}

/// `ifnet_attach` without a link-layer address.
///
/// # Safety
/// `ifp` is an allocated ifnet.
unsafe fn ifnet_attach(ifp: ifnet_t) -> errno_t {
    // SAFETY: the caller's contract.
    unsafe { ifdrv::ifnet_attach(ifp, std::ptr::null()) }
}

#[test]
fn stat_increments_add_to_the_counters() {
    boot();
    let ifp = ifdrv::attach("stats", 0);
    let stats = || interface("stats0").unwrap().stats;
    assert_eq!(stats(), IfStats::default());
    let inc = ifnet_stat_increment_param {
        packets_in: 1,
        bytes_in: 20,
        errors_in: 3,
        packets_out: 4,
        bytes_out: 50,
        errors_out: 6,
        collisions: 7,
        dropped: 8,
    };
    // SAFETY: a live ifnet; a valid increment.
    unsafe {
        assert_eq!(ifnet_stat_increment(ifp, &inc), 0);
        assert_eq!(ifnet_stat_increment(ifp, &inc), 0);
    }
    let twice = IfStats {
        ipackets: 2,
        ibytes: 40,
        ierrors: 6,
        opackets: 8,
        obytes: 100,
        oerrors: 12,
        iqdrops: 16,
    };
    assert_eq!(stats(), twice);
    // SAFETY: a live ifnet.
    unsafe {
        assert_eq!(ifnet_stat_increment_in(ifp, 10, 1000, 1), 0);
    }
    assert_eq!(
        stats(),
        IfStats {
            ipackets: 12,
            ibytes: 1040,
            ierrors: 7,
            ..twice
        },
        "the input increment touches the input counters only"
    );
    // SAFETY: a live ifnet.
    unsafe {
        assert_eq!(ifnet_stat_increment_out(ifp, 5, 500, 2), 0);
    }
    assert_eq!(
        stats(),
        IfStats {
            ipackets: 12,
            ibytes: 1040,
            ierrors: 7,
            opackets: 13,
            obytes: 600,
            oerrors: 14,
            iqdrops: 16,
        },
        "the output increment touches the output counters only"
    );
}

#[test]
fn references_must_balance_before_unload() {
    const NAME: &str = "references_must_balance_before_unload";
    if is_child(NAME) {
        boot();
        let ifp = ifdrv::allocate("refs", 0, std::ptr::null_mut());
        // SAFETY: one reference released twice: the second release must panic.
        unsafe {
            ifdrv::ifnet_release(ifp);
            ifdrv::ifnet_release(ifp);
        }
        child_survived();
    }
    boot();
    // Allocated only: the allocation's reference plus one more.
    let ifp = ifdrv::allocate("refs", 0, std::ptr::null_mut());
    // SAFETY: references taken and dropped on a live ifnet.
    unsafe {
        assert_eq!(ifnet_reference(ifp), 0);
        assert_eq!(ifdrv::ifnet_release(ifp), 0);
        assert_eq!(leaks().ifnets, 1, "one reference left: still live");
        assert!(interface("refs0").is_some());
        assert_eq!(ifdrv::ifnet_release(ifp), 0);
    }
    assert_eq!(leaks().ifnets, 0, "balanced: gone");
    assert!(interface("refs0").is_none());

    // Attached, then detached: an extra reference keeps it after the detach completes.
    let ifp = ifdrv::attach("refs", 1);
    // SAFETY: as above; the detach completes before the last release.
    unsafe {
        assert_eq!(ifnet_reference(ifp), 0);
        assert_eq!(ifdrv::ifnet_detach(ifp), 0);
        assert!(wait_until(Duration::from_secs(5), || interface("refs1")
            .is_some_and(|i| i.state == IfState::Detached)));
        assert_eq!(ifdrv::ifnet_release(ifp), 0);
        assert_eq!(leaks().ifnets, 1, "detached, one reference left");
        assert_eq!(ifdrv::ifnet_release(ifp), 0);
    }
    assert_eq!(leaks().ifnets, 0);
    expect_kernel_panic(NAME, "not live (released twice?)");
}

/// XNU's `ifnet_set_baudrate` stores `if_baudrate` "pinned to 32 bits until we can change the
/// storage size": above 0xffffffff it stores 0xffffffff, which `ifnet_baudrate` returns.
#[test]
fn baudrate_is_pinned_to_32_bits() {
    boot();
    let ifp = ifdrv::attach("baud", 0);
    // SAFETY: a live ifnet.
    unsafe {
        assert_eq!(ifnet_set_baudrate(ifp, 0xffff_ffff), 0);
        assert_eq!(
            ifnet_baudrate(ifp),
            0xffff_ffff,
            "the largest 32-bit value is kept"
        );
        assert_eq!(ifnet_set_baudrate(ifp, 10_000_000_000), 0);
        assert_eq!(
            ifnet_baudrate(ifp),
            0xffff_ffff,
            "10 Gbit/s reads back as 0xffffffff on XNU"
        );
        assert_eq!(ifnet_set_baudrate(ifp, 0), 0);
        assert_eq!(ifnet_baudrate(ifp), 0);
    }
}
