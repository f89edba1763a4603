//! xnu-sim: a userspace implementation of the XNU KPI subset tunnel.kext uses, stricter than
//! the real kernel, that the real C shim and Rust core link against on Linux.
//!
//! - One simulated kernel per OS process ([`boot`] twice panics): run tests with
//!   `cargo nextest run`, one process per test.
//! - KPI functions are the C symbols the kext imports (`msleep`, `ifnet_input`, …); their
//!   semantics follow `xnu-sim.md` and the XNU sources it names.
//! - Tests drive the kext from the user side ([`syscalls`]), the network side ([`stack`], and
//!   [`link`] for Ethernet interfaces) and the loader ([`kext`]), with Darwin errno values
//!   ([`Errno`]); they observe the network through [`netinspect`] and sleepers through
//!   [`sleep`].
//! - Every random choice comes from one seeded RNG ([`Config::seed`]); the seed is printed on
//!   a kernel panic.

pub mod abi;
pub mod config;
pub mod devices;
pub mod errno;
pub mod fasthash;
pub mod kext;
pub mod link;
mod locks;
pub mod log;
pub mod mbuf;
mod net;
pub mod netinspect;
pub mod proc;
mod select;
pub mod sleep;
pub mod socket;
pub mod stack;
pub mod syscalls;
pub mod uio;
mod uuid;

pub use config::{Config, Fault};
pub use errno::Errno;
pub use kext::{kextload, kextunload, leaks, KextError, LeakReport};
pub use syscalls::Fd;

/// Boots the simulated kernel in this process with `config`.
pub fn boot(config: Config) {
    config::install(config);
    proc::boot();
    net::ether::family_init();
    let seed = config::config().seed;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("xnu-sim seed: {seed} (replay with XNUSIM_SEED={seed})");
        previous(info);
    }));
}
