//! The kernel log ring (`printf`, `IOLog`) and `panic()` (xnu-sim.md section 2).

use std::collections::VecDeque;
use std::ffi::{c_char, CStr};
use std::sync::Mutex;

static LOG: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
const KEEP: usize = 4096;

/// Every line the kernel logged (the last few thousand).
pub fn log_lines() -> Vec<String> {
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Forgets every line logged so far (for a test that looks at one phase at a time).
pub fn clear_log() {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// A line the simulated kernel itself logs (as XNU's own `printf`s and `os_log`s do).
pub(crate) fn kernel_log(line: &str) {
    push(line.to_string());
}

fn push(line: String) {
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    log.push_back(line);
    if log.len() > KEEP {
        log.pop_front();
    }
}

#[no_mangle]
unsafe extern "C" fn xnusim_log_line(line: *const c_char) {
    push(
        // SAFETY: csrc/variadic.c passes the NUL-terminated line it formatted.
        unsafe { CStr::from_ptr(line) }
            .to_string_lossy()
            .trim_end_matches('\n')
            .to_string(),
    );
}

#[no_mangle]
unsafe extern "C" fn xnusim_panic_message(message: *const c_char) -> ! {
    // SAFETY: csrc/variadic.c passes the NUL-terminated message it formatted.
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    let tail: Vec<String> = log_lines().into_iter().rev().take(20).collect();
    eprintln!("kernel log tail (newest first):\n  {}", tail.join("\n  "));
    eprintln!("xnu-sim seed: {}", crate::config::config().seed);
    eprintln!("KERNEL PANIC: {message}");
    // Unwinding out of a C frame is not allowed; a panic aborts this test's process, which
    // nextest reports as a failure with the message above.
    std::process::abort();
}
