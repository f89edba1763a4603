//! BSD ↔ Linux ioctl command encoding at the FUSE boundary (docs/xnu-sim.md 6.3).
//!
//! A FUSE server on a regular file gets "restricted" ioctls: the Linux kernel copies the
//! argument in and out according to the *Linux* `_IOC_DIR` bits of the command. Linux puts
//! `_IOC_WRITE` (caller → kernel) at bit 30 and `_IOC_READ` at bit 31; BSD puts `IOC_OUT`
//! (kernel → caller) at bit 30 and `IOC_IN` at bit 31: the same two bits, swapped. A BSD
//! `_IOW` therefore reaches the server as a Linux `_IOR` (input lost, caller's buffer
//! clobbered), and only `_IOWR` survives unchanged. Linux has no `IOC_VOID` bit either: bit 29
//! is part of its 14-bit size field.
//!
//! So clients of the FUSE file send the **Linux encoding** of the BSD command (same group,
//! number and size, direction translated), built with [`bsd_to_linux`], and the server maps it
//! back with [`linux_to_bsd`] before the driver's `d_ioctl` sees it.

/// BSD `IOC_VOID`: no argument (or a by-value int).
pub const BSD_IOC_VOID: u32 = 0x2000_0000;
/// BSD `IOC_OUT`: copied out to the caller.
pub const BSD_IOC_OUT: u32 = 0x4000_0000;
/// BSD `IOC_IN`: copied in from the caller.
pub const BSD_IOC_IN: u32 = 0x8000_0000;
/// BSD `IOCPARM_MASK`: 13 bits of argument size.
pub const BSD_IOCPARM_MASK: u32 = 0x1fff;
/// Linux `_IOC_WRITE << _IOC_DIRSHIFT`: copied in from the caller.
pub const LINUX_IOC_WRITE: u32 = 1 << 30;
/// Linux `_IOC_READ << _IOC_DIRSHIFT`: copied out to the caller.
pub const LINUX_IOC_READ: u32 = 2 << 30;
/// Linux `_IOC_SIZEMASK`: 14 bits of argument size.
pub const LINUX_IOC_SIZEMASK: u32 = 0x3fff;

/// The Linux encoding of BSD command `cmd`: what a client passes to `ioctl(2)` on the FUSE
/// file so that the kernel copies the argument the way BSD would.
pub fn bsd_to_linux(cmd: u32) -> u32 {
    let size = (cmd >> 16) & BSD_IOCPARM_MASK;
    let mut dir = 0;
    if cmd & BSD_IOC_IN != 0 {
        dir |= LINUX_IOC_WRITE;
    }
    if cmd & BSD_IOC_OUT != 0 {
        dir |= LINUX_IOC_READ;
    }
    dir | (size << 16) | (cmd & 0xffff)
}

/// The BSD command a Linux-encoded `cmd` stands for; `None` if its size does not fit BSD's
/// 13-bit field (no BSD command has that encoding).
pub fn linux_to_bsd(cmd: u32) -> Option<u32> {
    let size = (cmd >> 16) & LINUX_IOC_SIZEMASK;
    if size > BSD_IOCPARM_MASK {
        return None;
    }
    let mut dir = 0;
    if cmd & LINUX_IOC_WRITE != 0 {
        dir |= BSD_IOC_IN;
    }
    if cmd & LINUX_IOC_READ != 0 {
        dir |= BSD_IOC_OUT;
    }
    if dir == 0 {
        dir = BSD_IOC_VOID;
    }
    Some(dir | (size << 16) | (cmd & 0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux `_IOC(dir, type, nr, size)` (include/uapi/asm-generic/ioctl.h), written out.
    fn linux_ioc(dir: u32, ty: u8, nr: u8, size: u32) -> u32 {
        (dir << 30) | (size << 16) | (u32::from(ty) << 8) | u32::from(nr)
    }

    #[test]
    fn bsd_iow_becomes_linux_iow_and_back() {
        // TUNSIFHEAD = _IOW('t', 96, int) (IO-2 table in docs/tun-contract.md).
        assert_eq!(bsd_to_linux(0x8004_7460), linux_ioc(1, b't', 96, 4));
        assert_eq!(bsd_to_linux(0x8004_7460), 0x4004_7460);
        assert_eq!(linux_to_bsd(0x4004_7460), Some(0x8004_7460));
    }

    #[test]
    fn bsd_ior_becomes_linux_ior_and_back() {
        // TUNGIFHEAD = _IOR('t', 97, int).
        assert_eq!(bsd_to_linux(0x4004_7461), linux_ioc(2, b't', 97, 4));
        assert_eq!(linux_to_bsd(0x8004_7461), Some(0x4004_7461));
    }

    #[test]
    fn bsd_iowr_is_unchanged() {
        let cmd = 0xc004_7462;
        assert_eq!(bsd_to_linux(cmd), cmd);
        assert_eq!(linux_to_bsd(cmd), Some(cmd));
    }

    #[test]
    fn bsd_io_void_loses_and_regains_the_void_bit() {
        // _IO('t', 97): BSD sets IOC_VOID, Linux has no direction bits at all.
        assert_eq!(bsd_to_linux(0x2000_7461), linux_ioc(0, b't', 97, 0));
        assert_eq!(linux_to_bsd(0x0000_7461), Some(0x2000_7461));
    }

    #[test]
    fn oversized_linux_commands_have_no_bsd_meaning() {
        assert_eq!(linux_to_bsd(linux_ioc(2, b'x', 1, 0x2000)), None);
        assert_eq!(
            linux_to_bsd(linux_ioc(2, b'x', 1, 0x1fff)),
            Some(0x5fff_7801)
        );
    }

    #[test]
    fn round_trip_over_every_direction_and_many_sizes() {
        for dir in [
            BSD_IOC_VOID,
            BSD_IOC_IN,
            BSD_IOC_OUT,
            BSD_IOC_IN | BSD_IOC_OUT,
        ] {
            for size in [0u32, 1, 4, 16, 32, 0x1fff] {
                for low in [0x7460u32, 0x667e, 0x0001, 0xffff] {
                    let bsd = dir | (size << 16) | low;
                    let linux = bsd_to_linux(bsd);
                    assert_eq!(linux_to_bsd(linux), Some(bsd), "{bsd:#x} via {linux:#x}");
                    // The Linux kernel must see the same copy directions BSD would do.
                    assert_eq!(linux & LINUX_IOC_WRITE != 0, bsd & BSD_IOC_IN != 0);
                    assert_eq!(linux & LINUX_IOC_READ != 0, bsd & BSD_IOC_OUT != 0);
                    assert_eq!((linux >> 16) & LINUX_IOC_SIZEMASK, size);
                }
            }
        }
    }
}
