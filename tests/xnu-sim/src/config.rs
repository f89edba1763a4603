//! Strictness knobs, the seeded RNG every random choice comes from, fault injection and
//! schedule perturbation (xnu-sim.md sections 2 and 4).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What the simulator checks and randomises. All on for correctness runs, all off for
/// performance runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the one RNG; printed on failure.
    pub seed: u64,
    /// Check every mbuf handle against the table of live mbufs (a stale or double-freed
    /// handle panics). Off only for performance runs.
    pub track_mbufs: bool,
    /// Poison freed mbufs (and keep them quarantined so stale handles are caught).
    pub poison: bool,
    /// Split every mbuf allocation at random segment sizes.
    pub fragment: bool,
    /// `mbuf_prepend`/`mbuf_pullup` always return a new head.
    pub strict_heads: bool,
    /// Random yields after unlock, before sleep, inside wakeup and around driver callbacks.
    pub perturb: bool,
    /// Inject spurious wakeups into `msleep`.
    pub spurious_wakeups: bool,
    /// Deliver ifnet callbacks (output) late, while a detach is in progress.
    pub late_detach_callbacks: bool,
    /// Check the layout of every frame an Ethernet driver gives `ifnet_input` (contract TW-2:
    /// the frame header right before the data in the first mbuf, with the payload bytes
    /// `ether_demux` reads unchecked) and panic on a demux read beyond the first mbuf's data.
    pub check_frame_layout: bool,
    /// Keep the bytes of BPF taps and of packets the stack receives, for tests to read. Off,
    /// they are only counted (benchmarks).
    pub capture: bool,
    /// Bundle identifier `kextload` expects in `kmod_info.name`: by default the kext's
    /// Info.plist `CFBundleIdentifier` (build.rs).
    pub bundle_id: String,
}

impl Config {
    /// Every check on; perturbation off (deterministic order), seed from `XNUSIM_SEED` or 1.
    pub fn strict() -> Config {
        Config {
            seed: std::env::var("XNUSIM_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
            track_mbufs: true,
            poison: true,
            fragment: true,
            strict_heads: true,
            perturb: false,
            spurious_wakeups: false,
            late_detach_callbacks: false,
            check_frame_layout: true,
            capture: true,
            bundle_id: env!("XNUSIM_BUNDLE_ID").to_string(),
        }
    }

    /// Strict, plus schedule perturbation, spurious wakeups and late callbacks.
    pub fn perturbed(seed: u64) -> Config {
        Config {
            seed,
            perturb: true,
            spurious_wakeups: true,
            late_detach_callbacks: true,
            ..Config::strict()
        }
    }

    /// Everything off: for measuring the driver, not for checking it.
    pub fn fast() -> Config {
        Config {
            track_mbufs: false,
            poison: false,
            fragment: false,
            strict_heads: false,
            perturb: false,
            spurious_wakeups: false,
            late_detach_callbacks: false,
            check_frame_layout: false,
            ..Config::strict()
        }
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static RNG: Mutex<Option<SmallRng>> = Mutex::new(None);

pub(crate) fn install(config: Config) {
    let seed = config.seed;
    if CONFIG.set(config).is_err() {
        panic!(
            "xnu-sim: boot() called twice in one process. There is one simulated kernel per \
             process: run the tests with `cargo nextest run`, which gives each test its own process."
        );
    }
    *RNG.lock().unwrap() = Some(SmallRng::seed_from_u64(seed));
}

/// The configuration the kernel booted with.
pub fn config() -> &'static Config {
    CONFIG.get().expect("xnu-sim: call xnu_sim::boot() first")
}

/// Whether the kernel has booted in this process.
pub fn booted() -> bool {
    CONFIG.get().is_some()
}

/// A random number in `range` from the seeded RNG.
pub fn random_range(range: std::ops::Range<usize>) -> usize {
    RNG.lock()
        .unwrap()
        .as_mut()
        .expect("booted")
        .gen_range(range)
}

/// Fills `buf` with bytes from the seeded RNG.
pub fn random_bytes(buf: &mut [u8]) {
    RNG.lock().unwrap().as_mut().expect("booted").fill(buf);
}

/// True with probability `p`.
pub fn chance(p: f64) -> bool {
    RNG.lock().unwrap().as_mut().expect("booted").gen_bool(p)
}

/// With perturbation on, sometimes yields or sleeps briefly here.
pub fn perturb_point() {
    if !booted() || !config().perturb {
        return;
    }
    match random_range(0..8) {
        0 => std::thread::sleep(std::time::Duration::from_micros(random_range(1..200) as u64)),
        1..=3 => std::thread::yield_now(),
        _ => {}
    }
}

/// KPI calls that fault injection can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `mbuf_allocpacket`/`mbuf_prepend` with `MBUF_DONTWAIT` (and other non-blocking allocations).
    MbufAlloc,
    /// `lck_*_alloc_init`.
    LockAlloc,
    /// `cdevsw_add` finds no slot.
    CdevswAdd,
    /// `devfs_make_node` returns NULL.
    DevfsMakeNode,
    /// `ifnet_allocate` returns `ENOMEM`.
    IfnetAllocate,
    /// `ifnet_attach` returns `ENOMEM`.
    IfnetAttach,
    /// `ifnet_attach_protocol` returns `ENOMEM`.
    AttachProtocol,
    /// `uiomove` toward the user (reads) returns `EFAULT`.
    CopyOut,
    /// `uiomove` from the user (writes) returns `EFAULT`.
    CopyIn,
    /// `sock_socket` returns `ENOBUFS`.
    SockSocket,
    /// `ifnet_detach` returns `EINVAL` and detaches nothing.
    IfnetDetach,
    /// `ifnet_detach_protocol` returns `EINVAL` and detaches nothing.
    IfnetDetachProtocol,
    /// `cdevsw_remove` returns -1 and removes nothing.
    CdevswRemove,
    /// `proto_register_plumber` returns `ENOMEM` (its allocation failed).
    ProtoRegisterPlumber,
}

impl Fault {
    /// Every kind, for totals and sweeps.
    pub const ALL: [Fault; 14] = [
        Fault::MbufAlloc,
        Fault::LockAlloc,
        Fault::CdevswAdd,
        Fault::DevfsMakeNode,
        Fault::IfnetAllocate,
        Fault::IfnetAttach,
        Fault::AttachProtocol,
        Fault::CopyOut,
        Fault::CopyIn,
        Fault::SockSocket,
        Fault::IfnetDetach,
        Fault::IfnetDetachProtocol,
        Fault::CdevswRemove,
        Fault::ProtoRegisterPlumber,
    ];
}

/// When injected faults fire.
#[derive(Default)]
struct Faults {
    /// Fail the Nth call from now of this kind (1 = the next one).
    nth: HashMap<Fault, u64>,
    /// Fail every call of this kind with this probability.
    probability: HashMap<Fault, f64>,
    /// Fail the Nth failable call of any kind from now (for "each step of start in turn").
    any_nth: Option<u64>,
    /// Faults that fired, by kind.
    fired: HashMap<Fault, u64>,
}

static FAULTS: Mutex<Option<Faults>> = Mutex::new(None);

/// Makes the `n`th call (1 = the next) of `kind` fail.
pub fn fail_nth(kind: Fault, n: u64) {
    FAULTS
        .lock()
        .unwrap()
        .get_or_insert_with(Faults::default)
        .nth
        .insert(kind, n);
}

/// Makes every call of `kind` fail with probability `p` (0 turns it off).
pub fn fail_with_probability(kind: Fault, p: f64) {
    FAULTS
        .lock()
        .unwrap()
        .get_or_insert_with(Faults::default)
        .probability
        .insert(kind, p);
}

/// Makes the `n`th failable KPI call of any kind (1 = the next) fail.
pub fn fail_nth_call(n: u64) {
    FAULTS
        .lock()
        .unwrap()
        .get_or_insert_with(Faults::default)
        .any_nth = Some(n);
}

/// Turns every injection off.
pub fn clear_faults() {
    let mut faults = FAULTS.lock().unwrap();
    let fired = faults.take().map(|f| f.fired).unwrap_or_default();
    *faults = Some(Faults {
        fired,
        ..Faults::default()
    });
}

/// How many injected faults of `kind` fired so far.
pub fn faults_fired(kind: Fault) -> u64 {
    FAULTS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|f| f.fired.get(&kind).copied())
        .unwrap_or(0)
}

/// Called by each failable KPI function: whether this call fails.
pub(crate) fn should_fail(kind: Fault) -> bool {
    let mut guard = FAULTS.lock().unwrap();
    let Some(faults) = guard.as_mut() else {
        return false;
    };
    let mut fail = false;
    if let Some(n) = faults.any_nth.as_mut() {
        *n -= 1;
        if *n == 0 {
            faults.any_nth = None;
            fail = true;
        }
    }
    if let Some(n) = faults.nth.get_mut(&kind) {
        *n -= 1;
        if *n == 0 {
            faults.nth.remove(&kind);
            fail = true;
        }
    }
    if let Some(&p) = faults.probability.get(&kind) {
        if p > 0.0 && chance(p) {
            fail = true;
        }
    }
    if fail {
        *faults.fired.entry(kind).or_default() += 1;
    }
    fail
}
