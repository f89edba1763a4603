//! The character-device switch (xnu bsd/kern/bsd_stubs.c) and devfs nodes
//! (xnu bsd/miscfs/devfs/devfs.h).

use crate::abi::*;
use crate::config::{self, Fault};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

/// Slots in the simulated cdevsw table.
pub const NCHRDEV: usize = 64;
/// Majors taken by built-in devices before any kext loads, as on a real kernel.
pub const BUILTIN_MAJORS: &[usize] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 26,
];

#[derive(Clone, Copy)]
enum Slot {
    Free,
    Builtin,
    /// The 112 bytes the entry was registered with, padding included: `cdevsw_remove`
    /// compares them (a typed copy of the struct need not preserve padding).
    Kext([u8; 112]),
}

/// A devfs node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Device number.
    pub dev: dev_t,
    /// `DEVFS_CHAR` (0) or `DEVFS_BLOCK` (1).
    pub chrblk: i32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub perms: u32,
    handle: usize,
}

struct Devices {
    cdevsw: Vec<Slot>,
    nodes: HashMap<String, Node>,
    /// Handles of hand-made nodes (above `KPI_HANDLES_END`).
    next_handle: usize,
    /// Handles of nodes made through `devfs_make_node`.
    next_kpi_handle: usize,
}

const KPI_HANDLES_END: usize = 0x7000_0000;

static DEVICES: Mutex<Option<Devices>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Devices) -> R) -> R {
    f(DEVICES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| {
            let mut cdevsw = vec![Slot::Free; NCHRDEV];
            for &m in BUILTIN_MAJORS {
                cdevsw[m] = Slot::Builtin;
            }
            Devices {
                cdevsw,
                nodes: HashMap::new(),
                next_handle: KPI_HANDLES_END,
                next_kpi_handle: 0x6000_0000,
            }
        }))
}

/// The raw bytes at `csw`, padding included (XNU compares them with `memcmp`).
///
/// # Safety
/// `csw` points to 112 readable bytes.
unsafe fn bytes_at(csw: *const cdevsw) -> [u8; 112] {
    // SAFETY: the caller's contract: 112 readable bytes; no alignment is assumed.
    unsafe { std::ptr::read_unaligned(csw.cast::<[u8; 112]>()) }
}

/// The driver's entry table registered at `major`, if any.
pub(crate) fn entry(major: i32) -> Option<cdevsw> {
    with(|d| match d.cdevsw.get(major as usize) {
        // SAFETY: 112 bytes copied from a cdevsw.
        Some(Slot::Kext(raw)) => Some(unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) }),
        _ => None,
    })
}

/// A node by name (without `/dev/`).
pub fn node(name: &str) -> Option<Node> {
    with(|d| d.nodes.get(name).cloned())
}

/// Every node name, sorted.
pub fn node_names() -> Vec<String> {
    let mut names: Vec<String> = with(|d| d.nodes.keys().cloned().collect());
    names.sort();
    names
}

/// Makes a node by hand (like `mknod`), for tests of minors the driver did not create.
pub fn mknod(name: &str, dev: dev_t, perms: u32) {
    with(|d| {
        d.next_handle += 1;
        let handle = d.next_handle;
        d.nodes.insert(
            name.to_string(),
            Node {
                dev,
                chrblk: DEVFS_CHAR,
                uid: 0,
                gid: 0,
                perms,
                handle,
            },
        );
    });
}

/// Kext-registered cdevsw slots and devfs nodes made through the KPI (leak accounting).
pub(crate) fn live_registrations() -> (usize, usize) {
    with(|d| {
        let slots = d
            .cdevsw
            .iter()
            .filter(|s| matches!(s, Slot::Kext(..)))
            .count();
        let nodes = d
            .nodes
            .values()
            .filter(|n| n.handle < KPI_HANDLES_END)
            .count();
        (slots, nodes)
    })
}

/// `cdevsw_add` (bsd/kern/bsd_stubs.c): copies all 112 bytes of `*csw` into a free slot and
/// returns its index, or -1 (also when a `CdevswAdd` fault is injected). Index -1 searches from
/// 0, -N from N, and N >= 0 takes exactly slot N if free.
#[no_mangle]
unsafe extern "C" fn cdevsw_add(index: c_int, csw: *const cdevsw) -> c_int {
    if config::should_fail(Fault::CdevswAdd) {
        return -1;
    }
    // SAFETY: the KPI contract: `csw` points to the driver's whole `struct cdevsw`.
    let raw = unsafe { bytes_at(csw) };
    with(|d| {
        let candidates: Vec<usize> = if index < 0 {
            let from = if index == -1 { 0 } else { (-index) as usize };
            (from..NCHRDEV).collect()
        } else {
            vec![index as usize]
        };
        for i in candidates {
            if matches!(d.cdevsw.get(i), Some(Slot::Free)) {
                d.cdevsw[i] = Slot::Kext(raw);
                return i as c_int;
            }
        }
        -1
    })
}

/// `cdevsw_remove` (bsd/kern/bsd_stubs.c): frees slot `index` only if it holds a byte-identical
/// copy of `*csw`, and returns the index; otherwise -1. Fault injection
/// ([`Fault::CdevswRemove`]) makes it answer -1 and free nothing.
#[no_mangle]
unsafe extern "C" fn cdevsw_remove(index: c_int, csw: *const cdevsw) -> c_int {
    if config::should_fail(Fault::CdevswRemove) {
        return -1;
    }
    // SAFETY: as in `cdevsw_add`.
    let given = unsafe { bytes_at(csw) };
    with(|d| match d.cdevsw.get(index as usize) {
        Some(Slot::Kext(stored)) if *stored == given => {
            d.cdevsw[index as usize] = Slot::Free;
            index
        }
        _ => -1,
    })
}

/// `cdevsw_isfree` (bsd/kern/bsd_stubs.c): the index of a free slot, or -1. A negative index
/// searches upwards as `cdevsw_add` does (-1 from 0, -N from N); a non-negative one asks
/// about that slot only.
#[no_mangle]
extern "C" fn cdevsw_isfree(index: c_int) -> c_int {
    with(|d| {
        let from = match index {
            -1 => 0,
            i if i < 0 => (-i) as usize,
            i => i as usize,
        };
        let free = |i: &usize| matches!(d.cdevsw.get(*i), Some(Slot::Free));
        let found = if index < 0 {
            (from..NCHRDEV).find(free)
        } else {
            Some(from).filter(free)
        };
        found.map_or(-1, |i| i as c_int)
    })
}

/// `devfs_make_node` (bsd/miscfs/devfs/devfs_tree.c), after the C wrapper in csrc/variadic.c
/// has formatted the name: an opaque handle for a new node with the given dev, owner and
/// permissions; NULL when the name exists (XNU: `EEXIST`) or a `DevfsMakeNode` fault is injected.
#[no_mangle]
unsafe extern "C" fn xnusim_devfs_make_node_named(
    dev: c_int,
    chrblk: c_int,
    uid: u32,
    gid: u32,
    perms: c_int,
    name: *const c_char,
) -> *mut c_void {
    if config::should_fail(Fault::DevfsMakeNode) {
        return std::ptr::null_mut();
    }
    // SAFETY: the C wrapper passes the NUL-terminated name it formatted.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    with(|d| {
        if d.nodes.contains_key(&name) {
            return std::ptr::null_mut();
        }
        d.next_kpi_handle += 16;
        let handle = d.next_kpi_handle;
        d.nodes.insert(
            name,
            Node {
                dev,
                chrblk,
                uid,
                gid,
                perms: perms as u32,
                handle,
            },
        );
        handle as *mut c_void
    })
}

/// `devfs_remove` (bsd/miscfs/devfs/devfs_tree.c): removes the node made with `handle`. Stricter
/// than XNU (which would use freed memory): a bad handle or a second removal panics.
#[no_mangle]
extern "C" fn devfs_remove(handle: *mut c_void) {
    with(|d| {
        let name = d
            .nodes
            .iter()
            .find(|(_, n)| n.handle == handle as usize)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| {
                panic!("devfs_remove {handle:p}: not a live devfs handle (bad or second removal)")
            });
        d.nodes.remove(&name);
    })
}
