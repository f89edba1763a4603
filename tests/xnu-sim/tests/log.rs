//! `panic()` (xnu osfmk/kern/debug.c): the formatted message ends the simulated kernel, which
//! here aborts the test's process after printing the kernel log tail and the seed.

mod common;

use common::*;
use std::ffi::{c_char, c_int};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

extern "C" {
    fn xnusim_panic(format: *const c_char, ...) -> !;
    fn xnusim_printf(format: *const c_char, ...) -> c_int;
}

const NAME: &str = "panic_aborts_with_its_message";

#[test]
fn panic_aborts_with_its_message() {
    if is_child(NAME) {
        boot();
        // SAFETY: NUL-terminated formats with matching arguments.
        unsafe {
            xnusim_printf(
                c"tunnel: logged before the panic, unit %d\n".as_ptr(),
                3 as c_int,
            );
            xnusim_panic(
                c"tunnel: bad state %d in %s".as_ptr(),
                7 as c_int,
                c"unit".as_ptr(),
            );
        }
    }
    // The same re-run as common::expect_kernel_panic, to look at how the child ended.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--include-ignored", "--nocapture"])
        .env("XNUSIM_CHILD_SCENARIO", NAME)
        .output()
        .expect("re-run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(6),
        "panic aborts the process (SIGABRT): {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("KERNEL PANIC: tunnel: bad state 7 in unit"),
        "the formatted message:\n{stderr}"
    );
    assert!(
        stderr.contains("tunnel: logged before the panic, unit 3"),
        "the kernel log tail:\n{stderr}"
    );
    assert!(stderr.contains("xnu-sim seed:"), "the seed:\n{stderr}");
    // And through the shared helper.
    expect_kernel_panic(NAME, "KERNEL PANIC: tunnel: bad state 7 in unit");
}
