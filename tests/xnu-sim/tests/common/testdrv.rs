//! A small TEST driver for the device-plumbing tests: a static `cdevsw` whose entry points
//! record every call (with its arguments) and return scripted results. It is registered
//! straight through the KPI (`cdevsw_add`, `devfs_make_node`), with no kmod_info:
//! `xnu_sim::kext::load_test_driver()` lets the simulator call into it.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_ulong, c_void};
use std::sync::{LazyLock, Mutex};
use xnu_sim::abi::*;

/// One call into the test driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Open {
        dev: dev_t,
        flags: i32,
        devtype: i32,
    },
    Close {
        dev: dev_t,
        flags: i32,
    },
    Read {
        dev: dev_t,
        ioflag: i32,
        resid: i64,
    },
    Write {
        dev: dev_t,
        ioflag: i32,
        resid: i64,
    },
    /// `data` holds the kernel buffer as the driver found it (at least 4 bytes).
    Ioctl {
        dev: dev_t,
        cmd: u32,
        data: Vec<u8>,
        fflag: i32,
    },
    Select {
        dev: dev_t,
        which: i32,
        /// The wait-queue link was NULL (the second pass of a select).
        null_wql: bool,
    },
}

impl Call {
    /// For an ioctl: the command and the `int` at the start of its buffer.
    pub fn ioctl_int(&self) -> Option<(u32, i32)> {
        match self {
            Call::Ioctl { cmd, data, .. } => {
                Some((*cmd, i32::from_ne_bytes(data[..4].try_into().unwrap())))
            }
            _ => None,
        }
    }
}

/// What the driver answers.
#[derive(Default)]
pub struct Script {
    /// For each d_read/d_write, in order: (bytes to move with uiomove, return code).
    /// When empty: move nothing, return 0.
    pub rdwr: VecDeque<(usize, i32)>,
    /// d_ioctl return code per command (default 0).
    pub ioctl_rc: HashMap<u32, i32>,
    /// Bytes d_ioctl writes at the start of the kernel buffer, per command (before returning).
    pub ioctl_write: HashMap<u32, Vec<u8>>,
    /// d_select answers 1 (ready).
    pub ready: bool,
    /// When not ready, d_select calls selrecord (the law); off to model a driver that stopped.
    pub record: bool,
    /// Once: right after selrecord in d_select, data arrives (`ready` = true) and the
    /// driver calls selwakeup, before select(2) goes to sleep.
    pub wake_after_record: bool,
}

static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());
static SCRIPT: LazyLock<Mutex<Script>> = LazyLock::new(|| {
    Mutex::new(Script {
        record: true,
        ..Script::default()
    })
});

/// The driver's selinfo storage (the simulator keeps its records in a side table, keyed by
/// this address; it never writes here).
static SELINFO: [u64; 8] = [0; 8];

/// Address of the driver's selinfo.
pub fn selinfo() -> *mut c_void {
    SELINFO.as_ptr().cast_mut().cast()
}

/// Every call so far, in order.
pub fn calls() -> Vec<Call> {
    CALLS.lock().unwrap().clone()
}

/// Forgets the calls so far.
pub fn clear_calls() {
    CALLS.lock().unwrap().clear();
}

/// Changes the script.
pub fn script<R>(f: impl FnOnce(&mut Script) -> R) -> R {
    f(&mut SCRIPT.lock().unwrap())
}

fn record(c: Call) {
    CALLS.lock().unwrap().push(c);
}

unsafe extern "C" fn t_open(dev: dev_t, flags: c_int, devtype: c_int, _p: proc_t) -> c_int {
    record(Call::Open {
        dev,
        flags,
        devtype,
    });
    0
}

unsafe extern "C" fn t_close(dev: dev_t, flags: c_int, _devtype: c_int, _p: proc_t) -> c_int {
    record(Call::Close { dev, flags });
    0
}

/// Moves the scripted bytes with `uiomove` and returns the scripted code.
///
/// # Safety
/// `uio` is the live uio of the current d_read/d_write call.
unsafe fn rdwr(uio: uio_t) -> c_int {
    let (n, rc) = script(|s| s.rdwr.pop_front()).unwrap_or((0, 0));
    if n > 0 {
        let mut buf: Vec<u8> = (0..n).map(|i| i as u8).collect();
        // SAFETY: `buf` has `n` bytes; `uio` is live (the caller's contract).
        let e = unsafe { super::uiomove(buf.as_mut_ptr().cast(), n as c_int, uio) };
        assert_eq!(e, 0, "uiomove");
    }
    rc
}

unsafe extern "C" fn t_read(dev: dev_t, uio: uio_t, ioflag: c_int) -> c_int {
    // SAFETY: the live uio the syscall layer passes for this call.
    let resid = unsafe { super::uio_resid(uio) };
    record(Call::Read { dev, ioflag, resid });
    // SAFETY: as above.
    unsafe { rdwr(uio) }
}

unsafe extern "C" fn t_write(dev: dev_t, uio: uio_t, ioflag: c_int) -> c_int {
    // SAFETY: the live uio the syscall layer passes for this call.
    let resid = unsafe { super::uio_resid(uio) };
    record(Call::Write { dev, ioflag, resid });
    // SAFETY: as above.
    unsafe { rdwr(uio) }
}

unsafe extern "C" fn t_ioctl(
    dev: dev_t,
    cmd: c_ulong,
    data: *mut c_char,
    fflag: c_int,
    _p: proc_t,
) -> c_int {
    let cmd = cmd as u32;
    let len = xnu_sim::syscalls::ioctl_arg_len(cmd).max(4);
    // SAFETY: the syscall layer's kernel buffer holds the command's argument size, and at
    // least 4 bytes (`ioctl_arg_len(cmd).max(4)`).
    let seen = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }.to_vec();
    record(Call::Ioctl {
        dev,
        cmd,
        data: seen,
        fflag,
    });
    let (write, rc) = script(|s| {
        (
            s.ioctl_write.get(&cmd).cloned(),
            s.ioctl_rc.get(&cmd).copied().unwrap_or(0),
        )
    });
    if let Some(w) = write {
        assert!(
            w.len() <= len,
            "scripted ioctl write larger than the buffer"
        );
        // SAFETY: `w` fits the kernel buffer (asserted above) and is a separate allocation.
        unsafe { std::ptr::copy_nonoverlapping(w.as_ptr(), data.cast::<u8>(), w.len()) };
    }
    rc
}

unsafe extern "C" fn t_select(dev: dev_t, which: c_int, wql: *mut c_void, p: proc_t) -> c_int {
    record(Call::Select {
        dev,
        which,
        null_wql: wql.is_null(),
    });
    let (ready, record_it) = script(|s| (s.ready, s.record));
    if ready {
        return 1;
    }
    if record_it {
        // SAFETY: the driver's static selinfo and the select call's own wql and proc.
        unsafe { super::selrecord(p, selinfo(), wql) };
        if script(|s| std::mem::take(&mut s.wake_after_record)) {
            script(|s| s.ready = true);
            // SAFETY: the driver's static selinfo.
            unsafe { super::selwakeup(selinfo()) };
        }
    }
    0
}

/// The test driver's entry table (a `static`, as in a kext).
pub struct SyncCdevsw(pub cdevsw);
// SAFETY: plain function pointers and NULLs, never written.
unsafe impl Sync for SyncCdevsw {}

pub static CDEVSW: SyncCdevsw = SyncCdevsw(cdevsw {
    d_open: Some(t_open),
    d_close: Some(t_close),
    d_read: Some(t_read),
    d_write: Some(t_write),
    d_ioctl: Some(t_ioctl),
    d_stop: None,
    d_reset: None,
    d_ttys: std::ptr::null_mut(),
    d_select: Some(t_select),
    d_mmap: None,
    d_strategy: None,
    d_reserved_1: std::ptr::null_mut(),
    d_reserved_2: std::ptr::null_mut(),
    d_type: 0,
});

extern "C" {
    pub fn cdevsw_add(index: c_int, csw: *const cdevsw) -> c_int;
    pub fn cdevsw_remove(index: c_int, csw: *const cdevsw) -> c_int;
    pub fn cdevsw_isfree(index: c_int) -> c_int;
    pub fn devfs_make_node(
        dev: dev_t,
        chrblk: c_int,
        uid: u32,
        gid: u32,
        perms: c_int,
        fmt: *const c_char,
        ...
    ) -> *mut c_void;
    pub fn devfs_remove(handle: *mut c_void);
}

/// Marks the test driver loaded, registers its cdevsw (searching from 24) and makes
/// `/dev/<name>` (0666, minor 0). Returns the device number.
pub fn install(name: &str) -> dev_t {
    if !xnu_sim::kext::is_loaded() {
        xnu_sim::kext::load_test_driver();
    }
    // SAFETY: a static cdevsw; a NUL-terminated format with one string argument.
    unsafe {
        let major = cdevsw_add(-24, &CDEVSW.0);
        assert!(major >= 24, "cdevsw_add: {major}");
        let dev = makedev(major, 0);
        let cname = std::ffi::CString::new(name).unwrap();
        let h = devfs_make_node(dev, DEVFS_CHAR, 0, 0, 0o666, c"%s".as_ptr(), cname.as_ptr());
        assert!(!h.is_null(), "devfs_make_node");
        dev
    }
}
