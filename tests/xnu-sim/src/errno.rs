//! Darwin errno values (xnu bsd/sys/errno.h, KERNEL), as the test-side API reports them.

use std::fmt;

/// A Darwin errno. Never a Linux one: `EAGAIN` is 35 here.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl Errno {
            $(#[allow(missing_docs)] pub const $name: Errno = Errno($value);)*
            /// The symbolic name, if known.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($value => Some(stringify!($name)),)* _ => None }
            }
        }
    };
}

errnos! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, ENOMEM = 12,
    EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOTTY = 25,
    EAGAIN = 35, EMSGSIZE = 40, EPROTOTYPE = 41, ENOTSUP = 45, EAFNOSUPPORT = 47,
    EADDRINUSE = 48, EADDRNOTAVAIL = 49, ENETDOWN = 50, ENOBUFS = 55,
    ETIMEDOUT = 60, EHOSTDOWN = 64, EOPNOTSUPP = 102, ERESTART = -1, EJUSTRETURN = -2,
}

impl Errno {
    /// `EWOULDBLOCK` is `EAGAIN` on Darwin.
    pub const EWOULDBLOCK: Errno = Errno(35);
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Errno {}

/// `Ok(())` for 0, else the errno.
pub fn check(code: i32) -> Result<(), Errno> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno(code))
    }
}
