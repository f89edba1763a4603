//! Kernel log and panic, through the shim (the shim formats with the kernel's `printf`).

use super::sys;
use core::fmt::{self, Write};

/// A fixed buffer for one log line; longer text is cut.
struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line to the kernel log (`printf`), prefixed with `tunnel: `.
pub fn log(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 192],
        len: 0,
    };
    let _ = line.write_fmt(args);
    // SAFETY: the pointer and length describe initialised bytes of `line.buf`; the shim only
    // reads them during the call.
    unsafe { sys::tun_shim_log(line.buf.as_ptr().cast(), line.len) };
}

/// The kernel build's panic handler: hands the message to the kernel's `panic()`.
#[cfg(not(any(test, feature = "host")))]
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line {
        buf: [0; 192],
        len: 0,
    };
    let _ = write!(line, "{info}");
    // SAFETY: as in `log`; `tun_shim_panic` does not return.
    unsafe { sys::tun_shim_panic(line.buf.as_ptr().cast(), line.len) }
}

/// `printf`-style logging to the kernel log.
#[macro_export]
macro_rules! klog {
    ($($arg:tt)*) => { $crate::kpi::log::log(format_args!($($arg)*)) };
}
