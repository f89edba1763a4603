//! The KPI wrappers' safety checks, through their public API in the simulated kernel: what
//! safe code may do with them stays sound (docs/style.md rule 2). The type-level parts (a
//! `Uio`'s direction, `Ifnet` having no `Copy`) are checked by the compiler instead.

use driver_tests::*;
use tunnel::kpi::errno::Errno;
use tunnel::kpi::lock::{KMutex, LockGroup};

static GUARDED: KMutex<u32> = KMutex::new(0);

/// A mutex is not freed while a guard holds it: `uninstall` refuses with `EBUSY` and the
/// mutex stays usable; once the guard is gone it is freed, and the simulator's leak
/// accounting sees every lock object returned.
#[test]
fn uninstall_refuses_while_a_guard_exists() {
    boot();
    let group = LockGroup::new(c"org.tunnelkext.test").expect("lock group");
    GUARDED.install(&group).expect("install");
    {
        let mut guard = GUARDED.lock();
        *guard = 7;
        assert_eq!(GUARDED.uninstall(&group), Err(Errno::EBUSY));
        assert!(GUARDED.is_installed(), "refused: nothing changed");
        *guard += 1;
    }
    assert_eq!(
        *GUARDED.lock(),
        8,
        "the mutex still works after a refused uninstall"
    );
    assert_eq!(GUARDED.uninstall(&group), Ok(()));
    assert!(!GUARDED.is_installed());
    assert_eq!(
        GUARDED.uninstall(&group),
        Ok(()),
        "a second uninstall has nothing to do"
    );
    group.free();
    assert!(xnu_sim::leaks().is_clean(), "{:?}", xnu_sim::leaks());
}

static UNINSTALLED: KMutex<()> = KMutex::new(());

/// After `uninstall`, `lock` panics before touching the freed mutex (a Rust panic here; a
/// kernel panic in the kext), rather than using freed memory.
#[test]
#[should_panic(expected = "KMutex used outside load..unload")]
fn lock_after_uninstall_panics_instead_of_using_freed_memory() {
    boot();
    let group = LockGroup::new(c"org.tunnelkext.test").expect("lock group");
    UNINSTALLED.install(&group).expect("install");
    UNINSTALLED.uninstall(&group).expect("uninstall");
    let _ = UNINSTALLED.lock();
}

/// Every interface reference the driver takes (one per device write, per close, per unload
/// step) is given back: after a busy session and unload, the interface is gone and the
/// simulator counts no reference left.
#[test]
fn interface_references_balance_across_writes_closes_and_unload() {
    boot_and_load();
    for round in 0..3 {
        let fd = open_unit(2);
        configure("tun2");
        for i in 0..20u8 {
            let p = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], &[round, i]);
            assert_eq!(xnu_sim::syscalls::write(fd, &p), Ok(p.len()));
        }
        xnu_sim::syscalls::close(fd).expect("close");
    }
    unload_clean();
}
