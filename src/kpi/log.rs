//! Kernel log and panic, through the shim (the shim formats with the kernel's `printf`).

use super::sys;
use core::fmt::{self, Write};

/// Formatted text into a fixed byte buffer: what does not fit is cut, never overflows, and
/// writing never fails. Log lines, interface names and status text are all made with it.
pub struct TextBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TextBuf<'a> {
    /// An empty text over `buf`.
    pub fn new(buf: &'a mut [u8]) -> TextBuf<'a> {
        TextBuf { buf, len: 0 }
    }

    /// Formats `args` into `buf` from its start; the length written.
    pub fn format(buf: &'a mut [u8], args: fmt::Arguments<'_>) -> usize {
        let mut text = TextBuf::new(buf);
        // Cannot fail: write_str never does.
        let _ = text.write_fmt(args);
        text.len
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for TextBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The longest kernel-log line the driver writes; longer text is cut.
const LINE_MAX: usize = 192;

/// Writes one line to the kernel log (`printf`), prefixed with `tunnel: `.
pub fn log(args: fmt::Arguments<'_>) {
    let mut line = [0u8; LINE_MAX];
    let len = TextBuf::format(&mut line, args);
    // SAFETY: the pointer and length describe initialised bytes of `line`; the shim only
    // reads them during the call.
    unsafe { sys::tun_shim_log(line.as_ptr().cast(), len) };
}

/// The kernel build's panic handler: hands the message to the kernel's `panic()`.
#[cfg(not(any(test, feature = "host")))]
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = [0u8; LINE_MAX];
    let len = TextBuf::format(&mut line, format_args!("{info}"));
    // SAFETY: as in `log`; `tun_shim_panic` does not return.
    unsafe { sys::tun_shim_panic(line.as_ptr().cast(), len) }
}

/// `printf`-style logging to the kernel log.
#[macro_export]
macro_rules! klog {
    ($($arg:tt)*) => { $crate::kpi::log::log(format_args!($($arg)*)) };
}
