//! Storage for `select(2)` records (`struct selinfo`), owned by the driver.

use super::sys;
use core::cell::UnsafeCell;
use core::ffi::c_void;

/// The driver-owned `struct selinfo`: kernel-private and of varying size across releases, so
/// the driver reserves `TUN_SELINFO_BYTES` zeroed bytes, 16-byte aligned (docs/kext-build.md
/// section 7). It lives inside mutex-guarded unit state.
#[repr(C, align(16))]
pub struct SelInfo(UnsafeCell<[u8; sys::TUN_SELINFO_BYTES as usize]>);

// SAFETY: the kernel serialises its own access to the record; the driver only passes the
// address, always under the unit mutex.
unsafe impl Send for SelInfo {}

impl SelInfo {
    /// Zeroed storage, as the kernel expects before the first `selrecord`.
    pub const fn new() -> SelInfo {
        SelInfo(UnsafeCell::new([0; sys::TUN_SELINFO_BYTES as usize]))
    }

    fn raw(&self) -> *mut sys::selinfo {
        self.0.get().cast()
    }

    /// Records the selecting thread (`d_select` found nothing ready).
    pub fn record(&self, wql: SelectToken) {
        // SAFETY: current_proc is the selecting process and `wql` the cookie the kernel gave
        // this d_select call; `self` outlives the record because `clear` runs before the
        // storage is reused (unload).
        unsafe { sys::selrecord(sys::current_proc(), self.raw(), wql.0) };
    }

    /// Wakes every thread recorded on this selinfo.
    pub fn wakeup(&self) {
        // SAFETY: valid selinfo storage.
        unsafe { sys::selwakeup(self.raw()) };
    }

    /// Drops every record before the storage goes away (`selthreadclear`).
    pub fn clear(&self) {
        // SAFETY: valid selinfo storage.
        unsafe { sys::selthreadclear(self.raw()) };
    }
}

/// The kernel's opaque wait-queue cookie for one `d_select` call: `d_select`'s `wql`
/// argument itself (same ABI), which only the kernel can make.
#[repr(transparent)]
pub struct SelectToken(*mut c_void);

impl Default for SelInfo {
    fn default() -> Self {
        SelInfo::new()
    }
}
