//! tunnel: the `no_std` core of tunnel.kext, BSD tun(4) character devices (`/dev/tunN`) and
//! point-to-point interfaces (`tunN`) for macOS.
//!
//! Three floors, each using only the ones below it (docs/style.md; checked by
//! tests/suites/floors.sh):
//! - [`entry`]: the `extern "C"` functions the shim's tables point at;
//! - the core: load/unload ([`driver`]), the unload [`gate`], per-unit state ([`unit`],
//!   [`counters`]), the kinds of unit ([`link`]), the packet queue ([`queue`]), framing
//!   ([`framing`], [`frame`], [`l3`], [`l2`]), the character-device side ([`cdev`], [`dev_ioctl`]) and the
//!   interface side ([`iface`]), with no cycles;
//! - [`kpi`]: safe wrappers over the XNU KPI, the one module where `unsafe` blocks are
//!   allowed, which knows nothing of tun.
//!
//! The core never blocks on its own: the one place a reader sleeps is the blocking dequeue in
//! [`unit`], through the kernel mutex that guards the unit.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "host")]
extern crate std;

pub mod cdev;
pub mod counters;
pub mod debug;
pub mod dev_ioctl;
pub mod driver;
pub mod entry;
pub mod ether;
pub mod frame;
pub mod framing;
pub mod gate;
pub mod iface;
pub mod ioctl;
pub mod kpi;
pub mod l2;
pub mod l3;
pub mod limits;
pub mod link;
pub mod owner;
pub mod queue;
pub mod unit;

#[cfg(not(any(test, feature = "host")))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kpi::log::panic(info)
}
