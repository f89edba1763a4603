//! UUIDs (xnu bsd/uuid/uuid.h, libkern/uuid/uuid.c): `uuid_generate_random`, which a tap unit
//! uses for its MAC address (contract TA-1) because `random_buf` is not exported before
//! macOS 10.13.4.

use crate::config;

/// `uuid_generate_random` (libkern/uuid/uuid.c): 16 random bytes (`read_random`; here the
/// simulator's seeded RNG, so a run is reproducible from its seed), then the version nibble
/// of byte 6 set to 4 (`(out[6] & 0x0F) | 0x40`) and the variant bits of byte 8 to 10
/// (`(out[8] & 0x3F) | 0x80`).
#[no_mangle]
unsafe extern "C" fn uuid_generate_random(out: *mut u8) {
    let mut uu = [0u8; 16];
    config::random_bytes(&mut uu);
    uu[6] = (uu[6] & 0x0f) | 0x40;
    uu[8] = (uu[8] & 0x3f) | 0x80;
    // SAFETY: the KPI contract: `out` is a uuid_t, 16 writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(uu.as_ptr(), out, 16) };
}
