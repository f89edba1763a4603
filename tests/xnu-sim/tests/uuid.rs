//! `uuid_generate_random` (xnu libkern/uuid/uuid.c): 16 bytes from the seeded RNG with the
//! version nibble of byte 6 set to 4 and the variant bits of byte 8 to 10 (a tap unit takes
//! its MAC from bytes 0 to 5, contract TA-1).

mod common;
mod ifdrv;

use common::boot;
use ifdrv::ether::uuid_generate_random;

fn uuid() -> [u8; 16] {
    let mut uu = [0u8; 16];
    // SAFETY: a 16-byte uuid_t.
    unsafe { uuid_generate_random(uu.as_mut_ptr()) };
    uu
}

#[test]
fn uuid_generate_random_sets_version_and_variant_bits() {
    boot();
    let all: Vec<[u8; 16]> = (0..64).map(|_| uuid()).collect();
    for uu in &all {
        assert_eq!(uu[6] >> 4, 4, "version 4: {uu:02x?}");
        assert_eq!(uu[8] >> 6, 0b10, "variant 10: {uu:02x?}");
    }
    let mut distinct = all.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), all.len(), "random, not repeated");
    let first_bytes: std::collections::HashSet<u8> = all.iter().map(|u| u[0]).collect();
    assert!(first_bytes.len() > 16, "bytes 0..5 vary: {first_bytes:?}");
}
