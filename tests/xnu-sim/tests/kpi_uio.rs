//! uio accessors (xnu bsd/kern/kern_subr.c `uio_rw`, `uio_offset`, `uio_resid`, `uiomove` →
//! `uiomove64`) as a character device's `d_read`/`d_write` sees them: the direction of the
//! request, and an offset and residual count that every `uiomove` advances.

mod common;

use common::testdrv::{cdevsw_add, devfs_make_node};
use common::*;
use std::ffi::{c_char, c_int, c_ulong};
use std::sync::Mutex;
use xnu_sim::abi::*;
use xnu_sim::syscalls::{self as sys, O_RDWR};

extern "C" {
    fn uio_rw(uio: uio_t) -> c_int;
    fn uio_offset(uio: uio_t) -> i64;
    fn copyout(kaddr: *const std::ffi::c_void, udaddr: u64, len: usize) -> c_int;
}

/// What the driver saw of one request: (uio_rw, [(uio_offset, uio_resid)] before the first
/// uiomove and after each one).
type Seen = (c_int, Vec<(i64, i64)>);

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
/// The bytes the last d_write took in.
static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Moves `chunks` through `uio` (from or into `buf`), noting offset and resid around each move.
///
/// # Safety
/// `uio` is the live uio of the current d_read/d_write call; `chunks` add up to at most
/// `buf.len()`.
unsafe fn transfer(uio: uio_t, buf: &mut [u8], chunks: &[usize]) {
    // SAFETY: `uio` is live (the caller's contract); every move stays inside `buf`.
    unsafe {
        let mut seen = vec![(uio_offset(uio), uio_resid(uio))];
        let mut at = 0;
        for &n in chunks {
            assert_eq!(uiomove(buf[at..].as_mut_ptr().cast(), n as c_int, uio), 0);
            at += n;
            seen.push((uio_offset(uio), uio_resid(uio)));
        }
        SEEN.lock().unwrap().push((uio_rw(uio), seen));
    }
}

unsafe extern "C" fn d_open(_d: dev_t, _f: c_int, _t: c_int, _p: proc_t) -> c_int {
    0
}

unsafe extern "C" fn d_close(_d: dev_t, _f: c_int, _t: c_int, _p: proc_t) -> c_int {
    0
}

unsafe extern "C" fn d_read(_d: dev_t, uio: uio_t, _ioflag: c_int) -> c_int {
    let mut src = *b"abcdefghij";
    // SAFETY: the live uio of this call; 4 + 3 bytes fit `src`.
    unsafe { transfer(uio, &mut src, &[4, 3]) };
    0
}

unsafe extern "C" fn d_write(_d: dev_t, uio: uio_t, _ioflag: c_int) -> c_int {
    let mut dst = [0u8; 16];
    // SAFETY: the live uio of this call; 2 + 5 bytes fit `dst`.
    unsafe { transfer(uio, &mut dst, &[2, 5]) };
    *WRITTEN.lock().unwrap() = dst[..7].to_vec();
    0
}

unsafe extern "C" fn d_ioctl(
    _d: dev_t,
    _c: c_ulong,
    _a: *mut c_char,
    _f: c_int,
    _p: proc_t,
) -> c_int {
    0
}

struct SyncCdevsw(cdevsw);
// SAFETY: function pointers and NULLs only, never written.
unsafe impl Sync for SyncCdevsw {}

static CDEVSW: SyncCdevsw = SyncCdevsw(cdevsw {
    d_open: Some(d_open),
    d_close: Some(d_close),
    d_read: Some(d_read),
    d_write: Some(d_write),
    d_ioctl: Some(d_ioctl),
    d_stop: None,
    d_reset: None,
    d_ttys: std::ptr::null_mut(),
    d_select: None,
    d_mmap: None,
    d_strategy: None,
    d_reserved_1: std::ptr::null_mut(),
    d_reserved_2: std::ptr::null_mut(),
    d_type: 0,
});

#[test]
fn uio_rw_and_uio_offset_follow_the_request() {
    boot();
    xnu_sim::kext::load_test_driver();
    // SAFETY: a static cdevsw; a NUL-terminated format without arguments.
    unsafe {
        let major = cdevsw_add(-24, &CDEVSW.0);
        assert!(major >= 24);
        let node = devfs_make_node(
            makedev(major, 0),
            DEVFS_CHAR,
            0,
            0,
            0o666,
            c"uiotest".as_ptr(),
        );
        assert!(!node.is_null());
    }
    let fd = sys::open("/dev/uiotest", O_RDWR).expect("open");

    let mut buf = [0u8; 10];
    assert_eq!(
        sys::read(fd, &mut buf),
        Ok(7),
        "the driver moved 4 + 3 bytes"
    );
    assert_eq!(&buf[..7], b"abcdefg");
    assert_eq!(buf[7..], [0, 0, 0], "bytes not moved stay untouched");

    assert_eq!(
        sys::write(fd, b"0123456789"),
        Ok(7),
        "the driver took 2 + 5 bytes"
    );
    assert_eq!(*WRITTEN.lock().unwrap(), b"0123456".to_vec());

    // readv across two iovecs: one uiomove spans both.
    let (mut a, mut b) = ([0u8; 3], [0u8; 5]);
    assert_eq!(sys::readv(fd, &mut [&mut a, &mut b]), Ok(7));
    assert_eq!((&a, &b[..4]), (b"abc", &b"defg"[..]));

    // Offsets relative to where each request started: XNU's vn_read/vn_write
    // (bsd/vfs/vfs_vnops.c) start a request at the open file's offset, which the first
    // request on a fresh open finds at 0.
    let seen: Vec<(c_int, Vec<(i64, i64)>)> = SEEN
        .lock()
        .unwrap()
        .iter()
        .map(|(rw, s)| (*rw, s.iter().map(|&(o, r)| (o - s[0].0, r)).collect()))
        .collect();
    assert_eq!(
        SEEN.lock().unwrap()[0].1[0].0,
        0,
        "a fresh open starts at offset 0"
    );
    assert_eq!(
        seen,
        vec![
            (UIO_READ, vec![(0, 10), (4, 6), (7, 3)]),
            (UIO_WRITE, vec![(0, 10), (2, 8), (7, 3)]),
            (UIO_READ, vec![(0, 8), (4, 4), (7, 1)]),
        ],
        "uio_rw is the direction; every uiomove advances uio_offset and lowers uio_resid"
    );
    sys::close(fd).unwrap();
}

/// `copyout` (osfmk/x86_64/copyio.c `copyio`): the bytes land in user memory; page zero, a
/// wrapping range, a range running past the lent memory and memory no longer lent are
/// `EFAULT`.
#[test]
fn copyout_writes_user_memory_and_faults_elsewhere() {
    boot();
    let src = [1u8, 2, 3, 4];
    let mut dst = [0u8; 4];
    let lent = xnu_sim::uio::lend_user_memory(&mut dst);
    let at = lent.address();
    // SAFETY: `src` is readable for four bytes; every destination is checked by copyout.
    unsafe {
        assert_eq!(copyout(src.as_ptr().cast(), at, 4), 0);
        assert_eq!(
            copyout(src.as_ptr().cast(), at + 1, 4),
            xnu_sim::Errno::EFAULT.0
        );
        assert_eq!(copyout(src.as_ptr().cast(), 0, 4), xnu_sim::Errno::EFAULT.0);
        assert_eq!(
            copyout(src.as_ptr().cast(), u64::MAX - 1, 4),
            xnu_sim::Errno::EFAULT.0
        );
    }
    drop(lent);
    // SAFETY: as above.
    let after = unsafe { copyout(src.as_ptr().cast(), at, 4) };
    assert_eq!(after, xnu_sim::Errno::EFAULT.0, "no longer lent");
    assert_eq!(dst, src);
}
