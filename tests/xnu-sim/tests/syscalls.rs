//! The user side above a driver, against a recording test driver: d_open on every open and
//! d_close on the last close (xnu bsd/miscfs/specfs/spec_vnops.c), fcntl(F_SETFL) →
//! FIONBIO then FIOASYNC with the rollback (xnu bsd/kern/kern_descrip.c), IO_NDELAY
//! (xnu bsd/vfs/vfs_vnops.c), the partial-transfer rule (xnu bsd/kern/sys_generic.c
//! dofileread/dofilewrite) and ioctl copy-in/copy-out by direction bits (sys_generic.c ioctl).

mod common;

use common::testdrv::{self, calls, clear_calls, script, Call};
use common::*;
use xnu_sim::abi::{IO_NDELAY, S_IFCHR};
use xnu_sim::syscalls::{self as sys, O_ASYNC, O_NONBLOCK, O_RDWR};
use xnu_sim::{Errno, Fd};

const FIONBIO: u32 = 0x8004_667e;
const FIOASYNC: u32 = 0x8004_667d;
/// `_IOW('t', 90, int)`.
const T_IOW: u32 = 0x8004_745a;
/// `_IOR('t', 91, char[8])`.
const T_IOR8: u32 = 0x4008_745b;
/// `_IOWR('t', 92, int)`.
const T_IOWR: u32 = 0xc004_745c;
/// `_IO('t', 93)`.
const T_IO: u32 = 0x2000_745d;

fn setup() -> (i32, Fd) {
    boot();
    let dev = testdrv::install("simdev");
    let fd = sys::open("/dev/simdev", O_RDWR).expect("open");
    clear_calls();
    (dev, fd)
}

/// The (command, int value) of every ioctl the driver saw since the last clear.
fn ioctls() -> Vec<(u32, i32)> {
    calls().iter().filter_map(Call::ioctl_int).collect()
}

fn read_ioflags() -> Vec<i32> {
    calls()
        .iter()
        .filter_map(|c| match c {
            Call::Read { ioflag, .. } | Call::Write { ioflag, .. } => Some(*ioflag),
            _ => None,
        })
        .collect()
}

#[test]
fn d_open_on_every_open_d_close_on_last_close() {
    boot();
    let dev = testdrv::install("simdev");
    let a = sys::open("/dev/simdev", O_RDWR).unwrap();
    let b = sys::open("/dev/simdev", O_RDWR | O_NONBLOCK).unwrap();
    let opens: Vec<Call> = calls();
    assert_eq!(
        opens,
        vec![
            Call::Open {
                dev,
                flags: O_RDWR,
                devtype: S_IFCHR
            },
            Call::Open {
                dev,
                flags: O_RDWR | O_NONBLOCK,
                devtype: S_IFCHR
            },
        ],
        "d_open(dev, flags, S_IFCHR, p) on every open"
    );
    clear_calls();
    sys::close(a).unwrap();
    assert!(calls().is_empty(), "not the last close: no d_close");
    let c = sys::dup(b).unwrap();
    assert!(calls().is_empty(), "dup shares the open file: no d_open");
    sys::close(b).unwrap();
    assert!(calls().is_empty(), "a dup still refers to it: no d_close");
    sys::close(c).unwrap();
    assert!(
        matches!(calls().as_slice(), [Call::Close { dev: d, .. }] if *d == dev),
        "exactly one d_close on the last close: {:?}",
        calls()
    );
    assert_eq!(sys::close(c), Err(Errno::EBADF));
    assert_eq!(sys::open("/dev/nosuch", O_RDWR), Err(Errno::ENOENT));
}

#[test]
fn fcntl_setfl_sends_fionbio_then_fioasync_on_every_call() {
    let (_, fd) = setup();
    for (flags, want) in [
        (O_NONBLOCK, [(FIONBIO, 4), (FIOASYNC, 0)]),
        (O_NONBLOCK, [(FIONBIO, 4), (FIOASYNC, 0)]), // unchanged flags: sent again
        (0, [(FIONBIO, 0), (FIOASYNC, 0)]),
        (O_ASYNC, [(FIONBIO, 0), (FIOASYNC, 0x40)]),
        (O_NONBLOCK | O_ASYNC, [(FIONBIO, 4), (FIOASYNC, 0x40)]),
    ] {
        clear_calls();
        sys::fcntl_setfl(fd, flags).unwrap();
        assert_eq!(ioctls(), want, "fcntl(F_SETFL, {flags:#x})");
        assert_eq!(
            sys::fcntl_getfl(fd).unwrap() & (O_NONBLOCK | O_ASYNC),
            flags
        );
    }
}

#[test]
fn fcntl_setfl_rolls_back_fnonblock_when_fioasync_fails() {
    let (_, fd) = setup();
    script(|s| s.ioctl_rc.insert(FIOASYNC, Errno::EINVAL.0));
    assert_eq!(
        sys::fcntl_setfl(fd, O_NONBLOCK | O_ASYNC),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        ioctls(),
        vec![(FIONBIO, 4), (FIOASYNC, 0x40), (FIONBIO, 0)],
        "FIOASYNC failed: FNONBLOCK cleared and FIONBIO(0) sent"
    );
    let fl = sys::fcntl_getfl(fd).unwrap();
    assert_eq!(fl & O_NONBLOCK, 0, "FNONBLOCK cleared");
    assert_ne!(
        fl & O_ASYNC,
        0,
        "XNU leaves FASYNC in f_flag (only FNONBLOCK is undone)"
    );
    clear_calls();
    sys::read(fd, &mut [0u8; 4]).unwrap();
    assert_eq!(read_ioflags(), vec![0], "blocking again: no IO_NDELAY");
    // FIONBIO itself failing: the call fails at once, FIOASYNC is never sent.
    script(|s| {
        s.ioctl_rc.clear();
        s.ioctl_rc.insert(FIONBIO, Errno::ENOTTY.0)
    });
    clear_calls();
    assert_eq!(sys::fcntl_setfl(fd, O_NONBLOCK), Err(Errno::ENOTTY));
    assert_eq!(ioctls(), vec![(FIONBIO, 4)]);
}

#[test]
fn io_ndelay_in_ioflag_for_non_blocking_descriptors() {
    boot();
    testdrv::install("simdev");
    let blocking = sys::open("/dev/simdev", O_RDWR).unwrap();
    let nonblocking = sys::open("/dev/simdev", O_RDWR | O_NONBLOCK).unwrap();
    clear_calls();
    sys::read(blocking, &mut [0u8; 8]).unwrap();
    sys::write(blocking, &[1u8; 8]).unwrap();
    sys::read(nonblocking, &mut [0u8; 8]).unwrap();
    sys::write(nonblocking, &[1u8; 8]).unwrap();
    let f = read_ioflags();
    assert_eq!(
        f.iter().map(|x| x & IO_NDELAY).collect::<Vec<_>>(),
        [0, 0, IO_NDELAY, IO_NDELAY]
    );
    // ioctl(FIONBIO) changes it too, and reaches the driver after updating the flag.
    clear_calls();
    sys::ioctl_int(blocking, FIONBIO, 1).unwrap();
    sys::read(blocking, &mut [0u8; 8]).unwrap();
    assert_eq!(ioctls(), vec![(FIONBIO, 1)]);
    assert_eq!(read_ioflags(), vec![IO_NDELAY]);
    clear_calls();
    sys::fcntl_setfl(blocking, 0).unwrap();
    sys::read(blocking, &mut [0u8; 8]).unwrap();
    assert_eq!(read_ioflags(), vec![0]);
}

#[test]
fn partial_transfer_rule() {
    let (_, fd) = setup();
    let mut buf = [0xeeu8; 16];
    // Bytes moved + EINTR / ERESTART / EWOULDBLOCK: the byte count.
    for e in [Errno::EINTR, Errno::ERESTART, Errno::EWOULDBLOCK] {
        clear_calls();
        script(|s| s.rdwr.push_back((5, e.0)));
        assert_eq!(sys::read(fd, &mut buf), Ok(5), "5 bytes then {e:?}");
        assert_eq!(&buf[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(calls().len(), 1, "not re-issued");
        script(|s| s.rdwr.push_back((3, e.0)));
        assert_eq!(
            sys::write(fd, &[7u8; 10]),
            Ok(3),
            "write: 3 bytes then {e:?}"
        );
    }
    // Nothing moved: the error.
    for e in [Errno::EINTR, Errno::EWOULDBLOCK] {
        script(|s| s.rdwr.push_back((0, e.0)));
        assert_eq!(sys::read(fd, &mut buf), Err(e));
    }
    // Another error after some bytes: the error (only those three become a count).
    script(|s| s.rdwr.push_back((2, Errno::EIO.0)));
    assert_eq!(sys::read(fd, &mut buf), Err(Errno::EIO));
    // ERESTART with nothing moved: the call is re-issued.
    clear_calls();
    script(|s| {
        s.rdwr.push_back((0, Errno::ERESTART.0));
        s.rdwr.push_back((4, 0));
    });
    assert_eq!(sys::read(fd, &mut buf), Ok(4));
    assert_eq!(calls().len(), 2, "d_read called again after ERESTART");
    assert!(
        calls()
            .iter()
            .all(|c| matches!(c, Call::Read { resid: 16, .. })),
        "the re-issued call starts over with the full request: {:?}",
        calls()
    );
    // readv: one request over all iovecs.
    clear_calls();
    script(|s| s.rdwr.push_back((6, 0)));
    let (mut a, mut b) = ([0u8; 3], [0u8; 5]);
    assert_eq!(sys::readv(fd, &mut [&mut a, &mut b]), Ok(6));
    assert_eq!((a, &b[..3]), ([0, 1, 2], &[3u8, 4, 5][..]));
    assert!(matches!(calls().as_slice(), [Call::Read { resid: 8, .. }]));
}

#[test]
fn ioctl_copies_by_direction_bits() {
    let (_, fd) = setup();
    // IOC_IN: copied in; never copied out.
    script(|s| s.ioctl_write.insert(T_IOW, vec![9, 9, 9, 9]));
    let mut arg = 0x1122_3344i32.to_ne_bytes();
    sys::ioctl(fd, T_IOW, &mut arg).unwrap();
    assert_eq!(
        ioctls(),
        vec![(T_IOW, 0x1122_3344)],
        "IOC_IN: the driver sees the argument"
    );
    assert_eq!(
        i32::from_ne_bytes(arg),
        0x1122_3344,
        "IOC_IN only: no copy-out"
    );
    // IOC_OUT: the buffer starts zeroed; copied out on success only.
    clear_calls();
    script(|s| s.ioctl_write.insert(T_IOR8, (1..=8).collect()));
    let mut out = [0xffu8; 8];
    sys::ioctl(fd, T_IOR8, &mut out).unwrap();
    assert!(
        matches!(&calls()[..], [Call::Ioctl { data, .. }] if data == &vec![0u8; 8]),
        "IOC_OUT: the driver's buffer starts zeroed: {:?}",
        calls()
    );
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8], "copied out on success");
    script(|s| s.ioctl_rc.insert(T_IOR8, Errno::EINVAL.0));
    let mut out = [0xffu8; 8];
    assert_eq!(sys::ioctl(fd, T_IOR8, &mut out), Err(Errno::EINVAL));
    assert_eq!(out, [0xff; 8], "not copied out on failure");
    // IOC_INOUT: both ways.
    clear_calls();
    script(|s| s.ioctl_write.insert(T_IOWR, 77i32.to_ne_bytes().to_vec()));
    assert_eq!(sys::ioctl_int(fd, T_IOWR, 5), Ok(77));
    assert_eq!(ioctls(), vec![(T_IOWR, 5)]);
    // IOC_VOID: the raw argument value in the buffer.
    clear_calls();
    sys::ioctl(fd, T_IO, &mut 0x5a5a_0042i32.to_ne_bytes()).unwrap();
    assert_eq!(ioctls(), vec![(T_IO, 0x5a5a_0042)]);
    // A bad user pointer: EFAULT before the driver whenever something is copied.
    clear_calls();
    assert_eq!(sys::ioctl_bad_pointer(fd, T_IOW), Err(Errno::EFAULT));
    assert_eq!(sys::ioctl_bad_pointer(fd, T_IOR8), Err(Errno::EFAULT));
    assert_eq!(
        sys::ioctl(fd, T_IOR8, &mut [0u8; 4]),
        Err(Errno::EFAULT),
        "short buffer"
    );
    assert!(
        calls().is_empty(),
        "the driver never saw them: {:?}",
        calls()
    );
    sys::ioctl_bad_pointer(fd, T_IO).unwrap();
    assert_eq!(
        ioctls().len(),
        1,
        "IOC_VOID copies nothing: reaches the driver"
    );
}
