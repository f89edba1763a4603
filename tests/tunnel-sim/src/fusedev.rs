//! The simulated `/dev/tunN` (or `/dev/tapN`) as real files for other processes: a FUSE
//! directory holding one regular file per unit (docs/xnu-sim.md 6.3). CUSE is not available on
//! these machines.
//!
//! - OPEN opens the simulated device (exclusive, U-3) and answers
//!   `FOPEN_DIRECT_IO | FOPEN_STREAM`, so reads and writes go straight to the server with the
//!   caller's size, and a blocked `read()` does not hold the file-position lock a `write()`
//!   on the same descriptor needs.
//! - READ without `O_NONBLOCK` is parked: a per-open worker (a simulated thread) does the
//!   blocking read in the driver and answers later. With `O_NONBLOCK` the read is answered at
//!   once (`EAGAIN` when the queue is empty, RD-4). One reply is one packet: a short reply ends
//!   the `read()`; a smaller buffer truncates, as on BSD (RD-3).
//! - POLL answers readiness from the driver's `d_select`; when nothing is ready it keeps the
//!   kernel's poll handle and a watcher notifies it once the driver says readable.
//! - Errno values are translated Darwin → Linux ([`crate::errno_map`]).
//! - What FUSE cannot carry: `FIONBIO`/`FIOASYNC` never reach a FUSE server (Linux's VFS
//!   handles them), so the server watches the `O_NONBLOCK`/`O_ASYNC` bits that arrive with
//!   every READ and WRITE and synthesises `FIONBIO`/`FIOASYNC` to the driver when they change.
//!   SIGIO cannot be delivered to a Linux process from here. Restricted FUSE ioctls copy by the
//!   Linux direction bits, which are BSD's swapped: clients send the Linux encoding
//!   ([`crate::ioctl_map::bsd_to_linux`]) and the server maps it back. The node is `S_IFREG`,
//!   not a character device.

use crate::errno_map::darwin_to_linux;
use crate::ioctl_map::linux_to_bsd;
use fuser::{
    consts, FileAttr, FileType, Filesystem, KernelConfig, MountOption, PollHandle, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyPoll,
    ReplyWrite, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use xnu_sim::{proc, syscalls, Errno, Fd};

const ROOT: u64 = 1;
const TTL: Duration = Duration::from_secs(1);
/// BSD `FIONBIO` (`_IOW('f', 126, int)`).
pub const BSD_FIONBIO: u32 = 0x8004_667e;
/// BSD `FIOASYNC` (`_IOW('f', 125, int)`).
pub const BSD_FIOASYNC: u32 = 0x8004_667d;
/// The flags OPEN answers with (0x11).
pub const OPEN_FLAGS: u32 = consts::FOPEN_DIRECT_IO | consts::FOPEN_STREAM;
/// `FUSE_POLL_SCHEDULE_NOTIFY`.
const POLL_SCHEDULE_NOTIFY: u32 = 1;

/// Called after each successful open of unit N (the host configures `tunN`/`tapN` there).
pub type OnOpen = Arc<dyn Fn(usize) + Send + Sync>;

struct Parked {
    size: u32,
    reply: ReplyData,
}

struct Handle {
    fd: Fd,
    /// The `O_NONBLOCK | O_ASYNC` bits (Linux values) last passed on to the driver.
    flags: Mutex<i32>,
    work: Mutex<Option<mpsc::Sender<Parked>>>,
    worker: Mutex<Option<proc::SimThread<()>>>,
    pollers: Mutex<Vec<PollHandle>>,
    poll_cv: Condvar,
    closing: AtomicBool,
    watcher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

type Handles = Arc<Mutex<HashMap<u64, Arc<Handle>>>>;

/// The filesystem: `tun0` … `tun{units-1}` (or `tap…`) in the root directory.
pub struct TunFs {
    /// `tun` or `tap`: the device nodes served, `/dev/<kind>N`.
    kind: &'static str,
    units: usize,
    handles: Handles,
    next_fh: u64,
    on_open: OnOpen,
}

/// The open files of a mounted [`TunFs`], for the host's shutdown: a client's last `close()`
/// reaches the server as an asynchronous RELEASE, which may still be in flight at unmount.
#[derive(Clone)]
pub struct OpenFiles(Handles);

impl OpenFiles {
    /// How many device files are open.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Closes whatever is still open (after the unmount: no RELEASE will come any more).
    pub fn close_all(&self) {
        let all: Vec<_> = self.0.lock().unwrap().drain().map(|(_, h)| h).collect();
        for h in all {
            shutdown(&h);
        }
    }
}

fn attr(ino: u64) -> FileAttr {
    let now = SystemTime::now();
    let dir = ino == ROOT;
    FileAttr {
        ino,
        size: 0,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: UNIX_EPOCH,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o600 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 65536,
        flags: 0,
    }
}

/// Darwin open flags for Linux `flags`.
pub fn sim_open_flags(flags: i32) -> i32 {
    let mut f = flags & libc::O_ACCMODE; // 0, 1, 2 on both
    if flags & libc::O_NONBLOCK != 0 {
        f |= syscalls::O_NONBLOCK;
    }
    f
}

impl TunFs {
    /// A filesystem for `units` units of `kind` (`tun` or `tap`).
    pub fn new(kind: &'static str, units: usize, on_open: OnOpen) -> TunFs {
        TunFs {
            kind,
            units,
            handles: Arc::new(Mutex::new(HashMap::new())),
            next_fh: 1,
            on_open,
        }
    }

    fn unit_of(&self, ino: u64) -> Option<usize> {
        let u = ino.checked_sub(2)? as usize;
        (u < self.units).then_some(u)
    }

    fn handle(&self, fh: u64) -> Option<Arc<Handle>> {
        self.handles.lock().unwrap().get(&fh).cloned()
    }
}

/// Passes a change of the `O_NONBLOCK`/`O_ASYNC` bits on to the driver as the `FIONBIO` /
/// `FIOASYNC` the VFS kept from us (the syscall layer also updates the descriptor's flags).
fn sync_flags(h: &Handle, linux_flags: i32) {
    let want = linux_flags & (libc::O_NONBLOCK | libc::O_ASYNC);
    let mut last = h.flags.lock().unwrap();
    let changed = want ^ *last;
    if changed & libc::O_NONBLOCK != 0 {
        let on = i32::from(want & libc::O_NONBLOCK != 0);
        let _ = syscalls::ioctl(h.fd, BSD_FIONBIO, &mut on.to_ne_bytes());
    }
    if changed & libc::O_ASYNC != 0 {
        let on = i32::from(want & libc::O_ASYNC != 0);
        let _ = syscalls::ioctl(h.fd, BSD_FIOASYNC, &mut on.to_ne_bytes());
    }
    *last = want;
}

fn reply_read(reply: ReplyData, r: Result<Vec<u8>, Errno>) {
    match r {
        Ok(data) => reply.data(&data),
        Err(e) => reply.error(darwin_to_linux(e.0)),
    }
}

fn sim_read(fd: Fd, size: u32) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; size as usize];
    let n = syscalls::read(fd, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The worker that answers parked (blocking) reads in order.
fn worker(h: Arc<Handle>, rx: mpsc::Receiver<Parked>) {
    for p in rx {
        loop {
            match sim_read(h.fd, p.size) {
                // O_NONBLOCK was switched on by a later request: wait for data instead.
                Err(Errno::EAGAIN) if !h.closing.load(Ordering::SeqCst) => {
                    let _ = syscalls::select(&[h.fd], &[], Some(Duration::from_millis(100)));
                }
                r => {
                    reply_read(p.reply, r);
                    break;
                }
            }
        }
    }
}

/// Notifies kept poll handles once the device is readable.
fn watcher(h: Arc<Handle>) {
    while !h.closing.load(Ordering::SeqCst) {
        {
            let pollers = h.pollers.lock().unwrap();
            if pollers.is_empty() {
                let _ = h.poll_cv.wait_timeout(pollers, Duration::from_millis(100));
                continue;
            }
        }
        if let Ok((r, _)) = syscalls::select(&[h.fd], &[], Some(Duration::from_millis(100))) {
            if !r.is_empty() {
                for ph in std::mem::take(&mut *h.pollers.lock().unwrap()) {
                    let _ = ph.notify();
                }
            }
        }
    }
}

/// Ends one open file: no more parked reads or poll notifications, the worker interrupted
/// if it is asleep in the driver (bounded), then the simulated device closed.
fn shutdown(h: &Handle) {
    h.closing.store(true, Ordering::SeqCst);
    h.poll_cv.notify_all();
    drop(h.work.lock().unwrap().take());
    if let Some(w) = h.watcher.lock().unwrap().take() {
        let _ = w.join();
    }
    if let Some(w) = h.worker.lock().unwrap().take() {
        for _ in 0..500 {
            if w.is_finished() {
                break;
            }
            proc::kill_thread(w.tid(), 15);
            std::thread::sleep(Duration::from_millis(2));
        }
        if w.is_finished() {
            w.join();
        }
    }
    let _ = syscalls::close(h.fd);
}

impl Filesystem for TunFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        // At least MTU + 4 (AF-header mode); 128 KiB as measured in docs/xnu-sim.md 6.3.
        let _ = config.set_max_write(128 * 1024);
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let unit = name
            .to_str()
            .and_then(|n| n.strip_prefix(self.kind))
            .and_then(|n| n.parse::<usize>().ok());
        match unit {
            Some(u) if parent == ROOT && u < self.units => {
                reply.entry(&TTL, &attr(u as u64 + 2), 0)
            }
            _ => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if ino == ROOT || self.unit_of(ino).is_some() {
            reply.attr(&TTL, &attr(ino));
        } else {
            reply.error(libc::ENOENT);
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        if ino != ROOT {
            return reply.error(libc::ENOTDIR);
        }
        let mut entries = vec![
            (ROOT, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        for u in 0..self.units {
            entries.push((
                u as u64 + 2,
                FileType::RegularFile,
                format!("{}{u}", self.kind),
            ));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(ino, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let Some(unit) = self.unit_of(ino) else {
            return reply.error(libc::EISDIR);
        };
        let path = format!("/dev/{}{unit}", self.kind);
        let fd = match syscalls::open(&path, sim_open_flags(flags)) {
            Ok(fd) => fd,
            Err(e) => return reply.error(darwin_to_linux(e.0)),
        };
        (self.on_open)(unit);
        let (tx, rx) = mpsc::channel();
        let h = Arc::new(Handle {
            fd,
            flags: Mutex::new(flags & libc::O_NONBLOCK),
            work: Mutex::new(Some(tx)),
            worker: Mutex::new(None),
            pollers: Mutex::new(Vec::new()),
            poll_cv: Condvar::new(),
            closing: AtomicBool::new(false),
            watcher: Mutex::new(None),
        });
        let w = Arc::clone(&h);
        *h.worker.lock().unwrap() = Some(proc::spawn_thread(proc::INIT_PID, move || worker(w, rx)));
        let w = Arc::clone(&h);
        *h.watcher.lock().unwrap() = Some(std::thread::spawn(move || watcher(w)));
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.lock().unwrap().insert(fh, h);
        reply.opened(fh, OPEN_FLAGS);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _offset: i64,
        size: u32,
        flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        sync_flags(&h, flags);
        if flags & libc::O_NONBLOCK != 0 {
            return reply_read(reply, sim_read(h.fd, size));
        }
        let parked = Parked { size, reply };
        let tx = h.work.lock().unwrap().clone();
        let sent = match tx {
            Some(tx) => tx.send(parked).map_err(|mpsc::SendError(p)| p),
            None => Err(parked),
        };
        if let Err(p) = sent {
            p.reply.error(libc::EBADF);
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _offset: i64,
        data: &[u8],
        _write_flags: u32,
        flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        sync_flags(&h, flags);
        match syscalls::write(h.fd, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(darwin_to_linux(e.0)),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        shutdown(&h);
        // Only now: OpenFiles::count() reaching 0 means the simulated device is closed.
        self.handles.lock().unwrap().remove(&fh);
        reply.ok();
    }

    fn ioctl(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: u32,
        cmd: u32,
        in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        let Some(bsd) = linux_to_bsd(cmd) else {
            return reply.error(libc::ENOTTY);
        };
        let len = syscalls::ioctl_arg_len(bsd);
        let mut arg = vec![0u8; len.max(4)];
        let n = in_data.len().min(arg.len());
        arg[..n].copy_from_slice(&in_data[..n]);
        match syscalls::ioctl(h.fd, bsd, &mut arg) {
            Ok(()) => reply.ioctl(0, &arg[..(out_size as usize).min(len)]),
            Err(e) => reply.error(darwin_to_linux(e.0)),
        }
    }

    fn poll(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        ph: PollHandle,
        _events: u32,
        flags: u32,
        reply: ReplyPoll,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        let readable = matches!(
            syscalls::select(&[h.fd], &[], Some(Duration::ZERO)),
            Ok((r, _)) if !r.is_empty()
        );
        let mut revents = (libc::POLLOUT | libc::POLLWRNORM) as u32;
        if readable {
            revents |= (libc::POLLIN | libc::POLLRDNORM) as u32;
        } else if flags & POLL_SCHEDULE_NOTIFY != 0 {
            h.pollers.lock().unwrap().push(ph);
            h.poll_cv.notify_all();
        }
        reply.poll(revents);
    }
}

/// Mounts the filesystem of `/dev/tunN` at `dir` and serves it on a background thread until
/// the returned session is dropped (which unmounts); then [`OpenFiles::close_all`] closes what
/// is left.
pub fn mount(
    dir: &Path,
    units: usize,
    on_open: OnOpen,
) -> std::io::Result<(fuser::BackgroundSession, OpenFiles)> {
    mount_kind(dir, "tun", units, on_open)
}

/// As [`mount`], for the units of `kind`: `tun` or `tap` (files `tap0`, `tap1`, …).
pub fn mount_kind(
    dir: &Path,
    kind: &'static str,
    units: usize,
    on_open: OnOpen,
) -> std::io::Result<(fuser::BackgroundSession, OpenFiles)> {
    let fs = TunFs::new(kind, units, on_open);
    let open = OpenFiles(Arc::clone(&fs.handles));
    let session = fuser::spawn_mount2(
        fs,
        dir,
        &[
            MountOption::FSName("tunnel-sim".to_string()),
            MountOption::NoAtime,
        ],
    )?;
    Ok((session, open))
}

/// Whether FUSE can be used here (`/dev/fuse` openable).
pub fn available() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(|_| ())
        .map_err(|e| format!("/dev/fuse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_answers_direct_io_and_stream() {
        assert_eq!(OPEN_FLAGS, 0x11);
    }

    #[test]
    fn linux_open_flags_become_darwin_ones() {
        assert_eq!(sim_open_flags(libc::O_RDWR), syscalls::O_RDWR);
        assert_eq!(
            sim_open_flags(libc::O_RDWR | libc::O_NONBLOCK),
            syscalls::O_RDWR | syscalls::O_NONBLOCK
        );
        assert_eq!(
            sim_open_flags(libc::O_RDONLY | libc::O_CLOEXEC),
            syscalls::O_RDONLY
        );
    }
}
