//! tunnel-sim: the real tunnel.kext (C shim + Rust core) in the simulated kernel, carrying
//! real Linux traffic. See the README section "Real traffic on Linux".
//!
//! - [`bridge`]: the IP-stack role, between a real Linux tun in a network namespace and the
//!   driver's interface (`stack::output` one way, the sim's input hook the other).
//! - [`fusedev`]: the simulated `/dev/tunN` (or `/dev/tapN`) as FUSE files for other processes.
//! - [`tap_bridge`]: the same role for tap units, frame by frame, between a real Linux tap and
//!   the driver's `tapN` (raw output one way, the sim's frame-level input hook the other).
//! - [`relay`]: a VTun-like relay over any packet device (a FUSE file, or the syscall API),
//!   and the select/read/write linker that joins two tap devices.
//! - [`ioctl_map`], [`errno_map`]: what has to be translated at the Linux boundary.

pub mod bridge;
pub mod errno_map;
pub mod fusedev;
pub mod ioctl_map;
pub mod linux_tun;
pub mod relay;
pub mod tap_bridge;

/// Boots the simulated kernel and loads the real driver.
pub fn boot_and_load(strict: bool) {
    xnu_sim::boot(if strict {
        xnu_sim::Config::strict()
    } else {
        xnu_sim::Config::fast()
    });
    xnu_sim::kextload(driver_tests::kmod()).expect("kextload");
}
