//! Darwin → Linux errno at the boundary where the simulated kernel meets real Linux programs
//! (the FUSE replies, the relay's `io::Error`s). The simulator speaks Darwin numbers only.

/// The Linux errno for Darwin errno `e`. 1–34 are the same on both except 11 (Darwin
/// `EDEADLK`, Linux `EAGAIN`); the rest differ. `ERESTART` never leaves a syscall on Darwin;
/// if it ever shows up here it is reported as `EINTR`. Unknown values become `EIO`.
pub fn darwin_to_linux(e: i32) -> i32 {
    match e {
        11 => libc::EDEADLK,
        1..=34 => e,
        35 => libc::EAGAIN,
        36 => libc::EINPROGRESS,
        37 => libc::EALREADY,
        40 => libc::EMSGSIZE,
        41 => libc::EPROTOTYPE,
        45 | 102 => libc::EOPNOTSUPP,
        47 => libc::EAFNOSUPPORT,
        48 => libc::EADDRINUSE,
        49 => libc::EADDRNOTAVAIL,
        50 => libc::ENETDOWN,
        51 => libc::ENETUNREACH,
        55 => libc::ENOBUFS,
        60 => libc::ETIMEDOUT,
        64 => libc::EHOSTDOWN,
        65 => libc::EHOSTUNREACH,
        -1 => libc::EINTR,
        _ => libc::EIO,
    }
}

/// An `io::Error` carrying the Linux errno for a simulator error.
pub fn io_error(e: xnu_sim::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(darwin_to_linux(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnu_sim::Errno;

    #[test]
    fn the_errnos_the_driver_returns_map_to_linux_names() {
        assert_eq!(darwin_to_linux(Errno::EAGAIN.0), libc::EAGAIN); // RD-4: 35 → 11
        assert_eq!(darwin_to_linux(Errno::ENOBUFS.0), libc::ENOBUFS); // O4: 55 → 105
        assert_eq!(darwin_to_linux(Errno::EHOSTDOWN.0), libc::EHOSTDOWN); // O1: 64 → 112
        assert_eq!(darwin_to_linux(Errno::EAFNOSUPPORT.0), libc::EAFNOSUPPORT);
        assert_eq!(darwin_to_linux(Errno::EOPNOTSUPP.0), libc::EOPNOTSUPP);
        assert_eq!(darwin_to_linux(Errno::ENOTSUP.0), libc::EOPNOTSUPP);
        assert_eq!(darwin_to_linux(Errno::EBUSY.0), libc::EBUSY); // U-3
        assert_eq!(darwin_to_linux(Errno::ENXIO.0), libc::ENXIO);
        assert_eq!(darwin_to_linux(Errno::EINVAL.0), libc::EINVAL);
        assert_eq!(darwin_to_linux(Errno::EINTR.0), libc::EINTR);
        assert_eq!(darwin_to_linux(Errno::ERESTART.0), libc::EINTR);
    }

    #[test]
    fn darwin_edeadlk_is_not_linux_eagain() {
        assert_eq!(darwin_to_linux(11), libc::EDEADLK);
        assert_ne!(darwin_to_linux(11), libc::EAGAIN);
    }

    #[test]
    fn unknown_values_become_eio() {
        assert_eq!(darwin_to_linux(9999), libc::EIO);
        assert_eq!(io_error(Errno(9999)).raw_os_error(), Some(libc::EIO));
    }
}
