//! Processes: the caller's ids, looking a process up, and signalling one (xnu bsd/sys/proc.h).

use super::sys;

/// `SIGIO`.
pub const SIGIO: i32 = sys::SIGIO as i32;

/// The pid of the process making the current call.
pub fn self_pid() -> i32 {
    // SAFETY: no arguments; valid in any thread context.
    unsafe { sys::proc_selfpid() }
}

/// The process group of the process making the current call.
pub fn self_pgrpid() -> i32 {
    // SAFETY: no arguments; valid in any thread context.
    unsafe { sys::proc_selfpgrpid() }
}

/// Whether process `pid` exists (`proc_find`, then `proc_rele` of the reference it took).
pub fn exists(pid: i32) -> bool {
    // SAFETY: plain lookup; a non-NULL result carries a reference released just below.
    let p = unsafe { sys::proc_find(pid) };
    if p.is_null() {
        return false;
    }
    // SAFETY: `p` came from proc_find and is released once.
    unsafe { sys::proc_rele(p) };
    true
}

/// Posts `signal` to process `pid`; a process that has exited gets nothing (IO-6).
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: proc_signal looks the pid up itself and ignores a missing process.
    unsafe { sys::proc_signal(pid, signal) };
}
