//! The user's I/O request (`uio`): the only way bytes cross to and from user space.

use super::sys;
use crate::errno::{check, Errno};
use core::marker::PhantomData;
use core::ptr::NonNull;

/// A read or write request in progress, borrowed for one entry-point call.
pub struct Uio<'a> {
    raw: NonNull<sys::uio>,
    _call: PhantomData<&'a mut sys::uio>,
}

impl Uio<'_> {
    /// Wraps the kernel's uio for the duration of a `d_read`/`d_write` call.
    ///
    /// # Safety
    /// `raw` must be the valid uio passed to the current entry point.
    pub unsafe fn from_raw<'a>(raw: *mut sys::uio) -> Option<Uio<'a>> {
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

    /// Copies `data` to the user (a read). Moves at most `resid` bytes.
    pub fn copy_out(&mut self, data: &[u8]) -> Result<(), Errno> {
        self.uiomove(data.as_ptr().cast_mut(), data.len())
    }

    /// Fills `data` from the user (a write).
    pub fn copy_in(&mut self, data: &mut [u8]) -> Result<(), Errno> {
        self.uiomove(data.as_mut_ptr(), data.len())
    }

    fn uiomove(&mut self, ptr: *mut u8, len: usize) -> Result<(), Errno> {
        let mut done = 0;
        // uiomove takes an int; packets are at most TUNMRU + 4, but stay correct for any size.
        while done < len {
            let chunk = (len - done).min(i32::MAX as usize);
            // SAFETY: `ptr[done..done+chunk]` is valid kernel memory for the direction the uio
            // was built for (read: we only read it; write: we own it mutably).
            check(unsafe { sys::uiomove(ptr.add(done).cast(), chunk as i32, self.raw.as_ptr()) })?;
            done += chunk;
        }
        Ok(())
    }
}
