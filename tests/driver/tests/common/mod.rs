//! Shared by the reliability tests (issue 5: stress, soak, faults, bad input): seeds, the long
//! mode, bounded waits, and the figures `scripts/soak.sh` collects.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use xnu_sim::proc::{self, SimThread};
use xnu_sim::Config;

/// Whether the long mode is on (`TUNNEL_SOAK=1`, set by `scripts/soak.sh`).
pub fn soak() -> bool {
    std::env::var("TUNNEL_SOAK").is_ok_and(|v| v == "1")
}

/// `short` in the test suite, `long` in the long mode.
pub fn scaled(short: usize, long: usize) -> usize {
    if soak() {
        long
    } else {
        short
    }
}

/// The seed of this run: `XNUSIM_SEED` if set (replay), else `default` in the suite (the same
/// schedule choices every run), else a fresh one in the long mode.
pub fn seed(default: u64) -> u64 {
    if let Some(seed) = std::env::var("XNUSIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    if soak() {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(default, |d| d.as_nanos() as u64)
    } else {
        default
    }
}

/// Boots a kernel with schedule perturbation, spurious wakeups and late detach callbacks,
/// and prints the seed (the kernel's panic hook prints it again on failure).
pub fn boot_perturbed(default_seed: u64) -> u64 {
    let seed = seed(default_seed);
    println!("xnu-sim seed: {seed} (replay with XNUSIM_SEED={seed})");
    figure("seed", seed);
    xnu_sim::boot(Config::perturbed(seed));
    seed
}

/// Boots a strict kernel (no perturbation) with the run's seed, printed.
pub fn boot_strict(default_seed: u64) -> u64 {
    let seed = seed(default_seed);
    println!("xnu-sim seed: {seed} (replay with XNUSIM_SEED={seed})");
    figure("seed", seed);
    xnu_sim::boot(Config {
        seed,
        ..Config::strict()
    });
    seed
}

/// One figure for `scripts/soak.sh` (a line it greps from the test output).
pub fn figure(name: &str, value: impl std::fmt::Display) {
    println!("soak-figure: {name}={value}");
}

/// Injected faults that fired so far, of every kind.
pub fn faults_fired_total() -> u64 {
    xnu_sim::Fault::ALL
        .into_iter()
        .map(xnu_sim::config::faults_fired)
        .sum()
}

/// Waits for `thread` at most `limit`; a hang is a failure, reported with `what`.
pub fn join_within<T>(thread: SimThread<T>, limit: Duration, what: &str) -> T {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        assert!(
            Instant::now() < deadline,
            "hang: {what} still running after {limit:?} (a blocking call was never released)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    thread.join()
}

/// Runs `f` on a simulated thread of the init process.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> SimThread<T> {
    proc::spawn_thread(proc::INIT_PID, f)
}

/// Asserts the kernel holds nothing of the kext (after a successful unload).
pub fn assert_no_leaks(context: &str) {
    let leaks = xnu_sim::leaks();
    assert!(leaks.is_clean(), "{context}: leaked {leaks:?}");
}
