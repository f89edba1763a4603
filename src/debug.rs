//! The driver-wide debug level (`TUNSDEBUG`/`TUNGDEBUG`, docs/tun-contract.md section 7,
//! default 0). Non-zero: each close logs the unit's counters (section 12).
//!
//! Lock coverage: none; an atomic, read and written without any lock.

use core::sync::atomic::{AtomicI32, Ordering::SeqCst};

static DEBUG_LEVEL: AtomicI32 = AtomicI32::new(0);

/// The debug level.
pub fn level() -> i32 {
    DEBUG_LEVEL.load(SeqCst)
}

/// Sets the debug level (`TUNSDEBUG`; load sets 0).
pub fn set_level(level: i32) {
    DEBUG_LEVEL.store(level, SeqCst);
}
