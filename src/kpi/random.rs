//! Random bytes for the driver (xnu libkern `uuid_generate_random`, exported to kexts on every
//! macOS from 10.13.0; `random_buf` only from 10.13.4, docs/tap-contract.md TA-1).

use super::sys;

/// Sixteen random bytes of a version-4 UUID: bytes 6 and 8 carry its fixed version and
/// variant bits, the other fourteen are random.
pub fn uuid() -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: `out` is the 16-byte uuid_t the call fills.
    unsafe { sys::uuid_generate_random(out.as_mut_ptr()) };
    out
}
