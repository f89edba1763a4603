//! uio and uiomove (xnu bsd/sys/uio.h): copies across all iovecs of a readv/writev, in the
//! direction of the request, advancing resid and offset. Faults can be injected.

use crate::abi::*;
use crate::config::{self, Fault};
use crate::errno::Errno;
use std::ffi::{c_char, c_int};

/// A request built by the syscall layer over the user's buffers.
pub(crate) struct SimUio {
    pub(crate) iovs: Vec<(*mut u8, usize)>,
    pub(crate) rw: c_int,
    pub(crate) resid: usize,
    pub(crate) offset: i64,
    /// Bytes moved so far (for the syscall's return value).
    pub(crate) moved: usize,
}

impl SimUio {
    pub(crate) fn new(iovs: Vec<(*mut u8, usize)>, rw: c_int) -> SimUio {
        let resid = iovs.iter().map(|(_, l)| l).sum();
        SimUio {
            iovs,
            rw,
            resid,
            offset: 0,
            moved: 0,
        }
    }
}

/// `uiomove` (bsd/kern/kern_subr.c `uiomove` → `uiomove64`): copies min(n, resid) bytes across
/// every iovec in the direction of `uio_rw`, advancing resid and offset. `EFAULT` can be injected
/// (before any byte moves).
#[no_mangle]
unsafe extern "C" fn uiomove(cp: *const c_char, n: c_int, uio: uio_t) -> c_int {
    // SAFETY: every uio the driver gets is a `SimUio` the syscall layer built and keeps alive,
    // and exclusively lent, for the whole call into the driver.
    let uio = unsafe { &mut *uio.cast::<SimUio>() };
    let fault = if uio.rw == UIO_READ {
        Fault::CopyOut
    } else {
        Fault::CopyIn
    };
    if config::should_fail(fault) {
        return Errno::EFAULT.0;
    }
    let mut left = (n.max(0) as usize).min(uio.resid);
    let mut kaddr = cp as *mut u8;
    let mut skip = uio.moved;
    for &(base, len) in &uio.iovs {
        if left == 0 {
            break;
        }
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = (len - skip).min(left);
        // SAFETY: `skip + take <= len`: inside the user's iovec, which the syscall layer built
        // over a live buffer of `len` bytes. The kernel buffer `cp` has at least `n` bytes (the
        // KPI contract) and `take` counts toward at most `n`. The test's user buffers and the
        // driver's kernel buffer are distinct allocations.
        unsafe {
            let user = base.add(skip);
            if uio.rw == UIO_READ {
                std::ptr::copy_nonoverlapping(kaddr, user, take);
            } else {
                std::ptr::copy_nonoverlapping(user, kaddr, take);
            }
            kaddr = kaddr.add(take);
        }
        left -= take;
        skip = 0;
        uio.moved += take;
        uio.resid -= take;
        uio.offset += take as i64;
    }
    0
}

/// `uio_resid` (bsd/kern/kern_subr.c): the bytes left in the request.
#[no_mangle]
unsafe extern "C" fn uio_resid(uio: uio_t) -> i64 {
    // SAFETY: as in `uiomove`: a live `SimUio` of the syscall layer.
    unsafe { (*uio.cast::<SimUio>()).resid as i64 }
}

/// `uio_rw` (bsd/kern/kern_subr.c): the direction of the request, `UIO_READ` or `UIO_WRITE`.
#[no_mangle]
unsafe extern "C" fn uio_rw(uio: uio_t) -> c_int {
    // SAFETY: as in `uiomove`.
    unsafe { (*uio.cast::<SimUio>()).rw }
}

/// `uio_offset` (bsd/kern/kern_subr.c): the request's offset (0 for a device at the start),
/// advanced by every byte `uiomove` moves.
#[no_mangle]
unsafe extern "C" fn uio_offset(uio: uio_t) -> i64 {
    // SAFETY: as in `uiomove`.
    unsafe { (*uio.cast::<SimUio>()).offset }
}

/// The user memory of the simulated process that `copyout` may write: ranges a test lends
/// with [`lend_user_memory`] (an ioctl argument's list buffer, for example). Anything else is
/// unmapped, as far as the simulated kernel knows.
static USER_MEMORY: std::sync::Mutex<Vec<(u64, usize)>> = std::sync::Mutex::new(Vec::new());

/// A range of the test's memory lent to the simulated process while this lives.
pub struct LentUserMemory {
    start: u64,
    len: usize,
}

/// Lends `buf` to the simulated process as user memory: `copyout` may write it until the
/// returned guard is dropped. Its user address is the buffer's own address.
pub fn lend_user_memory(buf: &mut [u8]) -> LentUserMemory {
    let lent = LentUserMemory {
        start: buf.as_mut_ptr() as u64,
        len: buf.len(),
    };
    USER_MEMORY.lock().unwrap().push((lent.start, lent.len));
    lent
}

impl LentUserMemory {
    /// The user address of the lent range.
    pub fn address(&self) -> u64 {
        self.start
    }
}

impl Drop for LentUserMemory {
    fn drop(&mut self) {
        let mut lent = USER_MEMORY.lock().unwrap();
        if let Some(at) = lent.iter().position(|&r| r == (self.start, self.len)) {
            lent.swap_remove(at);
        }
    }
}

/// `copyout` (osfmk/x86_64/copyio.c `copyout` → `copyio`, osfmk/arm64/copyio.c on arm64):
/// copies `len` kernel bytes to the current process's address `udaddr`; `EFAULT` unless the
/// whole range lies in user memory a test lent ([`lend_user_memory`]): page zero, a wrapping
/// range and every address nobody lent fault, as unmapped user addresses do in XNU.
#[no_mangle]
unsafe extern "C" fn copyout(kaddr: *const std::ffi::c_void, udaddr: u64, len: usize) -> c_int {
    let Some(end) = udaddr.checked_add(len as u64) else {
        return Errno::EFAULT.0;
    };
    let mapped = USER_MEMORY
        .lock()
        .unwrap()
        .iter()
        .any(|&(start, n)| udaddr >= start && end <= start + n as u64);
    if !mapped {
        return Errno::EFAULT.0;
    }
    // SAFETY: the KPI contract: `kaddr` holds `len` readable bytes; the destination lies in
    // a buffer a test lent and keeps alive (and borrowed mutably) for as long as it is lent.
    unsafe { std::ptr::copy_nonoverlapping(kaddr.cast::<u8>(), udaddr as *mut u8, len) };
    0
}
