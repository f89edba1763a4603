//! The user's I/O request (`uio`, xnu bsd/sys/uio.h): the only way bytes cross to and from
//! user space. Its direction is part of its type: a read's uio ([`ToUser`]) only accepts bytes
//! for the user, a write's ([`FromUser`]) only hands them over, so a shared slice is never
//! written through.

use super::errno::{check, Errno};
use super::sys;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The direction of a `d_read` uio (`UIO_READ`): bytes move from the kernel to the user.
pub enum ToUser {}
/// The direction of a `d_write` uio (`UIO_WRITE`): bytes move from the user to the kernel.
pub enum FromUser {}

/// A read or write request in progress, borrowed for one entry-point call; `Dir` is
/// [`ToUser`] or [`FromUser`].
pub struct Uio<'call, Dir> {
    raw: NonNull<sys::uio>,
    _call: PhantomData<(&'call mut sys::uio, Dir)>,
}

impl<Dir> Uio<'_, Dir> {
    /// Wraps the uio of the current `d_read` (`Dir` = [`ToUser`]) or `d_write` ([`FromUser`]).
    ///
    /// # Safety
    /// `raw` must be NULL or the live uio of the current entry point, of direction `Dir`.
    pub(super) unsafe fn new<'call>(raw: *mut sys::uio) -> Option<Uio<'call, Dir>> {
        NonNull::new(raw).map(|raw| Uio {
            raw,
            _call: PhantomData,
        })
    }

    /// Bytes still to transfer.
    pub fn resid(&self) -> usize {
        // SAFETY: live uio for this call.
        let r = unsafe { sys::uio_resid(self.raw.as_ptr()) };
        usize::try_from(r).unwrap_or(0)
    }

    /// `uiomove` of `len` bytes at `ptr`, in the uio's own direction, in `int`-sized steps.
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for the direction `Dir`: readable for [`ToUser`],
    /// writable and unaliased for [`FromUser`].
    unsafe fn uiomove(&mut self, ptr: *mut u8, len: usize) -> Result<(), Errno> {
        let mut done = 0;
        // uiomove takes an int; packets are at most TUNMRU + 4, but stay correct for any size.
        while done < len {
            let chunk = (len - done).min(i32::MAX as usize);
            // SAFETY: the caller's contract covers `ptr[done..done + chunk]`; the uio is live.
            check(unsafe { sys::uiomove(ptr.add(done).cast(), chunk as i32, self.raw.as_ptr()) })?;
            done += chunk;
        }
        Ok(())
    }
}

impl Uio<'_, ToUser> {
    /// Copies `data` to the user (a read). Moves at most `resid` bytes.
    pub fn copy_out(&mut self, data: &[u8]) -> Result<(), Errno> {
        // SAFETY: a ToUser uio only reads `data`, which is valid for its length.
        unsafe { self.uiomove(data.as_ptr().cast_mut(), data.len()) }
    }
}

impl Uio<'_, FromUser> {
    /// Fills `data` from the user (a write).
    pub fn copy_in(&mut self, data: &mut [u8]) -> Result<(), Errno> {
        // SAFETY: a FromUser uio writes `data`, which we borrow mutably for the call.
        unsafe { self.uiomove(data.as_mut_ptr(), data.len()) }
    }
}

/// Copies `data` to address `user` of the calling process (`copyout`): `EFAULT` when the kernel
/// finds the address bad. Only the user's memory is written, and the kernel checks the range,
/// so any address is safe to try.
pub fn copy_to_user(user: u64, data: &[u8]) -> Result<(), Errno> {
    // SAFETY: `data` is readable for its length; copyout validates the user range itself.
    check(unsafe { sys::copyout(data.as_ptr().cast(), user, data.len()) })
}
