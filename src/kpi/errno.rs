//! Darwin errno values, as the kernel uses them (xnu bsd/sys/errno.h with KERNEL defined).

use super::sys;

/// An error an entry point returns to the kernel. Values are Darwin's, never the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// No such file or directory.
    ENOENT = sys::ENOENT as i32,
    /// No such process.
    ESRCH = sys::ESRCH as i32,
    /// Interrupted by a signal whose handler has no `SA_RESTART`.
    EINTR = sys::EINTR as i32,
    /// Input/output error.
    EIO = sys::EIO as i32,
    /// Device not configured: the unit is closed or the driver is going away.
    ENXIO = sys::ENXIO as i32,
    /// Cannot allocate memory.
    ENOMEM = sys::ENOMEM as i32,
    /// Bad address.
    EFAULT = sys::EFAULT as i32,
    /// Device busy.
    EBUSY = sys::EBUSY as i32,
    /// Already exists: a protocol already attached, or a plumber another driver registered.
    EEXIST = sys::EEXIST as i32,
    /// Invalid argument.
    EINVAL = sys::EINVAL as i32,
    /// Inappropriate ioctl for device.
    ENOTTY = sys::ENOTTY as i32,
    /// Resource temporarily unavailable (= `EWOULDBLOCK`).
    EAGAIN = sys::EAGAIN as i32,
    /// Protocol wrong type.
    EPROTOTYPE = sys::EPROTOTYPE as i32,
    /// Address family not supported.
    EAFNOSUPPORT = sys::EAFNOSUPPORT as i32,
    /// No buffer space available.
    ENOBUFS = sys::ENOBUFS as i32,
    /// Host is down: output while the unit is closed or the interface is down.
    EHOSTDOWN = sys::EHOSTDOWN as i32,
    /// Operation not supported (the kernel-internal value, 102).
    EOPNOTSUPP = sys::EOPNOTSUPP as i32,
    /// Kernel-internal: restart the system call (signal handler with `SA_RESTART`).
    ERESTART = sys::ERESTART,
}

impl Errno {
    /// The value the KPI expects.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The errno for a non-zero KPI return value; unknown values become `EIO`.
    pub fn from_code(code: i32) -> Errno {
        const ALL: [Errno; 18] = [
            Errno::ENOENT,
            Errno::ESRCH,
            Errno::EINTR,
            Errno::EIO,
            Errno::ENXIO,
            Errno::ENOMEM,
            Errno::EFAULT,
            Errno::EBUSY,
            Errno::EEXIST,
            Errno::EINVAL,
            Errno::ENOTTY,
            Errno::EAGAIN,
            Errno::EPROTOTYPE,
            Errno::EAFNOSUPPORT,
            Errno::ENOBUFS,
            Errno::EHOSTDOWN,
            Errno::EOPNOTSUPP,
            Errno::ERESTART,
        ];
        ALL.into_iter()
            .find(|e| e.code() == code)
            .unwrap_or(Errno::EIO)
    }
}

/// Converts a KPI `errno_t` into a `Result`.
pub fn check(code: i32) -> Result<(), Errno> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno::from_code(code))
    }
}
