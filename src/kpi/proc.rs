//! The calling process.

use super::sys;

/// The pid of the process making the current call.
pub fn self_pid() -> i32 {
    // SAFETY: no arguments; valid in any thread context.
    unsafe { sys::proc_selfpid() }
}
