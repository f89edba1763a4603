//! The character-device switch entry and the `/dev/tunN` nodes.

use super::errno::Errno;
use super::sys;
use core::ffi::c_void;
use core::ptr::NonNull;

/// The major number the kernel gave our `cdevsw` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Major(i32);

impl Major {
    /// The raw major number.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Registers the driver's `cdevsw` (contract LD-1); `None` if the kernel has no free slot.
pub fn cdevsw_add() -> Option<Major> {
    // SAFETY: the shim passes its static cdevsw; no Rust memory is involved.
    let major = unsafe { sys::tun_shim_cdevsw_add() };
    (major >= 0).then_some(Major(major))
}

/// Removes the driver's `cdevsw`; `false` if the kernel refused.
pub fn cdevsw_remove(major: Major) -> bool {
    // SAFETY: as above.
    unsafe { sys::tun_shim_cdevsw_remove(major.0) == major.0 }
}

/// A `/dev/tunN` node made by devfs. Removed explicitly with [`DevNode::remove`].
pub struct DevNode(NonNull<c_void>);

// SAFETY: devfs handles are kernel objects usable from any thread.
unsafe impl Send for DevNode {}

impl DevNode {
    /// Makes `/dev/tun<unit>` (contract LD-2).
    pub fn make(major: Major, unit: usize) -> Result<DevNode, Errno> {
        // SAFETY: plain call; the shim formats the name.
        let handle = unsafe { sys::tun_shim_make_node(major.0, unit as i32) };
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
