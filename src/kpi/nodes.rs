//! The character-device switch entries and the device nodes, made from the shim's per-kind
//! tables.

use super::errno::Errno;
use super::sys;
use core::ffi::c_void;
use core::ptr::NonNull;

/// One of the shim's per-kind tables (shim/shim.c `tun_shim_links`): a cdevsw, a node name and
/// the `ifnet_init_params` of one link kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShimTable(u32);

impl ShimTable {
    /// The table of IP (layer 3, point-to-point) units.
    pub const IP: ShimTable = ShimTable(sys::TUN_SHIM_LINK_IP);
    /// The table of Ethernet (layer 2) units: XNU's own `ether_*` demux and framer.
    pub const ETHERNET: ShimTable = ShimTable(sys::TUN_SHIM_LINK_ETHERNET);

    /// The raw index the shim takes.
    pub(super) fn raw(self) -> u32 {
        self.0
    }
}

/// The major number the kernel gave our `cdevsw` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Major(i32);

impl Major {
    /// The raw major number.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Registers the `cdevsw` of `table` (contract LD-1); `None` if the kernel has no free slot.
pub fn cdevsw_add(table: ShimTable) -> Option<Major> {
    // SAFETY: the shim passes its static cdevsw; no Rust memory is involved.
    let major = unsafe { sys::tun_shim_cdevsw_add(table.raw()) };
    (major >= 0).then_some(Major(major))
}

/// Removes the `cdevsw` of `table`; `false` if the kernel refused.
pub fn cdevsw_remove(table: ShimTable, major: Major) -> bool {
    // SAFETY: as above.
    unsafe { sys::tun_shim_cdevsw_remove(table.raw(), major.0) == major.0 }
}

/// A device node made by devfs. Removed explicitly with [`DevNode::remove`].
pub struct DevNode(NonNull<c_void>);

// SAFETY: devfs handles are kernel objects usable from any thread.
unsafe impl Send for DevNode {}

impl DevNode {
    /// Makes the node of `unit` named by `table` (contract LD-2).
    pub fn make(table: ShimTable, major: Major, unit: usize) -> Result<DevNode, Errno> {
        // SAFETY: plain call; the shim formats the name.
        let handle = unsafe { sys::tun_shim_make_node(table.raw(), major.0, unit as i32) };
        NonNull::new(handle).map(DevNode).ok_or(Errno::ENOMEM)
    }

    /// Removes the node.
    pub fn remove(self) {
        // SAFETY: the handle came from devfs_make_node and is removed once (self is consumed).
        unsafe { sys::devfs_remove(self.0.as_ptr()) };
    }
}

/// The unit number (minor) of a device number.
pub fn minor(dev: sys::dev_t) -> u32 {
    (dev as u32) & 0x00ff_ffff
}
