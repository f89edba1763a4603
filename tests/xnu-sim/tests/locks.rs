//! Lock objects (xnu osfmk/kern/lock_group.c, osfmk/kern/locks.c, osfmk/kern/lock_mtx.c):
//! attributes, groups and mutexes are tracked from allocation until freed; the simulator panics
//! when a group is freed while mutexes of it live (XNU only drops a reference there) and when
//! a held mutex is freed (XNU's `lck_mtx_destroy` panics too).

mod common;

use common::*;
use std::ffi::{c_char, c_void};
use xnu_sim::leaks;

extern "C" {
    fn lck_grp_attr_alloc_init() -> *mut c_void;
    fn lck_grp_attr_free(attr: *mut c_void);
    fn lck_grp_free(grp: *mut c_void);
    fn lck_attr_alloc_init() -> *mut c_void;
    fn lck_attr_free(attr: *mut c_void);
    fn lck_mtx_free(m: *mut c_void, grp: *mut c_void);
}

fn group(name: &std::ffi::CStr, attr: *mut c_void) -> *mut c_void {
    // SAFETY: a NUL-terminated name; a live attribute or NULL.
    let grp = unsafe { lck_grp_alloc_init(name.as_ptr().cast::<c_char>(), attr) };
    assert!(!grp.is_null());
    grp
}

#[test]
fn lock_objects_are_tracked_until_freed() {
    const NAME: &str = "lock_objects_are_tracked_until_freed";
    if is_child(NAME) {
        boot();
        // SAFETY: an attribute freed twice: the second free must panic.
        unsafe {
            let attr = lck_attr_alloc_init();
            lck_attr_free(attr);
            lck_attr_free(attr);
        }
        child_survived();
    }
    boot();
    let l = leaks();
    assert_eq!(
        (l.mutexes, l.lock_groups, l.lock_group_attrs, l.lock_attrs),
        (0, 0, 0, 0)
    );
    // SAFETY: KPI calls on the objects made here, each freed once, in reverse order.
    unsafe {
        let grp_attr = lck_grp_attr_alloc_init();
        let attr = lck_attr_alloc_init();
        assert!(!grp_attr.is_null() && !attr.is_null());
        let grp = group(c"locks-test", grp_attr);
        let m = lck_mtx_alloc_init(grp, attr);
        assert!(!m.is_null());
        let l = leaks();
        assert_eq!(
            (l.mutexes, l.lock_groups, l.lock_group_attrs, l.lock_attrs),
            (1, 1, 1, 1),
            "every object is live until freed"
        );
        lck_mtx_lock(m);
        lck_mtx_unlock(m);
        lck_mtx_free(m, grp);
        assert_eq!(leaks().mutexes, 0);
        assert_eq!(leaks().lock_groups, 1, "the group outlives its mutex");
        lck_grp_free(grp);
        assert_eq!(leaks().lock_groups, 0);
        lck_attr_free(attr);
        assert_eq!(leaks().lock_attrs, 0);
        assert_eq!(leaks().lock_group_attrs, 1);
        lck_grp_attr_free(grp_attr);
    }
    assert!(leaks().is_clean(), "{:?}", leaks());
    // A freed handle is no longer tracked: freeing it again panics.
    expect_kernel_panic(NAME, ": not live");
}

#[test]
fn freeing_a_group_with_live_mutexes_panics() {
    const NAME: &str = "freeing_a_group_with_live_mutexes_panics";
    if is_child(NAME) {
        boot();
        let grp = group(c"locks-test", std::ptr::null_mut());
        // SAFETY: a live group with a live mutex: freeing the group must panic.
        unsafe {
            let m = lck_mtx_alloc_init(grp, std::ptr::null_mut());
            assert!(!m.is_null());
            lck_grp_free(grp);
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "mutexes of this group are still live");
}

#[test]
fn freeing_a_held_mutex_panics() {
    const NAME: &str = "freeing_a_held_mutex_panics";
    if is_child(NAME) {
        boot();
        let grp = group(c"locks-test", std::ptr::null_mut());
        // SAFETY: a held mutex freed: must panic.
        unsafe {
            let m = lck_mtx_alloc_init(grp, std::ptr::null_mut());
            lck_mtx_lock(m);
            lck_mtx_free(m, grp);
        }
        child_survived();
    }
    expect_kernel_panic(NAME, "freeing a held mutex");
}
