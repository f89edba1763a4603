//! Simulated processes and threads: pids, credentials, signals, the calling process of every
//! KPI call (xnu-sim.md section 2), and the process KPI (`proc_selfpid`, `proc_signal`, …).

use crate::abi::proc_t;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A process id.
pub type Pid = i32;

/// The kernel's own process (start/stop, detach callbacks run there).
pub const KERNEL_PID: Pid = 0;
/// The default user process (root), for threads that name none.
pub const INIT_PID: Pid = 1;

/// How a process handles one signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handler {
    /// `SA_RESTART`: an interrupted sleep returns `ERESTART` and the call restarts.
    pub restart: bool,
}

struct Process {
    uid: u32,
    pgid: Pid,
    handlers: HashMap<i32, Handler>,
    /// Signals posted to the process, not yet taken by a thread.
    pending: HashSet<i32>,
    /// Every signal delivered, in order (tests read SIGIO deliveries here).
    received: Vec<i32>,
    refs: i64,
}

impl Process {
    /// A process of `uid`, leading a process group of its own.
    fn new(uid: u32, pid: Pid) -> Process {
        Process {
            uid,
            pgid: pid,
            handlers: HashMap::new(),
            pending: HashSet::new(),
            received: Vec::new(),
            refs: 0,
        }
    }
}

struct Procs {
    table: HashMap<Pid, Process>,
    next_pid: Pid,
    /// Signals directed at one thread.
    thread_pending: HashMap<u64, HashSet<i32>>,
}

static PROCS: Mutex<Option<Procs>> = Mutex::new(None);
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<ThreadCtx> = RefCell::new(ThreadCtx {
        pid: INIT_PID,
        tid: NEXT_TID.fetch_add(1, Ordering::Relaxed),
    });
}

#[derive(Clone, Copy)]
struct ThreadCtx {
    pid: Pid,
    tid: u64,
}

pub(crate) fn boot() {
    let mut table = HashMap::new();
    for (pid, uid) in [(KERNEL_PID, 0), (INIT_PID, 0)] {
        table.insert(pid, Process::new(uid, pid));
    }
    *PROCS.lock().unwrap() = Some(Procs {
        table,
        next_pid: 100,
        thread_pending: HashMap::new(),
    });
}

fn with<R>(f: impl FnOnce(&mut Procs) -> R) -> R {
    f(PROCS
        .lock()
        .unwrap()
        .as_mut()
        .expect("xnu-sim: boot() first"))
}

/// The simulated process of the calling thread.
pub fn current_pid() -> Pid {
    CURRENT.with(|c| c.borrow().pid)
}

/// The calling thread's simulated thread id.
pub fn current_tid() -> u64 {
    CURRENT.with(|c| c.borrow().tid)
}

/// Makes the calling thread part of process `pid` from now on.
pub fn set_current_pid(pid: Pid) {
    assert!(with(|p| p.table.contains_key(&pid)), "no process {pid}");
    CURRENT.with(|c| c.borrow_mut().pid = pid);
}

/// Creates a process with `uid`, in a process group of its own.
pub fn spawn_process(uid: u32) -> Pid {
    with(|p| {
        let pid = p.next_pid;
        p.next_pid += 1;
        p.table.insert(pid, Process::new(uid, pid));
        pid
    })
}

/// Ends process `pid` (signals to it are then lost, as to an exited process).
pub fn exit_process(pid: Pid) {
    with(|p| p.table.remove(&pid));
}

/// Moves `pid` into process group `pgid`.
pub fn set_pgid(pid: Pid, pgid: Pid) {
    with(|p| p.table.get_mut(&pid).expect("process").pgid = pgid);
}

/// The process group of `pid`.
pub fn pgid_of(pid: Pid) -> Option<Pid> {
    with(|p| p.table.get(&pid).map(|pr| pr.pgid))
}

/// Whether process `pid` exists.
pub fn exists(pid: Pid) -> bool {
    with(|p| p.table.contains_key(&pid))
}

/// The uid of `pid`.
pub fn uid_of(pid: Pid) -> u32 {
    with(|p| p.table.get(&pid).map_or(u32::MAX, |pr| pr.uid))
}

/// Runs `f` on a new OS thread that belongs to simulated process `pid`.
pub fn spawn_thread<T: Send + 'static>(
    pid: Pid,
    f: impl FnOnce() -> T + Send + 'static,
) -> SimThread<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        set_current_pid(pid);
        tx.send(current_tid()).unwrap();
        f()
    });
    let tid = rx.recv().unwrap();
    SimThread { handle, tid }
}

/// A simulated thread started by [`spawn_thread`].
pub struct SimThread<T> {
    handle: std::thread::JoinHandle<T>,
    tid: u64,
}

impl<T> SimThread<T> {
    /// Its simulated thread id (for thread-directed signals).
    pub fn tid(&self) -> u64 {
        self.tid
    }

    /// Waits for it to finish; propagates a panic.
    pub fn join(self) -> T {
        match self.handle.join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    /// Whether it has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// `sigaction`: installs a handler for `sig` in `pid` (with or without `SA_RESTART`).
pub fn sigaction(pid: Pid, sig: i32, handler: Option<Handler>) {
    with(|p| {
        let pr = p.table.get_mut(&pid).expect("process");
        match handler {
            Some(h) => pr.handlers.insert(sig, h),
            None => pr.handlers.remove(&sig),
        };
    });
}

/// Signals whose default action is to do nothing (they never interrupt a sleep unless caught).
fn ignored_by_default(sig: i32) -> bool {
    matches!(sig, 16 | 20 | 23 | 28 | 29) // SIGURG, SIGCHLD, SIGIO, SIGWINCH, SIGINFO
}

/// `kill(pid, sig)`: posts to the process. Returns false if it does not exist.
pub fn kill(pid: Pid, sig: i32) -> bool {
    let posted = with(|p| {
        let Some(pr) = p.table.get_mut(&pid) else {
            return false;
        };
        pr.received.push(sig);
        if pr.handlers.contains_key(&sig) || !ignored_by_default(sig) {
            pr.pending.insert(sig);
        }
        true
    });
    crate::sleep::notify_all();
    posted
}

/// Posts `sig` to one thread (e.g. one blocked in read).
pub fn kill_thread(tid: u64, sig: i32) {
    with(|p| {
        p.thread_pending.entry(tid).or_default().insert(sig);
    });
    crate::sleep::notify_all();
}

/// Signals delivered to `pid` so far, in order.
pub fn signals_received(pid: Pid) -> Vec<i32> {
    with(|p| {
        p.table
            .get(&pid)
            .map(|pr| pr.received.clone())
            .unwrap_or_default()
    })
}

/// If a signal is pending for the calling thread, whether its handler restarts calls
/// (`Some(true)` = `ERESTART`, `Some(false)` = `EINTR`).
pub(crate) fn pending_signal_restarts() -> Option<bool> {
    let ctx = CURRENT.with(|c| *c.borrow());
    with(|p| {
        let thread_sig = p
            .thread_pending
            .get(&ctx.tid)
            .and_then(|s| s.iter().next().copied());
        let pr = p.table.get(&ctx.pid)?;
        let sig = thread_sig.or_else(|| pr.pending.iter().next().copied())?;
        Some(pr.handlers.get(&sig).is_some_and(|h| h.restart))
    })
}

/// The syscall layer "runs the handler": takes one pending signal of the calling thread.
pub(crate) fn take_pending_signal() {
    let ctx = CURRENT.with(|c| *c.borrow());
    with(|p| {
        if let Some(set) = p.thread_pending.get_mut(&ctx.tid) {
            if let Some(sig) = set.iter().next().copied() {
                set.remove(&sig);
                return;
            }
        }
        if let Some(pr) = p.table.get_mut(&ctx.pid) {
            if let Some(sig) = pr.pending.iter().next().copied() {
                pr.pending.remove(&sig);
            }
        }
    });
}

/// Outstanding `proc_find` references (leak accounting).
pub(crate) fn outstanding_refs() -> i64 {
    with(|p| p.table.values().map(|pr| pr.refs).sum())
}

fn handle_of(pid: Pid) -> proc_t {
    (pid as isize + 1) as proc_t
}

fn pid_of_handle(p: proc_t) -> Pid {
    assert!(!p.is_null(), "NULL proc_t");
    (p as isize - 1) as Pid
}

// ---- KPI ----

/// `proc_selfpid` (bsd/kern/kern_proc.c): the pid of the calling thread's simulated process.
#[no_mangle]
extern "C" fn proc_selfpid() -> c_int {
    current_pid()
}

/// `current_proc` (bsd/kern/bsd_stubs.c): a handle for the calling thread's simulated process;
/// never NULL (threads that name no process belong to pid 1, loader threads to pid 0).
#[no_mangle]
extern "C" fn current_proc() -> proc_t {
    handle_of(current_pid())
}

/// `proc_pid` (bsd/kern/kern_proc.c): the pid behind a proc handle. Stricter than XNU: a NULL
/// handle panics instead of answering -1.
#[no_mangle]
extern "C" fn proc_pid(p: proc_t) -> c_int {
    pid_of_handle(p)
}

/// `proc_selfpgrpid` (bsd/kern/kern_proc.c): the process group of the calling thread's process.
#[no_mangle]
extern "C" fn proc_selfpgrpid() -> c_int {
    pgid_of(current_pid()).unwrap_or(0)
}

/// `proc_find` (bsd/kern/kern_proc.c): a referenced handle for `pid`, or NULL when no such
/// process exists; every reference is counted and must be dropped with `proc_rele` before unload.
#[no_mangle]
extern "C" fn proc_find(pid: c_int) -> proc_t {
    with(|p| match p.table.get_mut(&pid) {
        Some(pr) => {
            pr.refs += 1;
            handle_of(pid)
        }
        None => std::ptr::null_mut(),
    })
}

/// `proc_rele` (bsd/kern/kern_proc.c): drops a `proc_find` reference and returns 0. Stricter than
/// XNU: a release without a matching `proc_find`, or of an unknown pid, panics.
#[no_mangle]
extern "C" fn proc_rele(handle: proc_t) -> c_int {
    let pid = pid_of_handle(handle);
    with(|p| {
        let pr = p
            .table
            .get_mut(&pid)
            .unwrap_or_else(|| panic!("proc_rele of unknown pid {pid}"));
        assert!(pr.refs > 0, "proc_rele without proc_find (pid {pid})");
        pr.refs -= 1;
    });
    0
}

/// `proc_signal` (bsd/kern/kern_proc.c `proc_signal` → bsd/kern/kern_sig.c `psignal`): posts `sig`
/// to process `pid` and wakes its `PCATCH` sleepers; nothing happens for a pid that does not exist.
#[no_mangle]
extern "C" fn proc_signal(pid: c_int, sig: c_int) {
    kill(pid, sig);
}
