//! tunnel: the `no_std` core of tunnel.kext, BSD tun(4) character devices (`/dev/tunN`) and
//! point-to-point interfaces (`tunN`) for macOS.
//!
//! The core talks to the kernel only through [`kpi`], the one module where `unsafe_code` is allowed.
//! Everything above it is plain Rust on plain data: per-unit state ([`unit`]), the packet queue
//! ([`queue`]), framing ([`framing`]), the character-device entry points ([`cdev`]), the
//! interface callbacks ([`iface`]) and load/unload ([`driver`]). The core never blocks on its
//! own: the one place a reader sleeps is the blocking dequeue in [`unit`], through the kernel
//! mutex that guards the unit.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "host")]
extern crate std;

pub mod cdev;
pub mod dev_ioctl;
pub mod driver;
pub mod errno;
pub mod framing;
pub mod iface;
pub mod ioctl;
pub mod kpi;
pub mod limits;
pub mod owner;
pub mod queue;
pub mod unit;

#[cfg(not(any(test, feature = "host")))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kpi::log::panic(info)
}
