//! `tunnel-sim`: hosts the real tunnel.kext in the simulated kernel and carries real traffic.
//!
//! ```text
//! tunnel-sim host --ns-a A --ns-b B [--tap] [--ns-host R] [--fuse DIR] [--relay inproc|none]
//!                 [--strict] [--stats FILE] [--ready FILE] [--max-seconds N]
//! tunnel-sim relay --dev PATH --bind IP:PORT --peer IP:PORT [--max-seconds N]
//! tunnel-sim taprelay --dev0 PATH --dev1 PATH [--max-seconds N]
//! tunnel-sim plain --ns-a A --ns-b B [--tap] [--ns-host R] [--ready FILE] [--max-seconds N]
//! ```
//!
//! `host` joins namespace R (if given) before anything else, boots the sim (fast, or strict
//! with `--strict`), loads the driver, creates Linux tun `tun0` in namespace A (paired with
//! the sim's unit 0, 10.66.0.1 ↔ 10.66.0.2, fd66::1 ↔ fd66::2) and `tun1` in B (unit 1, the
//! mirror image), bridges them, optionally serves `/dev/tunN` as FUSE files under DIR and/or
//! runs the in-process relay, writes its counters to FILE every 200 ms, and on SIGTERM/SIGINT
//! stops everything, unloads the driver (leak-checked) and prints the final counters.
//!
//! With `--tap` the host does the same for tap units (docs/tap-contract.md section 17): it
//! reads the MACs of the sim's tap0 and tap1 (device `SIOCGIFADDR`), creates Linux taps `ta0`
//! in A (10.77.0.1/24, fd77::1/64, tap0's MAC) and `tb0` in B (.2, ::2, tap1's MAC), bridges
//! them frame by frame ([`tunnel_sim::tap_bridge`]), serves `/dev/tapN` as FUSE files and/or
//! runs the in-process linker between `/dev/tap0` and `/dev/tap1`.
//!
//! `relay` is the VTun-like relay as its own process over a device file (the FUSE file).
//!
//! `taprelay` is the VTun-like linker as its own process between two device files (the FUSE
//! `tap0` and `tap1`): select, read, write.
//!
//! `plain` is the benchmark baseline (scripts/bench.sh, L2): the same two Linux tun devices
//! (with `--tap`: the two Linux taps), relayed by plain threads with one cross-thread queue hop
//! per direction and no driver.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tunnel_sim::bridge::{self, Bridge, Side};
use tunnel_sim::linux_tun::{self, LinuxTun};
use tunnel_sim::tap_bridge::{self, TapBridge, TapSide};
use tunnel_sim::{fusedev, relay};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1).cloned())
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn required(&self, name: &str) -> Result<String, String> {
        self.value(name).ok_or_else(|| format!("missing {name}"))
    }
    /// `--max-seconds N`: how long the process may run at most (default 600 s).
    fn max_seconds(&self) -> Duration {
        Duration::from_secs(
            self.value("--max-seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(600),
        )
    }
}

fn ns_path(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/run/netns/{name}")
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates and configures the Linux tun of `unit` in namespace `ns`.
fn linux_side(ns: &str, unit: usize) -> Result<Side, String> {
    let name = format!("tun{unit}");
    let tun =
        LinuxTun::create_in(&ns_path(ns), &name).map_err(|e| format!("tun {name} in {ns}: {e}"))?;
    let a = bridge::addrs(unit);
    let v4 = std::net::Ipv4Addr::from(a.v4).to_string();
    let p4 = std::net::Ipv4Addr::from(a.peer4).to_string();
    let (v6, p6) = (bridge::v6_text(&a.v6), bridge::v6_text(&a.peer6));
    // No link-local address and no DAD: only the traffic the tests send crosses the driver
    // (MLD reports may still go out; the counters are compared, not assumed empty).
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    ip(&["-n", ns, "link", "set", &name, "addrgenmode", "none"])?;
    // Up first: an IPv6 peer route is only installed for an address added on an up link.
    ip(&["-n", ns, "link", "set", &name, "up"])?;
    ip(&["-n", ns, "addr", "add", &v4, "peer", &p4, "dev", &name])?;
    ip(&[
        "-n", ns, "-6", "addr", "add", &v6, "peer", &p6, "dev", &name, "nodad",
    ])?;
    Ok(Side {
        unit,
        tun,
        counters: Default::default(),
    })
}

/// Creates and configures the Linux tap of tap unit `unit` in namespace `ns`: `ta0`/`tb0`
/// with `mac` (the sim unit's), 10.77.0.N/24 and fd77::N/64 without DAD.
fn linux_tap(ns: &str, unit: usize, mac: Option<[u8; 6]>) -> Result<LinuxTun, String> {
    let name = tap_bridge::linux_name(unit);
    let tap = LinuxTun::create_tap_in(&ns_path(ns), name)
        .map_err(|e| format!("tap {name} in {ns}: {e}"))?;
    let (v4, v6) = tap_bridge::linux_addrs(unit);
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    if let Some(mac) = mac {
        ip(&[
            "-n",
            ns,
            "link",
            "set",
            name,
            "address",
            &tap_bridge::mac_text(&mac),
        ])?;
    }
    // No link-local address (no router solicitations); the global one without DAD.
    ip(&["-n", ns, "link", "set", name, "addrgenmode", "none"])?;
    ip(&["-n", ns, "link", "set", name, "up"])?;
    ip(&["-n", ns, "addr", "add", &v4, "dev", name])?;
    ip(&["-n", ns, "-6", "addr", "add", &v6, "dev", name, "nodad"])?;
    Ok(tap)
}

/// The Linux tap of `unit`, carrying the MAC of the sim's `tapN` (section 17, step 2).
fn linux_tap_side(ns: &str, unit: usize) -> Result<TapSide, String> {
    let mac =
        tap_bridge::sim_mac(unit).map_err(|e| format!("/dev/tap{unit} SIOCGIFADDR: {e:?}"))?;
    Ok(TapSide {
        unit,
        dev: linux_tap(ns, unit, Some(mac))?,
        mac,
        counters: Default::default(),
    })
}

/// The bridge of the host's kind of unit.
enum Bridged {
    Tun(Bridge),
    Tap(TapBridge),
}

impl Bridged {
    fn stats_text(&self) -> String {
        match self {
            Bridged::Tun(b) => b.stats_text(),
            Bridged::Tap(b) => b.stats_text(),
        }
    }
    fn stop(self) {
        match self {
            Bridged::Tun(b) => b.stop(),
            Bridged::Tap(b) => b.stop(),
        }
    }
}

/// The in-process client of the host's kind of unit.
enum InProc {
    Tun(relay::InProcRelay),
    Tap(relay::TapRelay),
}

impl InProc {
    /// Stops it, after printing its counters.
    fn stop(self) {
        match self {
            InProc::Tun(r) => {
                for (u, e) in r.endpoints.iter().enumerate() {
                    let c = &e.counters;
                    eprintln!(
                        "tunnel-sim: in-process relay unit{u}: dev->udp {} udp->dev {} write errors {}",
                        c.dev_to_udp.load(Ordering::Relaxed),
                        c.udp_to_dev.load(Ordering::Relaxed),
                        c.write_errors.load(Ordering::Relaxed)
                    );
                }
                r.stop();
            }
            InProc::Tap(r) => {
                let c = &r.counters;
                eprintln!(
                    "tunnel-sim: in-process tap linker: tap0->tap1 {} tap1->tap0 {} write errors {} read errors {}",
                    c.zero_to_one.load(Ordering::Relaxed),
                    c.one_to_zero.load(Ordering::Relaxed),
                    c.write_errors.load(Ordering::Relaxed),
                    c.read_errors.load(Ordering::Relaxed)
                );
                r.stop();
            }
        }
    }
}

fn write_atomic(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn host(args: &Args) -> Result<(), String> {
    if let Some(ns) = args.value("--ns-host") {
        // Before any thread exists: every thread started later inherits this namespace.
        linux_tun::enter_netns(&ns_path(&ns)).map_err(|e| format!("join {ns}: {e}"))?;
    }
    let ns_a = args.required("--ns-a")?;
    let ns_b = args.required("--ns-b")?;
    let stats = args.value("--stats").map(PathBuf::from);
    let max = args.max_seconds();
    install_signal_handlers();
    tunnel_sim::boot_and_load(args.flag("--strict"));
    let tap = args.flag("--tap");
    let (bridge, configure, kind): (Bridged, fusedev::OnOpen, &'static str) = if tap {
        let sides = vec![linux_tap_side(&ns_a, 0)?, linux_tap_side(&ns_b, 1)?];
        (
            Bridged::Tap(TapBridge::start(sides)),
            Arc::new(tap_bridge::configure_sim_tap),
            "tap",
        )
    } else {
        let sides = vec![linux_side(&ns_a, 0)?, linux_side(&ns_b, 1)?];
        (
            Bridged::Tun(Bridge::start(sides)),
            Arc::new(bridge::configure_sim_interface),
            "tun",
        )
    };
    let fuse = match args.value("--fuse") {
        Some(dir) => {
            fusedev::available()?;
            Some(
                fusedev::mount_kind(std::path::Path::new(&dir), kind, 2, Arc::clone(&configure))
                    .map_err(|e| format!("mount FUSE at {dir}: {e}"))?,
            )
        }
        None => None,
    };
    let inproc = match args.value("--relay").as_deref() {
        Some("inproc") if tap => Some(InProc::Tap(
            relay::TapRelay::start(&*configure).map_err(|e| format!("relay: {e}"))?,
        )),
        Some("inproc") => Some(InProc::Tun(
            relay::InProcRelay::start(&*configure, relay::Transport::Udp)
                .map_err(|e| format!("relay: {e}"))?,
        )),
        Some("none") | None => None,
        Some(other) => return Err(format!("unknown relay {other}")),
    };
    if let Some(ready) = args.value("--ready") {
        write_atomic(&PathBuf::from(ready), "ready\n");
    }
    eprintln!("tunnel-sim: ready (pid {})", std::process::id());
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(path) = &stats {
            write_atomic(path, &bridge.stats_text());
        }
    }
    if let Some(r) = inproc {
        r.stop();
    }
    if let Some((session, open)) = fuse {
        // Clients that just exited: their RELEASE may still be on its way (bounded wait).
        for _ in 0..50 {
            if open.count() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(session); // unmounts
        open.close_all();
    }
    let text = bridge.stats_text();
    if let Some(path) = &stats {
        write_atomic(path, &text);
    }
    print!("{text}");
    bridge.stop();
    // Leave nothing open, then unload: the leak check must come out clean.
    match xnu_sim::kextunload() {
        Ok(()) if xnu_sim::leaks().is_clean() => {
            println!("unload=clean");
            Ok(())
        }
        Ok(()) => Err(format!("unload: leaks {:?}", xnu_sim::leaks())),
        Err(e) => Err(format!("unload: {e:?}")),
    }
}

/// The L2 baseline: tun0 (A) and tun1 (B) (with `--tap`: the taps `ta0` and `tb0`, each with
/// the MAC Linux gave it) joined by a reader thread, a bounded queue and a writer thread per
/// direction: the shape of the driver's path minus the driver.
fn plain(args: &Args) -> Result<(), String> {
    if let Some(ns) = args.value("--ns-host") {
        linux_tun::enter_netns(&ns_path(&ns)).map_err(|e| format!("join {ns}: {e}"))?;
    }
    let max = args.max_seconds();
    install_signal_handlers();
    let (ns_a, ns_b) = (args.required("--ns-a")?, args.required("--ns-b")?);
    let (a, b) = if args.flag("--tap") {
        (linux_tap(&ns_a, 0, None)?, linux_tap(&ns_b, 1, None)?)
    } else {
        (linux_side(&ns_a, 0)?.tun, linux_side(&ns_b, 1)?.tun)
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut threads = Vec::new();
    for (from, to) in [(Arc::clone(&a), Arc::clone(&b)), (b, a)] {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1024);
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !STOP.load(Ordering::SeqCst) {
                if let Ok(Some(n)) = from.read_timeout(&mut buf, Duration::from_millis(100)) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }));
        threads.push(std::thread::spawn(move || {
            while let Ok(packet) = rx.recv() {
                let _ = to.write(&packet);
            }
        }));
    }
    if let Some(ready) = args.value("--ready") {
        write_atomic(&PathBuf::from(ready), "ready\n");
    }
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
    }
    STOP.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn relay_process(args: &Args) -> Result<(), String> {
    install_signal_handlers();
    let dev = args.required("--dev")?;
    let bind = args
        .required("--bind")?
        .parse()
        .map_err(|e| format!("--bind: {e}"))?;
    let peer = args
        .required("--peer")?
        .parse()
        .map_err(|e| format!("--peer: {e}"))?;
    let max = args.max_seconds();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map_err(|e| format!("open {dev}: {e}"))?;
    let socket = relay::socket(bind, peer).map_err(|e| format!("udp: {e}"))?;
    let endpoint =
        relay::Endpoint::start(Arc::new(file), socket, false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = &endpoint.counters;
    println!(
        "relay {dev}: dev->udp {} udp->dev {} write errors {}",
        c.dev_to_udp.load(Ordering::Relaxed),
        c.udp_to_dev.load(Ordering::Relaxed),
        c.write_errors.load(Ordering::Relaxed)
    );
    // The device reader may be parked in a FUSE read; exiting the process ends it.
    std::process::exit(0);
}

/// The linker as its own process between two device files (the FUSE `tap0` and `tap1`),
/// opened non-blocking: select, read, write until SIGTERM or `--max-seconds`.
fn taprelay_process(args: &Args) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    install_signal_handlers();
    let paths = [args.required("--dev0")?, args.required("--dev1")?];
    let max = args.max_seconds();
    let open = |path: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| format!("open {path}: {e}"))
    };
    let pair = relay::FilePair([open(&paths[0])?, open(&paths[1])?]);
    let counters = relay::LinkCounters::default();
    let deadline = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let deadline = Arc::clone(&deadline);
        std::thread::spawn(move || {
            let started = Instant::now();
            while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
                std::thread::sleep(Duration::from_millis(100));
            }
            deadline.store(true, Ordering::SeqCst);
            STOP.store(true, Ordering::SeqCst);
        })
    };
    relay::link(&pair, &STOP, &counters);
    let _ = watchdog.join();
    println!(
        "taprelay {} <-> {}: {} frames one way, {} the other, write errors {}, read errors {}",
        paths[0],
        paths[1],
        counters.zero_to_one.load(Ordering::Relaxed),
        counters.one_to_zero.load(Ordering::Relaxed),
        counters.write_errors.load(Ordering::Relaxed),
        counters.read_errors.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = Args(argv.clone());
    let result = match argv.first().map(String::as_str) {
        Some("host") => host(&args),
        Some("relay") => relay_process(&args),
        Some("taprelay") => taprelay_process(&args),
        Some("plain") => plain(&args),
        _ => Err(
            "usage: tunnel-sim host --ns-a A --ns-b B [--tap] [--ns-host R] [--fuse DIR] \
                  [--relay inproc|none] [--strict] [--stats FILE] [--ready FILE] \
                  [--max-seconds N] | tunnel-sim relay --dev PATH --bind IP:PORT --peer IP:PORT \
                  | tunnel-sim taprelay --dev0 PATH --dev1 PATH \
                  | tunnel-sim plain --ns-a A --ns-b B [--tap] [--ns-host R] [--ready FILE]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnel-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
