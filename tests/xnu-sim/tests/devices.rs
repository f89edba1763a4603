//! cdevsw and devfs (xnu bsd/kern/bsd_stubs.c `cdevsw_add`/`cdevsw_remove`,
//! xnu bsd/miscfs/devfs/devfs.h): the index rules of `cdevsw_add`, byte-identical removal,
//! and devfs handles (a bad or second removal panics).

mod common;

use common::testdrv::{cdevsw_add, cdevsw_isfree, cdevsw_remove, devfs_make_node, devfs_remove};
use common::*;
use std::ffi::c_void;
use xnu_sim::abi::{cdevsw, makedev, DEVFS_CHAR};
use xnu_sim::devices::{node, BUILTIN_MAJORS, NCHRDEV};

/// A cdevsw as raw bytes (what cdevsw_remove compares), aligned like the struct.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Raw([u8; 112]);

impl Raw {
    fn of(csw: &cdevsw) -> Raw {
        // SAFETY: 112 readable bytes.
        Raw(unsafe { std::ptr::read(std::ptr::from_ref(csw).cast::<[u8; 112]>()) })
    }
    fn ptr(&self) -> *const cdevsw {
        std::ptr::from_ref(self).cast()
    }
}

/// A table of our own, with distinct function pointers and zeroed padding.
fn table() -> Raw {
    let mut r = Raw([0; 112]);
    r.0[..112].copy_from_slice(&Raw::of(&common::testdrv::CDEVSW.0).0);
    r.0[108..112].fill(0); // padding after d_type
    r
}

#[test]
fn cdevsw_add_index_rules() {
    boot();
    let t = table();
    // The simulator pre-fills built-in majors, as a booted kernel has them.
    for &m in BUILTIN_MAJORS {
        // SAFETY: plain KPI calls.
        assert_eq!(unsafe { cdevsw_isfree(m as i32) }, -1, "builtin {m}");
    }
    // SAFETY: (the whole test) `t` holds 112 valid bytes of a cdevsw.
    unsafe {
        // N >= 0: exactly slot N, only if free.
        assert_eq!(cdevsw_add(5, t.ptr()), -1, "a built-in major is not free");
        assert_eq!(cdevsw_isfree(40), 40);
        assert_eq!(cdevsw_add(40, t.ptr()), 40, "a free fixed index is taken");
        assert_eq!(cdevsw_isfree(40), -1);
        assert_eq!(
            cdevsw_add(40, t.ptr()),
            -1,
            "a taken fixed index is refused"
        );
        // -1: the first free slot searching from 0 (XNU warns this collides with builtins
        // registering later; -24 is "a safe starting point").
        let first_free = (0..NCHRDEV).find(|i| !BUILTIN_MAJORS.contains(i)).unwrap() as i32;
        assert_eq!(cdevsw_add(-1, t.ptr()), first_free);
        assert_eq!(first_free, 24);
        // -N: search from N.
        assert_eq!(
            cdevsw_add(-24, t.ptr()),
            25,
            "24 is taken now: next free from 24"
        );
        assert_eq!(cdevsw_add(-26, t.ptr()), 27, "26 is built in: skipped");
        assert_eq!(cdevsw_add(-40, t.ptr()), 41, "40 is ours already");
        // Out of slots: -1.
        assert_eq!(cdevsw_add(NCHRDEV as i32, t.ptr()), -1);
        let before: Vec<i32> = (0..NCHRDEV as i32)
            .filter(|&i| cdevsw_isfree(i) == i)
            .collect();
        for &i in &before {
            assert_eq!(cdevsw_add(-(i.max(2)), t.ptr()), i);
        }
        assert_eq!(cdevsw_add(-1, t.ptr()), -1, "a full table: -1");
        assert_eq!(cdevsw_add(-30, t.ptr()), -1);
        // Clean up what we registered (byte-identical tables).
        for i in [24, 25, 27, 40, 41].into_iter().chain(before) {
            assert_eq!(cdevsw_remove(i, t.ptr()), i);
        }
    }
    assert_eq!(xnu_sim::leaks().cdevsw_slots, 0);
}

#[test]
fn cdevsw_remove_needs_a_byte_identical_table() {
    boot();
    let t = table();
    // SAFETY: (the whole test) every pointer is to 112 valid bytes.
    unsafe {
        let major = cdevsw_add(-24, t.ptr());
        assert_eq!(major, 24);
        // A copy differing in one byte of padding (after d_type) is refused.
        let mut pad = t;
        pad.0[110] ^= 0x5a;
        assert_eq!(
            cdevsw_remove(major, pad.ptr()),
            -1,
            "padding counts (memcmp)"
        );
        // A copy differing in d_type, or in one function pointer, is refused.
        let mut ty = t;
        ty.0[104] = 1;
        assert_eq!(cdevsw_remove(major, ty.ptr()), -1);
        let mut fnp = t;
        fnp.0[8] ^= 1; // d_close
        assert_eq!(cdevsw_remove(major, fnp.ptr()), -1);
        // The right bytes at the wrong index: refused.
        assert_eq!(cdevsw_remove(25, t.ptr()), -1);
        assert_eq!(cdevsw_remove(3, t.ptr()), -1, "a built-in slot");
        assert_eq!(cdevsw_isfree(major), -1, "nothing was removed so far");
        // A separate but identical copy is accepted: the bytes matter, not the address.
        let copy = t;
        assert_eq!(cdevsw_remove(major, copy.ptr()), major);
        assert_eq!(cdevsw_isfree(major), major);
        assert_eq!(cdevsw_remove(major, t.ptr()), -1, "a second removal fails");
        // The bytes registered (with padding) are the ones compared.
        let mut odd = t;
        odd.0[109] = 0x77;
        assert_eq!(cdevsw_add(-24, odd.ptr()), 24);
        assert_eq!(
            cdevsw_remove(24, t.ptr()),
            -1,
            "zero padding != the registered 0x77"
        );
        assert_eq!(cdevsw_remove(24, odd.ptr()), 24);
    }
}

#[test]
fn devfs_handles_and_nodes() {
    boot();
    let dev = makedev(24, 3);
    // SAFETY: NUL-terminated format strings with matching arguments.
    let (h, h2) = unsafe {
        let h = devfs_make_node(dev, DEVFS_CHAR, 0, 20, 0o600, c"simtest%d".as_ptr(), 7i32);
        let dup = devfs_make_node(dev, DEVFS_CHAR, 0, 0, 0o600, c"simtest%d".as_ptr(), 7i32);
        assert!(dup.is_null(), "an existing name: NULL");
        let h2 = devfs_make_node(
            makedev(24, 4),
            DEVFS_CHAR,
            1,
            1,
            0o644,
            c"%s%c".as_ptr(),
            c"other".as_ptr(),
            b'x' as i32,
        );
        (h, h2)
    };
    assert!(!h.is_null() && !h2.is_null() && h != h2);
    let n = node("simtest7").expect("/dev/simtest7 exists");
    assert_eq!(
        (n.dev, n.chrblk, n.uid, n.gid, n.perms),
        (dev, DEVFS_CHAR, 0, 20, 0o600)
    );
    assert!(node("otherx").is_some(), "the format is printf-like");
    assert_eq!(xnu_sim::leaks().devfs_nodes, 2);
    // SAFETY: live handles.
    unsafe {
        devfs_remove(h);
        assert!(
            node("simtest7").is_none(),
            "removal by handle removes the node"
        );
        assert!(node("otherx").is_some(), "and only that one");
        devfs_remove(h2);
    }
    assert_eq!(xnu_sim::leaks().devfs_nodes, 0);
}

#[test]
fn devfs_second_removal_panics() {
    const NAME: &str = "devfs_second_removal_panics";
    if is_child(NAME) {
        boot();
        // SAFETY: a valid format; then the same handle removed twice (must panic).
        unsafe {
            let h = devfs_make_node(makedev(24, 0), DEVFS_CHAR, 0, 0, 0o600, c"twice".as_ptr());
            assert!(!h.is_null());
            devfs_remove(h);
            devfs_remove(h);
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "bad or second removal");
}

#[test]
fn devfs_bad_handle_removal_panics() {
    const NAME: &str = "devfs_bad_handle_removal_panics";
    if is_child(NAME) {
        boot();
        // SAFETY: a handle devfs never returned (must panic).
        unsafe { devfs_remove(0x1234 as *mut c_void) };
        child_survived();
    }
    expect_kernel_panic(NAME, "not a live devfs handle");
}

/// `cdevsw_isfree` (bsd/kern/bsd_stubs.c) answers with the index of a free slot, or -1: a
/// non-negative index asks about that slot; a negative one searches upwards as `cdevsw_add`
/// does (-1 from 0, -N from N).
#[test]
fn cdevsw_isfree_returns_the_index_or_minus_one() {
    boot();
    let t = table();
    let first_free = (0..NCHRDEV).find(|i| !BUILTIN_MAJORS.contains(i)).unwrap() as i32;
    // SAFETY: plain KPI calls; `t` holds 112 valid bytes of a cdevsw.
    unsafe {
        assert_eq!(cdevsw_isfree(3), -1, "a built-in slot");
        assert_eq!(cdevsw_isfree(40), 40, "a free slot: its index");
        assert_eq!(cdevsw_isfree(-1), first_free, "searching from 0");
        assert_eq!(cdevsw_isfree(-26), 27, "26 is built in: the next free one");
        assert_eq!(cdevsw_isfree(NCHRDEV as i32), -1, "past the table");
        assert_eq!(cdevsw_add(40, t.ptr()), 40);
        assert_eq!(cdevsw_isfree(40), -1, "taken now");
        assert_eq!(cdevsw_isfree(-40), 41);
        assert_eq!(cdevsw_remove(40, t.ptr()), 40);
        assert_eq!(cdevsw_isfree(40), 40);
    }
}

/// `mmap(2)` of a character device (bsd/kern/kern_mman.c `mmap`) fails with `ENODEV` before any
/// driver entry point is called (`d_mmap` is `int (void)` in bsd/sys/conf.h and never reached).
#[test]
fn mmap_of_a_character_device_is_enodev() {
    use common::testdrv::{calls, clear_calls, install};
    use xnu_sim::syscalls::{self as sys, O_RDWR};
    boot();
    install("mmapdev");
    let fd = sys::open("/dev/mmapdev", O_RDWR).unwrap();
    clear_calls();
    assert_eq!(sys::mmap(fd), Err(xnu_sim::Errno::ENODEV));
    assert!(
        calls().is_empty(),
        "the driver was not called: {:?}",
        calls()
    );
    sys::close(fd).unwrap();
}
