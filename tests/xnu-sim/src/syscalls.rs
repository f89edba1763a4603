//! The user side: the system calls a test makes, with XNU's semantics above the driver
//! (specfs, vfs_vnops.c, kern_descrip.c, sys_generic.c), in Darwin numbers.

use crate::abi::*;
use crate::devices;
use crate::errno::Errno;
use crate::fasthash::AddrMap;
use crate::proc::{self, Pid};
use crate::select::SelectCall;
use crate::uio::SimUio;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `O_RDONLY`.
pub const O_RDONLY: i32 = 0;
/// `O_WRONLY`.
pub const O_WRONLY: i32 = 1;
/// `O_RDWR`.
pub const O_RDWR: i32 = 2;
/// `O_NONBLOCK` (`FNONBLOCK`).
pub const O_NONBLOCK: i32 = 0x4;
/// `O_ASYNC` (`FASYNC`).
pub const O_ASYNC: i32 = 0x40;

const IOC_VOID: u32 = 0x2000_0000;
const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;
const FIONBIO: u32 = 0x8004_667e;
const FIOASYNC: u32 = 0x8004_667d;
const FIOSETOWN: u32 = 0x8004_667c;
const FIOGETOWN: u32 = 0x4004_667b;
const TIOCSPGRP: u32 = 0x8004_7476;
const TIOCGPGRP: u32 = 0x4004_7477;

/// A file descriptor of the calling simulated process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fd(pub i32);

struct OpenFile {
    dev: dev_t,
    flags: AtomicI32,
    /// `revoke(2)` closed the device under this descriptor (deadfs from then on: its close
    /// no longer reaches the driver).
    revoked: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Files {
    fds: AddrMap<(Pid, i32), Arc<OpenFile>>,
    next_fd: AddrMap<Pid, i32>,
    /// Open files per device (specfs usecount): d_close runs when it drops to 0.
    opens: AddrMap<dev_t, usize>,
}

static FILES: Mutex<Option<Files>> = Mutex::new(None);

fn files<R>(f: impl FnOnce(&mut Files) -> R) -> R {
    f(FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Files::default))
}

fn file(fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    files(|f| f.fds.get(&(proc::current_pid(), fd.0)).cloned()).ok_or(Errno::EBADF)
}

/// The driver's entry table for a device, or a panic: calling through a removed cdevsw is a
/// use-after-unload.
fn driver(dev: dev_t) -> cdevsw {
    devices::entry(major(dev)).unwrap_or_else(|| {
        panic!(
            "call through the cdevsw entry of major {} after it was removed (kext unloaded?)",
            major(dev)
        )
    })
}

fn current_proc_handle() -> proc_t {
    (proc::current_pid() as isize + 1) as proc_t
}

/// `open(2)` of a devfs path (`/dev/NAME`).
pub fn open(path: &str, flags: i32) -> Result<Fd, Errno> {
    let name = path.strip_prefix("/dev/").ok_or(Errno::ENOENT)?;
    let node = devices::node(name).ok_or(Errno::ENOENT)?;
    let uid = proc::uid_of(proc::current_pid());
    if uid != 0 {
        let bits = if node.uid == uid {
            (node.perms >> 6) & 7
        } else {
            node.perms & 7
        };
        let want_read = flags & 3 != O_WRONLY;
        let want_write = flags & 3 != O_RDONLY;
        if (want_read && bits & 4 == 0) || (want_write && bits & 2 == 0) {
            return Err(Errno::EACCES);
        }
    }
    let entry = devices::entry(major(node.dev)).ok_or(Errno::ENXIO)?;
    let d_open = entry.d_open.expect("d_open");
    // SAFETY: the entry point the loaded driver registered in its cdevsw, called as specfs
    // calls it, for a node of its own major.
    let rc =
        crate::kext::in_kext(|| unsafe { d_open(node.dev, flags, S_IFCHR, current_proc_handle()) });
    if rc != 0 {
        return Err(Errno(rc));
    }
    let pid = proc::current_pid();
    Ok(files(|f| {
        let next = f.next_fd.entry(pid).or_insert(3);
        let fd = *next;
        *next += 1;
        f.fds.insert(
            (pid, fd),
            Arc::new(OpenFile {
                dev: node.dev,
                flags: AtomicI32::new(flags),
                revoked: std::sync::atomic::AtomicBool::new(false),
            }),
        );
        *f.opens.entry(node.dev).or_default() += 1;
        Fd(fd)
    }))
}

/// `dup(2)`: the same open file, not a second open.
pub fn dup(fd: Fd) -> Result<Fd, Errno> {
    let of = file(fd)?;
    let pid = proc::current_pid();
    Ok(files(|f| {
        let next = f.next_fd.entry(pid).or_insert(3);
        let new = *next;
        *next += 1;
        f.fds.insert((pid, new), of);
        Fd(new)
    }))
}

/// `fork(2)`, as far as descriptors go: a new process with the caller's uid, in the caller's
/// process group, whose descriptor table shares every open file of the caller (not a second
/// open). Returns the child's pid.
pub fn fork() -> Pid {
    let parent = proc::current_pid();
    let child = proc::spawn_process(proc::uid_of(parent));
    if let Some(pgid) = proc::pgid_of(parent) {
        proc::set_pgid(child, pgid);
    }
    files(|f| {
        let shared: Vec<(i32, Arc<OpenFile>)> = f
            .fds
            .iter()
            .filter(|((pid, _), _)| *pid == parent)
            .map(|((_, fd), of)| (*fd, of.clone()))
            .collect();
        for (fd, of) in shared {
            f.fds.insert((child, fd), of);
        }
        if let Some(&next) = f.next_fd.get(&parent) {
            f.next_fd.insert(child, next);
        }
    });
    child
}

/// `close(2)`: `d_close` on the last close of the device.
pub fn close(fd: Fd) -> Result<(), Errno> {
    let pid = proc::current_pid();
    let last = files(|f| {
        let of = f.fds.remove(&(pid, fd.0)).ok_or(Errno::EBADF)?;
        // Another descriptor (dup, fork) still shares this open file, or it was revoked.
        // Descriptors, not references: a thread inside read or select on this descriptor
        // holds a reference too, and it is this close that must release it (RD-6).
        if f.fds.values().any(|other| Arc::ptr_eq(other, &of)) || of.revoked.load(Ordering::SeqCst)
        {
            return Ok(None);
        }
        let n = f.opens.get_mut(&of.dev).expect("open count");
        *n -= 1;
        Ok(if *n == 0 {
            f.opens.remove(&of.dev);
            Some(of)
        } else {
            None
        })
    })?;
    if let Some(of) = last {
        let d_close = driver(of.dev).d_close.expect("d_close");
        let flags = of.flags.load(Ordering::SeqCst);
        // SAFETY: as in `open`: the driver's registered d_close, on the last close.
        let rc = crate::kext::in_kext(|| unsafe {
            d_close(of.dev, flags, S_IFCHR, current_proc_handle())
        });
        if rc != 0 {
            return Err(Errno(rc));
        }
    }
    Ok(())
}

/// `revoke(2)` of a device path (`/dev/NAME`): `d_close` runs now, even while descriptors are
/// open or threads are inside the driver through them (specfs `spec_close` with `FREVOKE`).
/// Those descriptors stay valid; their later close does not reach the driver again.
pub fn revoke(path: &str) -> Result<(), Errno> {
    let name = path.strip_prefix("/dev/").ok_or(Errno::ENOENT)?;
    let node = devices::node(name).ok_or(Errno::ENOENT)?;
    let open = files(|f| {
        let mut any = false;
        for of in f.fds.values().filter(|of| of.dev == node.dev) {
            any |= !of.revoked.swap(true, Ordering::SeqCst);
        }
        f.opens.remove(&node.dev);
        any
    });
    if !open {
        return Ok(());
    }
    let d_close = driver(node.dev).d_close.expect("d_close");
    // SAFETY: as in `open`: the driver's registered d_close.
    let rc = crate::kext::in_kext(|| unsafe {
        d_close(node.dev, FREAD | FWRITE, S_IFCHR, current_proc_handle())
    });
    crate::errno::check(rc)
}

fn rdwr(fd: Fd, iovs: Vec<(*mut u8, usize)>, rw: c_int) -> Result<usize, Errno> {
    let of = file(fd)?;
    loop {
        let entry = driver(of.dev);
        let f = if rw == UIO_READ {
            entry.d_read
        } else {
            entry.d_write
        }
        .expect("d_read/d_write");
        let mut uio = SimUio::new(iovs.clone(), rw);
        let ioflag = if of.flags.load(Ordering::SeqCst) & O_NONBLOCK != 0 {
            IO_NDELAY
        } else {
            0
        };
        // SAFETY: the driver's registered d_read/d_write, given a `SimUio` (what every uio_t
        // of the simulator is) that lives, exclusively lent, until the call returns.
        let rc =
            crate::kext::in_kext(|| unsafe { f(of.dev, (&mut uio as *mut SimUio).cast(), ioflag) });
        let moved = uio.moved;
        match Errno(rc) {
            Errno(0) => return Ok(moved),
            e if moved > 0
                && (e == Errno::EINTR || e == Errno::ERESTART || e == Errno::EWOULDBLOCK) =>
            {
                if e != Errno::EWOULDBLOCK {
                    proc::take_pending_signal();
                }
                return Ok(moved);
            }
            Errno::ERESTART => {
                proc::take_pending_signal(); // the handler runs, then the call is re-issued
                continue;
            }
            Errno::EINTR => {
                proc::take_pending_signal();
                return Err(Errno::EINTR);
            }
            e => return Err(e),
        }
    }
}

/// `read(2)`.
pub fn read(fd: Fd, buf: &mut [u8]) -> Result<usize, Errno> {
    rdwr(fd, vec![(buf.as_mut_ptr(), buf.len())], UIO_READ)
}

/// `readv(2)`: one request over several buffers.
pub fn readv(fd: Fd, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
    rdwr(
        fd,
        bufs.iter_mut().map(|b| (b.as_mut_ptr(), b.len())).collect(),
        UIO_READ,
    )
}

/// `write(2)`.
pub fn write(fd: Fd, buf: &[u8]) -> Result<usize, Errno> {
    rdwr(fd, vec![(buf.as_ptr().cast_mut(), buf.len())], UIO_WRITE)
}

/// `writev(2)`.
pub fn writev(fd: Fd, bufs: &[&[u8]]) -> Result<usize, Errno> {
    rdwr(
        fd,
        bufs.iter()
            .map(|b| (b.as_ptr().cast_mut(), b.len()))
            .collect(),
        UIO_WRITE,
    )
}

/// The argument size of an ioctl command (BSD encoding).
pub fn ioctl_arg_len(cmd: u32) -> usize {
    ((cmd >> 16) & 0x1fff) as usize
}

fn driver_ioctl(of: &OpenFile, cmd: u32, kbuf: &mut [u8]) -> Result<(), Errno> {
    let d_ioctl = driver(of.dev).d_ioctl.expect("d_ioctl");
    let fflag = of.flags.load(Ordering::SeqCst) | FREAD | FWRITE;
    // SAFETY: the driver's registered d_ioctl, given a kernel buffer of the size the
    // command's BSD encoding declares (`kbuf`, owned by the caller for the whole call).
    let rc = crate::kext::in_kext(|| unsafe {
        d_ioctl(
            of.dev,
            cmd as std::ffi::c_ulong,
            kbuf.as_mut_ptr().cast(),
            fflag,
            current_proc_handle(),
        )
    });
    crate::errno::check(rc)
}

/// `ioctl(2)` with XNU's handling above the driver: the argument is copied in (`IOC_IN`) into
/// a kernel buffer sized from the command, zeroed for `IOC_OUT` and copied out only on
/// success; `IOC_VOID` passes the raw value (the first 4 bytes of `arg`, if any).
/// `FIONBIO`/`FIOASYNC` update the descriptor's flags first; `FIOSETOWN`/`FIOGETOWN` are
/// rewritten to `TIOCSPGRP`/`TIOCGPGRP` (xnu bsd/kern/sys_generic.c).
pub fn ioctl(fd: Fd, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let of = file(fd)?;
    let len = ioctl_arg_len(cmd);
    if cmd & (IOC_IN | IOC_OUT) != 0 && arg.len() < len {
        return Err(Errno::EFAULT);
    }
    match cmd {
        FIONBIO | FIOASYNC => {
            let bit = if cmd == FIONBIO { O_NONBLOCK } else { O_ASYNC };
            if i32::from_ne_bytes(arg[..4].try_into().unwrap()) != 0 {
                of.flags.fetch_or(bit, Ordering::SeqCst);
            } else {
                of.flags.fetch_and(!bit, Ordering::SeqCst);
            }
        }
        FIOSETOWN => {
            let mut v = i32::from_ne_bytes(arg[..4].try_into().unwrap());
            if v > 0 {
                v = proc::pgid_of(v).ok_or(Errno::ESRCH)?;
            } else {
                // XNU negates the int in C (bsd/kern/sys_generic.c, FIOSETOWN): INT_MIN stays
                // INT_MIN, as wrapping gives.
                v = v.wrapping_neg();
            }
            let mut kbuf = v.to_ne_bytes();
            return driver_ioctl(&of, TIOCSPGRP, &mut kbuf);
        }
        FIOGETOWN => {
            let mut kbuf = [0u8; 4];
            driver_ioctl(&of, TIOCGPGRP, &mut kbuf)?;
            arg[..4].copy_from_slice(&i32::from_ne_bytes(kbuf).wrapping_neg().to_ne_bytes());
            return Ok(());
        }
        _ => {}
    }
    ioctl_direct_file(&of, cmd, arg)
}

fn ioctl_direct_file(of: &OpenFile, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let len = ioctl_arg_len(cmd);
    let mut kbuf = vec![0u8; len.max(8)];
    if cmd & IOC_IN != 0 {
        kbuf[..len].copy_from_slice(&arg[..len]);
    } else if cmd & IOC_VOID != 0 && arg.len() >= 4 {
        kbuf[..4].copy_from_slice(&arg[..4]);
    }
    driver_ioctl(of, cmd, &mut kbuf)?;
    if cmd & IOC_OUT != 0 {
        arg[..len].copy_from_slice(&kbuf[..len]);
    }
    Ok(())
}

/// An ioctl handed to the driver unchanged (an in-kernel caller: no owner rewriting, no
/// descriptor flag update).
pub fn ioctl_direct(fd: Fd, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    let of = file(fd)?;
    if cmd & (IOC_IN | IOC_OUT) != 0 && arg.len() < ioctl_arg_len(cmd) {
        return Err(Errno::EFAULT);
    }
    ioctl_direct_file(&of, cmd, arg)
}

/// An ioctl whose argument pointer is bad: `EFAULT` before the driver when the command
/// copies anything.
pub fn ioctl_bad_pointer(fd: Fd, cmd: u32) -> Result<(), Errno> {
    let of = file(fd)?;
    if cmd & (IOC_IN | IOC_OUT) != 0 && ioctl_arg_len(cmd) > 0 {
        return Err(Errno::EFAULT);
    }
    ioctl_direct_file(&of, cmd, &mut [])
}

/// An `int` ioctl: sends `value` (for `IOC_IN`) and returns the `int` the driver wrote (for
/// `IOC_OUT`).
pub fn ioctl_int(fd: Fd, cmd: u32, value: i32) -> Result<i32, Errno> {
    let mut arg = value.to_ne_bytes();
    ioctl(fd, cmd, &mut arg)?;
    Ok(i32::from_ne_bytes(arg))
}

/// `fcntl(F_GETFL)`.
pub fn fcntl_getfl(fd: Fd) -> Result<i32, Errno> {
    Ok(file(fd)?.flags.load(Ordering::SeqCst) & (O_NONBLOCK | O_ASYNC | 3))
}

/// `fcntl(F_SETFL, flags)`: updates the flags, then `FIONBIO(flags & O_NONBLOCK)` and
/// `FIOASYNC(flags & O_ASYNC)` on every call; if `FIOASYNC` fails, clears `FNONBLOCK`, sends
/// `FIONBIO(0)` and fails (xnu bsd/kern/kern_descrip.c).
pub fn fcntl_setfl(fd: Fd, flags: i32) -> Result<(), Errno> {
    let of = file(fd)?;
    let keep = of.flags.load(Ordering::SeqCst) & !(O_NONBLOCK | O_ASYNC);
    of.flags
        .store(keep | (flags & (O_NONBLOCK | O_ASYNC)), Ordering::SeqCst);
    let mut nbio = (flags & O_NONBLOCK).to_ne_bytes();
    driver_ioctl(&of, FIONBIO, &mut nbio)?;
    let mut asyncio = (flags & O_ASYNC).to_ne_bytes();
    if let Err(e) = driver_ioctl(&of, FIOASYNC, &mut asyncio) {
        of.flags.fetch_and(!O_NONBLOCK, Ordering::SeqCst);
        let _ = driver_ioctl(&of, FIONBIO, &mut 0i32.to_ne_bytes());
        return Err(e);
    }
    Ok(())
}

/// `fcntl(F_SETOWN, p)`: `TIOCSPGRP` with the process group of `p` (p > 0, `ESRCH` if it does
/// not exist) or `-p`.
pub fn fcntl_setown(fd: Fd, p: i32) -> Result<(), Errno> {
    ioctl(fd, FIOSETOWN, &mut p.to_ne_bytes())
}

/// `fcntl(F_GETOWN)`: `TIOCGPGRP`, negated.
pub fn fcntl_getown(fd: Fd) -> Result<i32, Errno> {
    let mut arg = [0u8; 4];
    ioctl(fd, FIOGETOWN, &mut arg)?;
    Ok(i32::from_ne_bytes(arg))
}

/// `select(2)` (bsd/kern/sys_generic.c `select_nocancel`, `selprocess`, `selscan`): a first
/// pass calls `d_select` for each descriptor with a wait-queue link to record; if nothing is
/// ready it sleeps until a `selwakeup`, the timeout (`None` = forever, zero = poll) or a signal
/// (`EINTR`); woken, it makes a second pass with a NULL link (`selrecord` records nothing
/// then), and with nothing ready there starts again with a first pass. A timeout ends the call
/// without a second pass. Returns the ready descriptors.
pub fn select(
    reads: &[Fd],
    writes: &[Fd],
    timeout: Option<Duration>,
) -> Result<(Vec<Fd>, Vec<Fd>), Errno> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let call = SelectCall::begin();
    let mut targets = Vec::new();
    for (&fd, which) in reads
        .iter()
        .map(|f| (f, FREAD))
        .chain(writes.iter().map(|f| (f, FWRITE)))
    {
        targets.push((fd, file(fd)?, which));
    }
    let scan = |cookie: *mut c_void| {
        let mut ready = (Vec::new(), Vec::new());
        for (fd, of, which) in &targets {
            let d_select = driver(of.dev).d_select.expect("d_select");
            // SAFETY: the driver's registered d_select, with this select call's cookie as
            // the wait-queue link (or NULL on the second pass), as selscan passes it.
            let rc = crate::kext::in_kext(|| unsafe {
                d_select(of.dev, *which, cookie, current_proc_handle())
            });
            if rc != 0 {
                if *which == FREAD {
                    ready.0.push(*fd)
                } else {
                    ready.1.push(*fd)
                }
            }
        }
        ready
    };
    loop {
        call.rearm();
        let ready = scan(call.cookie());
        if !ready.0.is_empty() || !ready.1.is_empty() {
            return Ok(ready);
        }
        if proc::pending_signal_restarts().is_some() {
            proc::take_pending_signal();
            return Err(Errno::EINTR);
        }
        if !call.wait(deadline) {
            return Ok((Vec::new(), Vec::new())); // timed out: no second pass
        }
        SECOND_PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ready = scan(std::ptr::null_mut());
        if !ready.0.is_empty() || !ready.1.is_empty() {
            return Ok(ready);
        }
    }
}

/// Second passes `select` has made (each with a NULL wait-queue link), for tests.
static SECOND_PASSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many second `select` passes (NULL wait-queue link) have been made.
pub fn select_second_passes() -> u64 {
    SECOND_PASSES.load(std::sync::atomic::Ordering::Relaxed)
}

/// `mmap(2)` of a descriptor (bsd/kern/kern_mman.c `mmap`): a character device answers
/// `ENODEV` before any driver is called (`d_mmap` is never reached).
pub fn mmap(fd: Fd) -> Result<(), Errno> {
    let of = file(fd)?;
    let _ = driver(of.dev); // the device exists; its d_mmap is not called
    Err(Errno::ENODEV)
}
