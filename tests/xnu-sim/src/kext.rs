//! Loading and unloading the kext (`kextload`/`kextunload`), and leak accounting.

use crate::abi::*;
use crate::config;
use crate::proc::{self, SimThread};
use std::ffi::CStr;
use std::sync::Mutex;

/// Resources the kext holds; all zero after a clean unload or a failed start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakReport {
    /// Live mbufs.
    pub mbufs: usize,
    /// Live kernel mutexes.
    pub mutexes: usize,
    /// Live lock groups.
    pub lock_groups: usize,
    /// Live lock-group attributes.
    pub lock_group_attrs: usize,
    /// Live lock attributes.
    pub lock_attrs: usize,
    /// Live ifnets (not released, or not detached).
    pub ifnets: usize,
    /// ifnets whose `detached` callback has not run.
    pub ifnets_detaching: usize,
    /// devfs nodes made through the KPI.
    pub devfs_nodes: usize,
    /// cdevsw slots registered by the kext.
    pub cdevsw_slots: usize,
    /// select records still registered.
    pub select_records: usize,
    /// `proc_find` references not released.
    pub proc_refs: i64,
    /// In-kernel sockets not closed (`sock_socket` without `sock_close`).
    pub sockets: usize,
    /// Address lists not freed (`ifnet_get_address_list` without `ifnet_free_address_list`).
    pub address_lists: usize,
    /// Protocol plumbers the kext registered and did not unregister.
    pub plumbers: usize,
}

impl LeakReport {
    /// Whether nothing is left.
    pub fn is_clean(&self) -> bool {
        *self == LeakReport::default()
    }
}

/// What the kernel holds now.
pub fn leaks() -> LeakReport {
    let (mutexes, lock_groups, lock_group_attrs, lock_attrs) = crate::locks::live_locks();
    let (ifnets, ifnets_detaching) = crate::net::kpi_interface::live_ifnets();
    let (cdevsw_slots, devfs_nodes) = crate::devices::live_registrations();
    LeakReport {
        mbufs: crate::mbuf::live_mbufs(),
        mutexes,
        lock_groups,
        lock_group_attrs,
        lock_attrs,
        ifnets,
        ifnets_detaching,
        devfs_nodes,
        cdevsw_slots,
        select_records: crate::select::live_select_records(),
        proc_refs: proc::outstanding_refs(),
        sockets: crate::socket::live_sockets(),
        address_lists: crate::net::ifaddr::live_address_lists(),
        plumbers: crate::net::kpi_protocol::live_kext_plumbers(),
    }
}

/// Why `kextload`/`kextunload` did not succeed.
#[derive(Debug, PartialEq, Eq)]
pub enum KextError {
    /// `kmod_info` is malformed.
    BadKmodInfo(String),
    /// `start` returned `KERN_FAILURE`; what it left behind (must be clean).
    StartFailed(LeakReport),
    /// `stop` refused: the kext stays loaded.
    Busy,
    /// `stop` succeeded but resources were left behind.
    Leaked(LeakReport),
    /// Already loaded / not loaded.
    WrongState,
}

struct Kext {
    kmod: usize,
    loaded: bool,
    threads: Vec<SimThread<()>>,
}

static KEXT: Mutex<Kext> = Mutex::new(Kext {
    kmod: 0,
    loaded: false,
    threads: Vec::new(),
});

/// Whether the kext is loaded.
pub fn is_loaded() -> bool {
    KEXT.lock().unwrap().loaded
}

/// Marks a test driver as loaded, for the simulator's own tests (tests/xnu-sim/tests): a
/// cdevsw and callbacks defined in the test binary, registered straight through the KPI, with
/// no `kmod_info`, `start` or `stop`. Calls through its entry points then pass [`in_kext`].
/// `kextunload` refuses it (`WrongState`): a test driver is never unloaded.
pub fn load_test_driver() {
    assert!(config::booted(), "xnu-sim: boot() first");
    let mut k = KEXT.lock().unwrap();
    assert!(!k.loaded, "load_test_driver: a kext is already loaded");
    k.loaded = true;
    k.kmod = 0;
}

/// Runs driver code: the kext must be loaded (a call into an unloaded kext is a panic).
pub(crate) fn in_kext<R>(f: impl FnOnce() -> R) -> R {
    if !is_loaded() {
        panic!("call into the kext after it was unloaded (or before it was loaded)");
    }
    config::perturb_point();
    let r = f();
    config::perturb_point();
    r
}

pub(crate) fn track_kernel_thread(t: SimThread<()>) {
    KEXT.lock().unwrap().threads.push(t);
}

fn join_kernel_threads() {
    let threads = std::mem::take(&mut KEXT.lock().unwrap().threads);
    for t in threads {
        t.join();
    }
}

/// Checks `kmod_info`, fills in what the loader fills in, and calls `start` on a kernel thread.
/// `ki` is the kext's own `kmod_info` (as the loader finds it in the image).
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn kextload(ki: *mut kmod_info) -> Result<(), KextError> {
    assert!(config::booted(), "xnu-sim: boot() first");
    // SAFETY: the test passes the kext's kmod_info.
    let info = unsafe { &mut *ki };
    let version = info.info_version;
    if version != 1 {
        return Err(KextError::BadKmodInfo(format!(
            "info_version {version}, expected 1"
        )));
    }
    // SAFETY: name is a NUL-terminated array inside kmod_info.
    let name = unsafe { CStr::from_ptr(std::ptr::addr_of!(info.name).cast()) }
        .to_string_lossy()
        .into_owned();
    if name != config::config().bundle_id {
        return Err(KextError::BadKmodInfo(format!(
            "name {name:?} is not the bundle id {:?}",
            config::config().bundle_id
        )));
    }
    let Some(start) = info.start else {
        return Err(KextError::BadKmodInfo("no start routine".into()));
    };
    {
        let mut k = KEXT.lock().unwrap();
        if k.loaded {
            return Err(KextError::WrongState);
        }
        k.loaded = true;
        k.kmod = ki as usize;
    }
    info.address = 0xffff_ff7f_80a0_0000;
    info.size = 0x10000;
    info.hdr_size = 0x1000;
    let ki_addr = ki as usize;
    // SAFETY: the kext's own start routine, called once, as the loader calls it, with its
    // kmod_info (which lives as long as the test binary) and no data.
    let rc = proc::spawn_thread(proc::KERNEL_PID, move || unsafe {
        start(ki_addr as *mut kmod_info, std::ptr::null_mut())
    })
    .join();
    if rc == KERN_SUCCESS {
        return Ok(());
    }
    join_kernel_threads();
    KEXT.lock().unwrap().loaded = false;
    Err(KextError::StartFailed(leaks()))
}

/// Calls `stop` on a kernel thread. On success, checks that nothing is left behind; from then
/// on any call into the kext panics.
pub fn kextunload() -> Result<(), KextError> {
    let (kmod, loaded) = {
        let k = KEXT.lock().unwrap();
        (k.kmod, k.loaded)
    };
    if !loaded || kmod == 0 {
        return Err(KextError::WrongState); // not loaded, or a test driver (no stop routine)
    }
    // SAFETY: kmod_info of the loaded kext.
    let stop = unsafe { (*(kmod as *mut kmod_info)).stop }.expect("stop routine");
    // SAFETY: the loaded kext's own stop routine, called as the loader calls it, with its
    // kmod_info and no data.
    let rc = proc::spawn_thread(proc::KERNEL_PID, move || unsafe {
        stop(kmod as *mut kmod_info, std::ptr::null_mut())
    })
    .join();
    if rc != KERN_SUCCESS {
        return Err(KextError::Busy);
    }
    let report = leaks();
    if report.ifnets_detaching > 0 {
        panic!("kext unloaded while an ifnet detach is in progress: its detached callback would run in unloaded code");
    }
    join_kernel_threads();
    KEXT.lock().unwrap().loaded = false;
    let report = leaks();
    if report.is_clean() {
        Ok(())
    } else {
        Err(KextError::Leaked(report))
    }
}
